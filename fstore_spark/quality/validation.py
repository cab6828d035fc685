"""Evaluating expectations on a DataFrame: a report of every rule, or a split of the rows.

:func:`validate` counts, in one aggregation, the rows each row-level rule evaluates and the
rows that break it, plus the row count; each ``unique`` rule adds one grouped aggregation.
Only counts and at most ``examples`` offending values per failed rule reach the driver.
:func:`split_valid` is lazy: it tags each row with the rules it breaks, so rejected rows can be
quarantined with their reasons instead of being lost or silently kept.

Example::

    from fstore_spark.quality import expect_between, expect_not_null, split_valid, validate

    report = validate(df, [expect_not_null("amount", mostly=0.99),
                           expect_between("amount", 0, 10_000)])
    report.success, report.failed[0].unexpected, report.failed[0].examples
    good, rejected = split_valid(df, [expect_between("amount", 0, 10_000)])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError, ValidationError
from fstore_spark.quality._values import plain, quoted
from fstore_spark.quality.expectations import Expectation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row

__all__ = [
    "REASONS",
    "ExpectationResult",
    "ValidationReport",
    "split_valid",
    "validate",
    "validate_tables",
]

REASONS = "_fs_reasons"  # rejected rows: the names of the expectations they break


@dataclass(frozen=True)
class ExpectationResult:
    """How one expectation fared.

    Attributes:
        expectation: The rule.
        success: Whether it holds.
        evaluated: Rows evaluated (row-level: every row for ``not_null``, the non-null ones
            otherwise; ``unique``: rows with non-null key values; ``row_count_between``: all).
        unexpected: Rows that break it (``unique``: rows whose key values occur more than once).
        unexpected_fraction: ``unexpected / evaluated`` (0 when nothing was evaluated).
        observed: The measured value of a table-level rule (the row count), else None.
        examples: Up to a few offending values (row-level) or duplicated keys (``unique``).
    """

    expectation: Expectation
    success: bool
    evaluated: int
    unexpected: int
    unexpected_fraction: float
    observed: float | None = None
    examples: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "expectation": self.expectation.name,
            "success": self.success,
            "evaluated": self.evaluated,
            "unexpected": self.unexpected,
            "unexpected_fraction": self.unexpected_fraction,
            "observed": self.observed,
            "examples": [plain(v) for v in self.examples],
        }


@dataclass(frozen=True)
class ValidationReport:
    """The results of :func:`validate`, in the order the expectations were given.

    Attributes:
        rows: Rows of the validated DataFrame.
        results: One result per expectation.
    """

    rows: int
    results: tuple[ExpectationResult, ...]

    @property
    def success(self) -> bool:
        """Whether every expectation holds."""
        return all(r.success for r in self.results)

    @property
    def failed(self) -> list[ExpectationResult]:
        """The results that do not hold."""
        return [r for r in self.results if not r.success]

    def raise_on_failure(self) -> None:
        """Raise :class:`~fstore_spark.errors.ValidationError` naming every failed rule."""
        if not self.success:
            lines = [
                f"{r.expectation.name}: {r.unexpected} of {r.evaluated} rows unexpected "
                f"({r.unexpected_fraction:.2%}), examples {list(r.examples)}"
                for r in self.failed
            ]
            raise ValidationError(
                f"{len(lines)} of {len(self.results)} expectation(s) failed on {self.rows} rows: "
                + "; ".join(lines)
                + ". Fix the data, or loosen the rule (mostly=...) if these rows are expected."
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "rows": self.rows,
            "success": self.success,
            "results": [r.to_dict() for r in self.results],
        }


def validate(
    df: DataFrame, expectations: Sequence[Expectation], *, examples: int = 5
) -> ValidationReport:
    """Evaluate expectations on a DataFrame.

    All row-level rules and the row count are computed in one aggregation; each ``unique``
    rule is one more grouped aggregation; examples of offending values are fetched (at most
    ``examples`` each) only for the rules that fail.

    Raises:
        DefinitionError: a rule names a column the DataFrame lacks.
    """
    from pyspark.sql import functions as F

    exps = list(expectations)
    _check_columns(df, exps)
    aggs = [F.count(F.lit(1)).alias("_n")]
    for i, e in enumerate(exps):
        aggs += _counting_aggregates(e, i)
    row = df.select(*aggs).first()
    assert row is not None  # a global aggregation always yields one row
    total = int(row["_n"])
    results = [_result(df, e, i, row, total, examples) for i, e in enumerate(exps)]
    return ValidationReport(total, tuple(results))


def validate_tables(
    tables: Mapping[str, DataFrame], expectations: Sequence[Expectation], *, examples: int = 5
) -> ValidationReport:
    """Evaluate expectations on several tables (a feature set's views), as one report.

    Each rule is evaluated on every table that has all its columns (a feature's rule on the
    view that holds it; a join key's rule on each view), with one :func:`validate` per table.
    A rule checked on several tables holds when it holds on each; its counts and examples are
    the sums and the concatenation. ``rows`` is the total over the tables.

    Raises:
        DefinitionError: a rule names a column no table has.
    """
    exps = list(expectations)
    cols = {name: set(df.columns) for name, df in tables.items()}
    where: dict[int, list[str]] = {}
    for i, e in enumerate(exps):
        where[i] = [t for t, have in cols.items() if set(e.columns) <= have]
        if not where[i]:
            columns = sorted(set().union(*cols.values())) if cols else []
            raise DefinitionError(
                f"expectation {e.name}: column(s) {list(e.columns)} are in none of the tables "
                f"{list(tables)}; columns: {', '.join(columns)}."
            )
    reports = {
        t: validate(df, [e for i, e in enumerate(exps) if t in where[i]], examples=examples)
        for t, df in tables.items()
        if any(t in ts for ts in where.values())
    }
    results = []
    for i, e in enumerate(exps):
        parts = [next(r for r in reports[t].results if r.expectation is e) for t in where[i]]
        results.append(_combined(parts, examples))
    return ValidationReport(sum(r.rows for r in reports.values()), tuple(results))


def _combined(parts: Sequence[ExpectationResult], examples: int) -> ExpectationResult:
    """One rule's results on several tables as one: holds where each holds; counts summed."""
    if len(parts) == 1:
        return parts[0]
    evaluated = sum(p.evaluated for p in parts)
    unexpected = sum(p.unexpected for p in parts)
    observed = [p.observed for p in parts if p.observed is not None]
    return ExpectationResult(
        expectation=parts[0].expectation,
        success=all(p.success for p in parts),
        evaluated=evaluated,
        unexpected=unexpected,
        unexpected_fraction=unexpected / evaluated if evaluated else 0.0,
        observed=sum(observed) if observed else None,
        examples=tuple(x for p in parts for x in p.examples)[:examples],
    )


def split_valid(df: DataFrame, expectations: Sequence[Expectation]) -> tuple[DataFrame, DataFrame]:
    """Split rows into those that pass every row-level rule and those that do not (lazy).

    ``mostly`` does not apply here: a row that breaks a rule is rejected. The rejected rows
    keep their columns plus ``_fs_reasons``, the names of the rules they break, so they can be
    written to a quarantine table with their reasons.

    Raises:
        DefinitionError: a table-level rule (``unique``, ``row_count_between``) is given, or a
            rule names a missing column.
    """
    from pyspark.sql import functions as F

    exps = list(expectations)
    table = [e.name for e in exps if not e.row_level]
    if table:
        raise DefinitionError(
            f"split_valid takes row-level rules only; {table} are table-level: check them with "
            "validate()."
        )
    _check_columns(df, exps)
    if not exps:
        return df, df.limit(0).withColumn(REASONS, F.array().cast("array<string>"))
    reasons = F.array_compact(F.array(*[F.when(_breaks(e), F.lit(e.name)) for e in exps]))
    tagged = df.withColumn(REASONS, reasons)
    good = tagged.where(F.size(REASONS) == 0).drop(REASONS)
    bad = tagged.where(F.size(REASONS) > 0)
    return good, bad


def _check_columns(df: DataFrame, expectations: Sequence[Expectation]) -> None:
    """Fail before any Spark job when a rule names a column the data lacks."""
    have = set(df.columns)
    for e in expectations:
        missing = [c for c in e.columns if c not in have]
        if missing:
            raise DefinitionError(
                f"expectation {e.name}: column(s) {missing} not in the data; columns: "
                f"{', '.join(df.columns)}."
            )


def _counting_aggregates(e: Expectation, i: int) -> list[Column]:
    """The counts rule ``i`` needs from the shared aggregation.

    ``_e{i}``: rows evaluated; ``_u{i}``: rows that break a row-level rule. The row count
    needs nothing more than the shared ``_n``.
    """
    from pyspark.sql import functions as F

    if e.row_level:
        return [
            F.count(F.when(_evaluated(e), 1)).alias(f"_e{i}"),
            F.count(F.when(_breaks(e), 1)).alias(f"_u{i}"),
        ]
    if e.kind == "unique":
        return [F.count(F.when(_all_not_null(e.columns), 1)).alias(f"_e{i}")]
    return []


def _result(
    df: DataFrame, e: Expectation, i: int, row: Row, total: int, examples: int
) -> ExpectationResult:
    """The result of rule ``i`` from the shared aggregation ``row`` (plus its own jobs)."""
    if e.row_level:
        return _row_level_result(df, e, int(row[f"_e{i}"]), int(row[f"_u{i}"]), examples)
    if e.kind == "row_count_between":
        return _row_count_result(e, total)
    return _unique_result(df, e, int(row[f"_e{i}"]), examples)


def _row_level_result(
    df: DataFrame, e: Expectation, evaluated: int, bad: int, examples: int
) -> ExpectationResult:
    """Judge a row-level rule by ``mostly``; fetch examples only when some rows break it."""
    from pyspark.sql import functions as F

    frac = bad / evaluated if evaluated else 0.0
    # the tolerance: rounding in mostly * evaluated must not fail a rule that holds exactly
    ok = evaluated == 0 or (evaluated - bad) >= e.mostly * evaluated - 1e-9
    sample: tuple[Any, ...] = ()
    if bad and examples > 0:
        rows = df.where(_breaks(e)).select(F.col(_quoted(e))).limit(examples).collect()
        sample = tuple(r[0] for r in rows)
    return ExpectationResult(e, ok, evaluated, bad, frac, None, sample)


def _row_count_result(e: Expectation, total: int) -> ExpectationResult:
    """Judge ``row_count_between``: every row counts as unexpected when the count is outside."""
    ok = (e.min_value is None or total >= e.min_value) and (
        e.max_value is None or total <= e.max_value
    )
    return ExpectationResult(e, ok, total, 0 if ok else total, 0.0, total)


def _unique_result(
    df: DataFrame, e: Expectation, evaluated: int, examples: int
) -> ExpectationResult:
    """Judge ``unique``: rows whose non-null key values occur more than once are unexpected."""
    from pyspark.sql import functions as F

    cols = [F.col(quoted(c)) for c in e.columns]
    keyed = df.where(_all_not_null(e.columns))
    dups = keyed.groupBy(*cols).agg(F.count(F.lit(1)).alias("_c")).where("_c > 1")
    stats = dups.agg(F.sum("_c").alias("bad")).first()
    bad = int((stats["bad"] if stats is not None else 0) or 0)
    sample: tuple[Any, ...] = ()
    if bad and examples > 0:
        sample = tuple(
            tuple(r[: len(e.columns)]) if len(e.columns) > 1 else r[0]
            for r in dups.limit(examples).collect()
        )
    frac = bad / evaluated if evaluated else 0.0
    return ExpectationResult(e, bad == 0, evaluated, bad, frac, None, sample)


def _quoted(e: Expectation) -> str:
    """The quoted column of a row-level rule."""
    col = e.column
    assert col is not None
    return quoted(col)


def _evaluated(e: Expectation) -> Column:
    """Whether a row-level rule looks at a row: every row for ``not_null``, else non-nulls."""
    from pyspark.sql import functions as F

    if e.kind == "not_null":
        return F.lit(True)
    return F.col(_quoted(e)).isNotNull()


def _passes(e: Expectation) -> Column:
    """Whether an evaluated row passes a row-level rule (never null for an evaluated row)."""
    from pyspark.sql import functions as F

    c = F.col(_quoted(e))
    if e.kind == "not_null":
        return c.isNotNull()
    if e.kind == "between":
        ok = ~F.isnan(c.cast("double"))  # NaN compares above every number in Spark
        if e.min_value is not None:
            ok = ok & (c >= F.lit(e.min_value))
        if e.max_value is not None:
            ok = ok & (c <= F.lit(e.max_value))
        return ok
    if e.kind == "in_set":
        return c.isin(list(e.values))
    assert e.pattern is not None
    return c.cast("string").rlike(e.pattern)


def _breaks(e: Expectation) -> Column:
    """Whether a row breaks a row-level rule (evaluated and not passing)."""
    return _evaluated(e) & ~_passes(e)


def _all_not_null(columns: Sequence[str]) -> Column:
    """Whether every one of ``columns`` holds a value."""
    from pyspark.sql import functions as F

    cond = F.lit(True)
    for c in columns:
        cond = cond & F.col(quoted(c)).isNotNull()
    return cond
