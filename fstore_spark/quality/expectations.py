"""Expectations: quality rules on a column or a table, as plain data.

An :class:`Expectation` is validated when it is built and round-trips through a dict, so a
plan file or the registry can keep it. Build one with the ``expect_*`` functions, or from a
compact per-column spec with :func:`expectations_from_spec`. Evaluating rules on a DataFrame
is :mod:`fstore_spark.quality.validation`'s job.

Example::

    from fstore_spark.quality import expect_between, expect_not_null

    rules = [expect_not_null("amount", mostly=0.99), expect_between("amount", 0, 10_000)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fstore_spark.errors import DefinitionError

__all__ = [
    "Expectation",
    "expect_between",
    "expect_in_set",
    "expect_match",
    "expect_not_null",
    "expect_row_count_between",
    "expect_unique",
    "expectations_from_spec",
]

ROW_KINDS = ("not_null", "between", "in_set", "match")
TABLE_KINDS = ("unique", "row_count_between")
_SPEC_KEYS = {"min_value", "max_value", "null_percentage", "values", "regex", "unique", "mostly"}


@dataclass(frozen=True)
class Expectation:
    """One quality rule. Build it with the ``expect_*`` functions.

    Row-level rules (``not_null``, ``between``, ``in_set``, ``match``) hold when at least
    ``mostly`` of the rows they evaluate pass. ``not_null`` evaluates every row; the other
    row-level rules evaluate the non-null values only (a null is ``not_null``'s business), so
    ``expect_between("x", 0, 1)`` on ``[0.5, None]`` holds. NaN is outside every range.
    Table-level rules: ``unique`` (no two rows with the same non-null values of ``columns``)
    and ``row_count_between``.

    Attributes:
        kind: One of ``not_null``, ``between``, ``in_set``, ``match``, ``unique``,
            ``row_count_between``.
        columns: The column(s) checked (one for row-level rules; none for the row count).
        min_value: Inclusive lower bound (``between``, ``row_count_between``), or None.
        max_value: Inclusive upper bound, or None.
        values: Allowed values (``in_set``).
        pattern: Java regular expression a value must contain a match of (``match``).
        mostly: Fraction of evaluated rows that must pass, in (0, 1].
    """

    kind: str
    columns: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    mostly: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ROW_KINDS + TABLE_KINDS:
            raise DefinitionError(
                f"unknown expectation kind {self.kind!r}; valid: "
                f"{', '.join(ROW_KINDS + TABLE_KINDS)}."
            )
        if not 0.0 < self.mostly <= 1.0:
            raise DefinitionError(
                f"expectation {self.name}: mostly={self.mostly} must be in (0, 1], e.g. 0.99."
            )
        want = 0 if self.kind == "row_count_between" else None if self.kind == "unique" else 1
        if (want is not None and len(self.columns) != want) or (want is None and not self.columns):
            raise DefinitionError(f"expectation {self.kind}: give {want or 'one or more'} column.")
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Reject a rule whose kind-specific arguments cannot describe a check."""
        if self.kind in ("between", "row_count_between"):
            if self.min_value is None and self.max_value is None:
                raise DefinitionError(f"expectation {self.name}: give min_value or max_value.")
            if (
                self.min_value is not None
                and self.max_value is not None
                and self.min_value > self.max_value
            ):
                raise DefinitionError(
                    f"expectation {self.name}: min_value {self.min_value} is above max_value "
                    f"{self.max_value}."
                )
        if self.kind == "in_set" and (not self.values or any(v is None for v in self.values)):
            raise DefinitionError(
                f"expectation {self.name}: give a non-empty set of non-null values (nulls are "
                "checked by expect_not_null)."
            )
        if self.kind == "match" and not self.pattern:
            raise DefinitionError(f"expectation {self.name}: give a pattern.")

    @property
    def column(self) -> str | None:
        """The checked column of a row-level rule."""
        return self.columns[0] if len(self.columns) == 1 else None

    @property
    def name(self) -> str:
        """A readable, stable name, used as the reason of rejected rows."""
        cols = ",".join(self.columns)
        if self.kind == "between":
            return f"between({cols}, {self.min_value}, {self.max_value})"
        if self.kind == "row_count_between":
            return f"row_count_between({self.min_value}, {self.max_value})"
        if self.kind == "in_set":
            return f"in_set({cols}, {len(self.values)} values)"
        if self.kind == "match":
            return f"match({cols}, {self.pattern!r})"
        return f"{self.kind}({cols})"

    @property
    def row_level(self) -> bool:
        """Whether each row passes or fails on its own."""
        return self.kind in ROW_KINDS

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly); :meth:`from_dict` reverses it."""
        d = asdict(self)
        d["columns"], d["values"] = list(self.columns), list(self.values)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expectation:
        """Inverse of :meth:`to_dict`."""
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise DefinitionError(f"unknown expectation field(s) {sorted(unknown)}.")
        args = dict(d)
        args["columns"] = tuple(args.get("columns", ()))
        args["values"] = tuple(args.get("values", ()))
        return cls(**args)


def expect_not_null(column: str, *, mostly: float = 1.0) -> Expectation:
    """At least ``mostly`` of the rows have a value in ``column`` (``mostly=0.99``: ≤ 1% nulls)."""
    return Expectation("not_null", (column,), mostly=mostly)


def expect_between(
    column: str,
    min_value: float | None = None,
    max_value: float | None = None,
    *,
    mostly: float = 1.0,
) -> Expectation:
    """Non-null values lie in ``[min_value, max_value]`` (either bound may be None)."""
    return Expectation("between", (column,), min_value, max_value, mostly=mostly)


def expect_in_set(column: str, values: Iterable[Any], *, mostly: float = 1.0) -> Expectation:
    """Non-null values are among ``values``."""
    return Expectation("in_set", (column,), values=tuple(values), mostly=mostly)


def expect_match(column: str, pattern: str, *, mostly: float = 1.0) -> Expectation:
    """Non-null values (as strings) contain a match of the Java regex ``pattern``.

    Anchor it (``^...$``) to require a full match.
    """
    return Expectation("match", (column,), pattern=pattern, mostly=mostly)


def expect_unique(*columns: str) -> Expectation:
    """No two rows share the same values of ``columns`` (rows with a null there are skipped)."""
    return Expectation("unique", tuple(columns))


def expect_row_count_between(
    min_value: int | None = None, max_value: int | None = None
) -> Expectation:
    """The table has between ``min_value`` and ``max_value`` rows (inclusive)."""
    return Expectation(
        "row_count_between",
        (),
        None if min_value is None else float(min_value),
        None if max_value is None else float(max_value),
    )


def expectations_from_spec(column: str, spec: Mapping[str, Any]) -> list[Expectation]:
    """Expectations from a compact per-column spec (as in YAML configs).

    Keys: ``min_value``, ``max_value``, ``null_percentage`` (largest allowed fraction of nulls,
    0.01 = 1%), ``values`` (allowed set), ``regex``, ``unique`` (bool), ``mostly`` (applies to
    the value rules). The rules come out in that order: not null, between, in set, match,
    unique.

    Example::

        expectations_from_spec("purchase_amount",
                               {"min_value": 0, "max_value": 10000, "null_percentage": 0.01})

    Raises:
        DefinitionError: an unknown key, or ``null_percentage`` outside [0, 1).
    """
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise DefinitionError(
            f"expectations for {column!r}: unknown key(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(_SPEC_KEYS))}."
        )
    mostly = float(spec.get("mostly", 1.0))
    out: list[Expectation] = []
    if "null_percentage" in spec:
        out.append(_not_null_from_percentage(column, float(spec["null_percentage"])))
    if "min_value" in spec or "max_value" in spec:
        out.append(
            expect_between(column, spec.get("min_value"), spec.get("max_value"), mostly=mostly)
        )
    if "values" in spec:
        out.append(expect_in_set(column, spec["values"], mostly=mostly))
    if "regex" in spec:
        out.append(expect_match(column, str(spec["regex"]), mostly=mostly))
    if spec.get("unique"):
        out.append(expect_unique(column))
    return out


def _not_null_from_percentage(column: str, frac: float) -> Expectation:
    """``expect_not_null`` allowing a fraction ``frac`` of nulls (a spec's ``null_percentage``)."""
    if not 0.0 <= frac < 1.0:
        raise DefinitionError(
            f"expectations for {column!r}: null_percentage={frac} must be a fraction in "
            "[0, 1), e.g. 0.01 for 1%."
        )
    return expect_not_null(column, mostly=1.0 - frac)
