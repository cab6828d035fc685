"""Data quality: expectations, statistics per feature version, drift tests, monitoring with alerts.

Every check is a Spark aggregation over the DataFrame (one pass per kind of check); only small
results reach the driver: counts, quantiles, the top values of a column, at most ``examples``
failing values per expectation, and at most ``sample_size`` values per column for a KS test.

* **Expectations** (:class:`Expectation`) are rules on a column (not null, between, in a set,
  matching a pattern) or on the table (unique keys, row count). :func:`validate` evaluates them
  all and returns a :class:`ValidationReport`; :func:`split_valid` separates the rows that break
  a row-level rule from those that do not, each rejected row carrying its reasons, so bad rows
  can be quarantined with a count and a reason instead of being lost or silently kept.
* **Statistics** (:func:`compute_statistics`): count, nulls, NaNs, approximate distinct count,
  mean, standard deviation, min, max and quantiles of numeric columns; the most frequent values
  of the others. The feature store keeps them per Delta version of a feature table.
* **Drift** (:func:`detect_drift`): numeric columns by the two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``) and the population stability index (PSI) over the reference's
  quantile bins; categorical columns by a chi-square test of the category counts
  (``scipy.stats.chi2_contingency``) and PSI over categories.
* **Monitoring** (:class:`MonitorRule`, :func:`evaluate_rules`): thresholds on statistics and
  drift that produce :class:`Alert` objects; :func:`send_alerts` delivers them to channels
  (a callable, ``"log"``, or an HTTP webhook such as a Slack incoming webhook).

Example::

    from fstore_spark.quality.checks import expect_between, expect_not_null, validate

    report = validate(df, [expect_not_null("amount", mostly=0.99),
                           expect_between("amount", 0, 10_000)])
    report.success, report.failed[0].unexpected, report.failed[0].examples
    good, rejected = split_valid(df, [expect_between("amount", 0, 10_000)])
"""

from __future__ import annotations

import json
import logging
import math
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError, NotFoundError, ValidationError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    feature_table_path,
    read_feature_table,
    table_version,
    to_utc,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "Alert",
    "ColumnDrift",
    "ColumnStatistics",
    "DriftReport",
    "Expectation",
    "ExpectationResult",
    "MonitorPlan",
    "MonitorResult",
    "MonitorRule",
    "Statistics",
    "ValidationReport",
    "compute_statistics",
    "detect_drift",
    "evaluate_rules",
    "expect_between",
    "expect_in_set",
    "expect_match",
    "expect_not_null",
    "expect_row_count_between",
    "expect_unique",
    "expectations_from_spec",
    "load_monitoring",
    "monitor_view",
    "monitoring_table_path",
    "select_rows",
    "send_alerts",
    "split_valid",
    "statistics_table_path",
    "validate",
    "view_statistics",
]

_log = logging.getLogger("fstore_spark.quality")

_ROW_KINDS = ("not_null", "between", "in_set", "match")
_TABLE_KINDS = ("unique", "row_count_between")
_NUMERIC_PREFIXES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_FLOAT_PREFIXES = ("float", "double")
REASONS = "_fs_reasons"  # rejected rows: the names of the expectations they break


def _is_numeric(dtype: str) -> bool:
    return dtype.startswith(_NUMERIC_PREFIXES)


# ------------------------------------------------------------------------------------------
# Expectations
# ------------------------------------------------------------------------------------------


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
        if self.kind not in _ROW_KINDS + _TABLE_KINDS:
            raise DefinitionError(
                f"unknown expectation kind {self.kind!r}; valid: "
                f"{', '.join(_ROW_KINDS + _TABLE_KINDS)}."
            )
        if not 0.0 < self.mostly <= 1.0:
            raise DefinitionError(
                f"expectation {self.name}: mostly={self.mostly} must be in (0, 1], e.g. 0.99."
            )
        want = 0 if self.kind == "row_count_between" else None if self.kind == "unique" else 1
        if (want is not None and len(self.columns) != want) or (want is None and not self.columns):
            raise DefinitionError(f"expectation {self.kind}: give {want or 'one or more'} column.")
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
        return self.kind in _ROW_KINDS

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

    def _present(self) -> Column:
        from pyspark.sql import functions as F

        if self.kind == "not_null":
            return F.lit(True)
        return F.col(self._quoted()).isNotNull()

    def _ok(self) -> Column:
        """Whether an evaluated row passes (never null for an evaluated row)."""
        from pyspark.sql import functions as F

        c = F.col(self._quoted())
        if self.kind == "not_null":
            return c.isNotNull()
        if self.kind == "between":
            ok = ~F.isnan(c.cast("double"))  # NaN compares above every number in Spark
            if self.min_value is not None:
                ok = ok & (c >= F.lit(self.min_value))
            if self.max_value is not None:
                ok = ok & (c <= F.lit(self.max_value))
            return ok
        if self.kind == "in_set":
            return c.isin(list(self.values))
        assert self.pattern is not None
        return c.cast("string").rlike(self.pattern)

    def _quoted(self) -> str:
        col = self.column
        assert col is not None
        return f"`{col.replace('`', '``')}`"


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
    the value rules).

    Example::

        expectations_from_spec("purchase_amount",
                               {"min_value": 0, "max_value": 10000, "null_percentage": 0.01})
    """
    known = {"min_value", "max_value", "null_percentage", "values", "regex", "unique", "mostly"}
    unknown = set(spec) - known
    if unknown:
        raise DefinitionError(
            f"expectations for {column!r}: unknown key(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(known))}."
        )
    mostly = float(spec.get("mostly", 1.0))
    out: list[Expectation] = []
    if "null_percentage" in spec:
        frac = float(spec["null_percentage"])
        if not 0.0 <= frac < 1.0:
            raise DefinitionError(
                f"expectations for {column!r}: null_percentage={frac} must be a fraction in "
                "[0, 1), e.g. 0.01 for 1%."
            )
        out.append(expect_not_null(column, mostly=1.0 - frac))
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
            "examples": [_plain(v) for v in self.examples],
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


def _check_columns(df: DataFrame, expectations: Sequence[Expectation]) -> None:
    have = set(df.columns)
    for e in expectations:
        missing = [c for c in e.columns if c not in have]
        if missing:
            raise DefinitionError(
                f"expectation {e.name}: column(s) {missing} not in the data; columns: "
                f"{', '.join(df.columns)}."
            )


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
        if e.row_level:
            aggs.append(F.count(F.when(e._present(), 1)).alias(f"_e{i}"))
            aggs.append(F.count(F.when(e._present() & ~e._ok(), 1)).alias(f"_u{i}"))
        elif e.kind == "unique":
            aggs.append(F.count(F.when(_all_not_null(e.columns), 1)).alias(f"_e{i}"))
    row = df.select(*aggs).first()
    assert row is not None  # a global aggregation always yields one row
    total = int(row["_n"])
    results: list[ExpectationResult] = []
    for i, e in enumerate(exps):
        if e.row_level:
            evaluated, bad = int(row[f"_e{i}"]), int(row[f"_u{i}"])
            frac = bad / evaluated if evaluated else 0.0
            ok = evaluated == 0 or (evaluated - bad) >= e.mostly * evaluated - 1e-9
            sample: tuple[Any, ...] = ()
            if bad and examples > 0:
                rows = (
                    df.where(e._present() & ~e._ok())
                    .select(F.col(e._quoted()))
                    .limit(examples)
                    .collect()
                )
                sample = tuple(r[0] for r in rows)
            results.append(ExpectationResult(e, ok, evaluated, bad, frac, None, sample))
        elif e.kind == "row_count_between":
            ok = (e.min_value is None or total >= e.min_value) and (
                e.max_value is None or total <= e.max_value
            )
            results.append(ExpectationResult(e, ok, total, 0 if ok else total, 0.0, total))
        else:  # unique
            cols = [F.col(f"`{c}`") for c in e.columns]
            keyed = df.where(_all_not_null(e.columns))
            dups = keyed.groupBy(*cols).agg(F.count(F.lit(1)).alias("_c")).where("_c > 1")
            stats = dups.agg(F.sum("_c").alias("bad")).first()
            evaluated = int(row[f"_e{i}"])
            bad = int((stats["bad"] if stats is not None else 0) or 0)
            sample = ()
            if bad and examples > 0:
                sample = tuple(
                    tuple(r[: len(e.columns)]) if len(e.columns) > 1 else r[0]
                    for r in dups.limit(examples).collect()
                )
            frac = bad / evaluated if evaluated else 0.0
            results.append(ExpectationResult(e, bad == 0, evaluated, bad, frac, None, sample))
    return ValidationReport(total, tuple(results))


def _all_not_null(columns: Sequence[str]) -> Column:
    from pyspark.sql import functions as F

    cond = F.lit(True)
    for c in columns:
        cond = cond & F.col(f"`{c}`").isNotNull()
    return cond


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
    reasons = F.array_compact(
        F.array(*[F.when(e._present() & ~e._ok(), F.lit(e.name)) for e in exps])
    )
    tagged = df.withColumn(REASONS, reasons)
    good = tagged.where(F.size(REASONS) == 0).drop(REASONS)
    bad = tagged.where(F.size(REASONS) > 0)
    return good, bad


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class ColumnStatistics:
    """Statistics of one column.

    Attributes:
        column: Column name.
        dtype: Spark type name.
        count: Rows.
        nulls: Rows with a null.
        nans: Rows with NaN (floating-point columns; NaN is left out of the other figures).
        distinct: Approximate number of distinct non-null values (HyperLogLog++, ~1% error).
        mean: Mean (numeric columns), else None.
        stddev: Sample standard deviation (numeric, at least two values), else None.
        min: Minimum (numeric), else None.
        max: Maximum (numeric), else None.
        quantiles: Approximate quantiles (numeric), keyed by the probability as a string
            (``"0.5"``); relative rank error 1e-3.
        top_values: Most frequent non-null values with their counts (non-numeric columns),
            ties broken by value.
    """

    column: str
    dtype: str
    count: int
    nulls: int
    nans: int = 0
    distinct: int = 0
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    top_values: list[tuple[Any, int]] = field(default_factory=list)

    @property
    def null_fraction(self) -> float:
        """Nulls (and NaNs) over rows; 0 for an empty column."""
        return (self.nulls + self.nans) / self.count if self.count else 0.0

    @property
    def numeric(self) -> bool:
        """Whether the column is numeric."""
        return _is_numeric(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["top_values"] = [[_plain(v), n] for v, n in self.top_values]
        d["null_fraction"] = self.null_fraction
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnStatistics:
        """Inverse of :meth:`to_dict`."""
        args = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        args["top_values"] = [(v, int(n)) for v, n in d.get("top_values", [])]
        return cls(**args)


@dataclass(frozen=True)
class Statistics:
    """Statistics of a DataFrame (or of one Delta version of a feature table).

    Attributes:
        rows: Rows.
        columns: Per column, in the DataFrame's order.
        table_version: The feature table's Delta version, when computed for one.
        computed_at: When they were computed (UTC).
    """

    rows: int
    columns: dict[str, ColumnStatistics]
    table_version: int | None = None
    computed_at: datetime | None = None

    def __getitem__(self, column: str) -> ColumnStatistics:
        return self.columns[column]

    def to_pandas(self) -> pd.DataFrame:
        """One row per column."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.columns.values()])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "rows": self.rows,
            "table_version": self.table_version,
            "computed_at": None if self.computed_at is None else self.computed_at.isoformat(),
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
        }


def compute_statistics(
    df: DataFrame,
    columns: Sequence[str] | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    top_k: int = 10,
    table_version: int | None = None,
) -> Statistics:
    """Compute column statistics (see :class:`ColumnStatistics`).

    One aggregation computes every figure of every column; each non-numeric column adds one
    grouped aggregation for its ``top_k`` values. Timestamps, dates, arrays and structs are
    counted (rows, nulls, distinct) but get no numeric figures.

    Args:
        df: The data.
        columns: Columns to describe; default all.
        quantiles: Probabilities of the quantiles of numeric columns.
        top_k: How many frequent values to keep for non-numeric columns.
        table_version: Recorded in the result (the feature store passes the Delta version).
    """
    from pyspark.sql import functions as F

    cols = list(columns) if columns is not None else list(df.columns)
    types = dict(df.dtypes)
    missing = [c for c in cols if c not in types]
    if missing:
        raise DefinitionError(
            f"statistics: column(s) {missing} not in the data; columns: {', '.join(df.columns)}."
        )
    aggs: list[Column] = [F.count(F.lit(1)).alias("_n")]
    for i, c in enumerate(cols):
        col = F.col(f"`{c}`")
        dtype = types[c]
        is_float = dtype.startswith(_FLOAT_PREFIXES)
        aggs.append(F.count(F.when(col.isNull(), 1)).alias(f"_null{i}"))
        value = F.when(~F.isnan(col), col) if is_float else col
        if is_float:
            aggs.append(F.count(F.when(F.isnan(col), 1)).alias(f"_nan{i}"))
        aggs.append(F.approx_count_distinct(value, 0.01).alias(f"_d{i}"))
        if _is_numeric(dtype):
            v = value.cast("double")
            aggs += [
                F.mean(v).alias(f"_mean{i}"),
                F.stddev_samp(v).alias(f"_sd{i}"),
                F.min(v).alias(f"_min{i}"),
                F.max(v).alias(f"_max{i}"),
            ]
            if quantiles:
                qs = F.array(*[F.lit(float(q)) for q in quantiles])
                aggs.append(F.percentile_approx(v, qs, 1000).alias(f"_q{i}"))
    row = df.select(*aggs).first()
    assert row is not None
    total = int(row["_n"])
    out: dict[str, ColumnStatistics] = {}
    for i, c in enumerate(cols):
        dtype = types[c]
        common: dict[str, Any] = {
            "column": c,
            "dtype": dtype,
            "count": total,
            "nulls": int(row[f"_null{i}"]),
            "nans": int(row[f"_nan{i}"]) if dtype.startswith(_FLOAT_PREFIXES) else 0,
            "distinct": int(row[f"_d{i}"]),
        }
        if _is_numeric(dtype):
            qv = row[f"_q{i}"] if quantiles else None
            out[c] = ColumnStatistics(
                **common,
                mean=_opt(row[f"_mean{i}"]),
                stddev=_opt(row[f"_sd{i}"]),
                min=_opt(row[f"_min{i}"]),
                max=_opt(row[f"_max{i}"]),
                quantiles={str(float(q)): float(x) for q, x in zip(quantiles, qv, strict=True)}
                if qv is not None
                else {},
            )
        else:
            top: list[tuple[Any, int]] = []
            if top_k > 0 and dtype in ("string", "boolean"):
                col = F.col(f"`{c}`")
                rows = (
                    df.where(col.isNotNull())
                    .groupBy(col.alias("v"))
                    .agg(F.count(F.lit(1)).alias("n"))
                    .orderBy(F.col("n").desc(), F.col("v").asc())
                    .limit(top_k)
                    .collect()
                )
                top = [(r["v"], int(r["n"])) for r in rows]
            out[c] = ColumnStatistics(**common, top_values=top)
    return Statistics(total, out, table_version, datetime.now(UTC))


def _opt(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


# ------------------------------------------------------------------------------------------
# Drift
# ------------------------------------------------------------------------------------------

_METHODS = {"ks": "ks", "ks_test": "ks", "chi2": "ks", "psi": "psi"}


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column between a reference and a current dataset.

    Attributes:
        column: Column name.
        kind: ``numeric`` or ``categorical``.
        test: ``ks`` (two-sample Kolmogorov-Smirnov) or ``chi2`` (chi-square on counts).
        statistic: The test statistic (KS: the largest gap between the two empirical CDFs).
        p_value: The test's p-value (small: the two samples unlikely share a distribution).
        psi: Population stability index (< 0.1 stable, 0.1-0.2 moderate, > 0.2 large shift).
        drifted: Whether the column is flagged, by the report's method and threshold.
        reference_count: Non-null values in the reference.
        current_count: Non-null values in the current data.
        sampled: Whether the KS test ran on samples (more values than ``sample_size``).
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    drifted: bool
    reference_count: int
    current_count: int
    sampled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`detect_drift`.

    Attributes:
        columns: Per column, in the order compared.
        method: ``ks`` (flag when ``p_value < threshold``) or ``psi`` (when ``psi >= threshold``).
        threshold: The threshold used.
    """

    columns: dict[str, ColumnDrift]
    method: str
    threshold: float

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the flagged columns."""
        return [c for c, d in self.columns.items() if d.drifted]

    @property
    def drifted(self) -> bool:
        """Whether any column is flagged."""
        return bool(self.drifted_columns)

    def __getitem__(self, column: str) -> ColumnDrift:
        return self.columns[column]

    def to_pandas(self) -> pd.DataFrame:
        """One row per column."""
        import pandas as pd

        return pd.DataFrame([d.to_dict() for d in self.columns.values()])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "method": self.method,
            "threshold": self.threshold,
            "drifted_columns": self.drifted_columns,
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
        }


def detect_drift(
    reference: DataFrame,
    current: DataFrame,
    columns: Sequence[str] | None = None,
    *,
    method: str = "ks",
    threshold: float | None = None,
    bins: int = 10,
    sample_size: int = 20_000,
    max_categories: int = 50,
    seed: int = 0,
) -> DriftReport:
    """Compare the distribution of columns between a reference and a current dataset.

    Numeric columns: KS test on the non-null, non-NaN values (``scipy.stats.ks_2samp``); when a
    side has more than ``sample_size`` values, a uniform random sample of at most
    ``sample_size`` (seeded) is tested instead, so only bounded data reaches the driver; PSI
    over ``bins`` bins cut at the reference's quantiles, counted in Spark over all rows.
    Categorical columns (strings, booleans): chi-square test on the counts of the reference's
    ``max_categories`` most frequent values plus one bucket for the rest, and PSI over the same
    buckets; both counted in Spark.

    Args:
        reference: The baseline data (e.g. the training window).
        current: The data to check.
        columns: Columns to compare; default the columns both have, except timestamps.
        method: ``ks`` (also ``ks_test``; chi-square for categorical columns): flag a column
            when ``p_value < threshold`` (default 0.05); ``psi``: flag when
            ``psi >= threshold`` (default 0.2).
        threshold: See ``method``.
        bins: PSI bins for numeric columns.
        sample_size: Largest number of values per side in a KS test.
        max_categories: Categories kept by name in the categorical tests.
        seed: Sampling seed.

    Raises:
        DefinitionError: unknown method, or a column missing from either side.
    """
    from pyspark.sql import functions as F

    if method not in _METHODS:
        raise DefinitionError(f"unknown drift method {method!r}; valid: ks, ks_test, chi2, psi.")
    how = _METHODS[method]
    thr = threshold if threshold is not None else (0.05 if how == "ks" else 0.2)
    rtypes, ctypes = dict(reference.dtypes), dict(current.dtypes)
    if columns is None:
        cols = [
            c
            for c in reference.columns
            if c in ctypes and (_is_numeric(rtypes[c]) or rtypes[c] in ("string", "boolean"))
        ]
    else:
        cols = list(columns)
        for c in cols:
            if c not in rtypes or c not in ctypes:
                raise DefinitionError(
                    f"drift: column {c!r} is not in both datasets; reference has "
                    f"{', '.join(reference.columns)}; current has {', '.join(current.columns)}."
                )
    out: dict[str, ColumnDrift] = {}
    for c in cols:
        col = F.col(f"`{c}`")
        if _is_numeric(rtypes[c]):
            valid = col.isNotNull() & ~F.isnan(col.cast("double"))
            ref = reference.where(valid).select(col.cast("double").alias("v"))
            cur = current.where(valid).select(col.cast("double").alias("v"))
            out[c] = _numeric_drift(c, ref, cur, how, thr, bins, sample_size, seed)
        else:
            ref = reference.where(col.isNotNull()).select(col.cast("string").alias("v"))
            cur = current.where(col.isNotNull()).select(col.cast("string").alias("v"))
            out[c] = _categorical_drift(c, ref, cur, how, thr, max_categories)
    return DriftReport(out, how, thr)


def _numeric_drift(
    name: str,
    ref: DataFrame,
    cur: DataFrame,
    how: str,
    thr: float,
    bins: int,
    sample_size: int,
    seed: int,
) -> ColumnDrift:
    from pyspark.sql import functions as F
    from scipy import stats

    probs = [i / bins for i in range(1, bins)]
    edges = sorted(set(ref.approxQuantile("v", probs, 1e-3))) if bins > 1 else []
    idx = F.lit(0)
    for e in edges:
        idx = idx + (F.col("v") > F.lit(e)).cast("int")

    def counts(df: DataFrame) -> dict[int, int]:
        return {
            int(r["b"]): int(r["n"])
            for r in df.groupBy(idx.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()
        }

    rc, cc = counts(ref), counts(cur)
    n_ref, n_cur = sum(rc.values()), sum(cc.values())
    psi = _psi(
        [rc.get(b, 0) for b in range(len(edges) + 1)], [cc.get(b, 0) for b in range(len(edges) + 1)]
    )

    def sample(df: DataFrame, n: int) -> list[float]:
        if n <= sample_size:
            return [float(r[0]) for r in df.collect()]  # bounded: n <= sample_size
        frac = min(1.0, 1.2 * sample_size / n)
        return [
            float(r[0]) for r in df.sample(fraction=frac, seed=seed).limit(sample_size).collect()
        ]

    if n_ref and n_cur:
        a, b = sample(ref, n_ref), sample(cur, n_cur)
        res = stats.ks_2samp(a, b)
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = 0.0, 1.0
    drifted = (p < thr) if how == "ks" else (psi >= thr)
    sampled = max(n_ref, n_cur) > sample_size
    return ColumnDrift(name, "numeric", "ks", stat, p, psi, bool(drifted), n_ref, n_cur, sampled)


def _categorical_drift(
    name: str, ref: DataFrame, cur: DataFrame, how: str, thr: float, max_categories: int
) -> ColumnDrift:
    from pyspark.sql import functions as F
    from scipy import stats

    top = [
        r["v"]
        for r in ref.groupBy("v")
        .agg(F.count(F.lit(1)).alias("n"))
        .orderBy(F.col("n").desc(), F.col("v").asc())
        .limit(max_categories)
        .collect()
    ]
    bucket = F.when(F.col("v").isin(top), F.col("v")).otherwise(F.lit(None)) if top else F.lit(None)

    def counts(df: DataFrame) -> dict[str | None, int]:
        return {
            r["b"]: int(r["n"])
            for r in df.groupBy(bucket.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()
        }

    rc, cc = counts(ref), counts(cur)
    keys: list[str | None] = [*top, None]  # None: every other value
    r = [rc.get(k, 0) for k in keys]
    c = [cc.get(k, 0) for k in keys]
    psi = _psi(r, c)
    table = [(x, y) for x, y in zip(r, c, strict=True) if x + y > 0]
    n_ref, n_cur = sum(r), sum(c)
    if n_ref and n_cur and len(table) >= 2:
        res = stats.chi2_contingency([[x for x, _ in table], [y for _, y in table]])
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = 0.0, 1.0
    drifted = (p < thr) if how == "ks" else (psi >= thr)
    return ColumnDrift(name, "categorical", "chi2", stat, p, psi, bool(drifted), n_ref, n_cur)


_PSI_FLOOR = 1e-4  # proportions below this count as this, so an empty bin does not give infinity


def _psi(ref_counts: Sequence[int], cur_counts: Sequence[int]) -> float:
    """Population stability index: sum of (c - r) * ln(c / r) over bins of proportions."""
    nr, nc = sum(ref_counts), sum(cur_counts)
    if not nr or not nc:
        return 0.0
    total = 0.0
    for a, b in zip(ref_counts, cur_counts, strict=True):
        r = max(a / nr, _PSI_FLOOR)
        c = max(b / nc, _PSI_FLOOR)
        total += (c - r) * math.log(c / r)
    return total


# ------------------------------------------------------------------------------------------
# Monitoring
# ------------------------------------------------------------------------------------------

_METRICS = {
    "null_fraction": "above",
    "missing_values": "above",  # alias of null_fraction
    "row_count": "below",
    "mean_change": "above",
    "freshness_hours": "above",
    "drift_psi": "above",
    "drift_p_value": "below",
    "expectation": "above",
}


@dataclass(frozen=True)
class MonitorRule:
    """A threshold on a monitored metric; breaking it raises an :class:`Alert`.

    Metrics (alert when the value is *above* the threshold unless said):

    * ``null_fraction`` (alias ``missing_values``): nulls and NaNs over rows, per column;
    * ``row_count``: rows of the table — alert when *below*;
    * ``mean_change``: ``|mean - baseline mean| / max(|baseline mean|, 1e-12)``, per column
      (needs a baseline);
    * ``freshness_hours``: hours from the newest feature timestamp to the check;
    * ``drift_psi``: PSI against the baseline, per column;
    * ``drift_p_value``: drift test p-value against the baseline, per column — alert when
      *below*;
    * ``expectation``: one alert per rule of ``expectations`` that fails (each judged by its
      own ``mostly``; the alert's value is the unexpected fraction, its threshold the allowed
      one; the rule's ``threshold`` is not used).

    Attributes:
        metric: One of the above.
        threshold: The limit.
        columns: Columns the rule applies to (per-column metrics); empty: every feature column.
        severity: ``warning`` or ``critical``, copied to the alerts.
        expectations: The rules checked by the ``expectation`` metric.
    """

    metric: str
    threshold: float = 0.0
    columns: tuple[str, ...] = ()
    severity: str = "warning"
    expectations: tuple[Expectation, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            raise DefinitionError(
                f"unknown monitor metric {self.metric!r}; valid: {', '.join(_METRICS)}."
            )
        if self.severity not in ("warning", "critical"):
            raise DefinitionError(
                f"monitor rule {self.metric}: severity {self.severity!r} must be 'warning' or "
                "'critical'."
            )
        if self.metric == "expectation" and not self.expectations:
            raise DefinitionError("monitor rule 'expectation' needs expectations=[...].")
        if isinstance(self.columns, str):
            object.__setattr__(self, "columns", (self.columns,))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "expectations", tuple(self.expectations))

    @property
    def needs_baseline(self) -> bool:
        """Whether the rule compares with a baseline."""
        return self.metric in ("mean_change", "drift_psi", "drift_p_value")


@dataclass(frozen=True)
class Alert:
    """A broken monitor rule.

    Attributes:
        metric: The rule's metric.
        severity: ``warning`` or ``critical``.
        value: The measured value.
        threshold: The rule's threshold.
        message: A sentence saying what broke, where, and by how much.
        column: The column, for per-column metrics.
        subject: What was checked (e.g. ``view 'spend' version 7``).
    """

    metric: str
    severity: str
    value: float
    threshold: float
    message: str
    column: str | None = None
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def evaluate_rules(
    rules: Sequence[MonitorRule],
    stats: Statistics,
    *,
    subject: str = "",
    baseline: Statistics | None = None,
    drift: DriftReport | None = None,
    validation: Mapping[int, ValidationReport] | None = None,
    newest: datetime | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Check rules against computed statistics (no Spark work: give it what it needs).

    Args:
        rules: The rules.
        stats: Statistics of the checked data.
        subject: Named in every alert.
        baseline: Statistics of the baseline (``mean_change``).
        drift: Drift of the checked data against the baseline (``drift_*``).
        validation: Per rule index, the validation of its expectations (``expectation``).
        newest: Newest feature timestamp of the checked data (``freshness_hours``).
        now: The check's time (default now, UTC).

    Raises:
        ValidationError: a rule needs a baseline, drift or timestamp that was not given.
    """
    now = now or datetime.now(UTC)
    alerts: list[Alert] = []

    def per_column(rule: MonitorRule, available: Iterable[str]) -> list[str]:
        return list(rule.columns) if rule.columns else list(available)

    def emit(rule: MonitorRule, value: float, what: str, column: str | None) -> None:
        direction = _METRICS[rule.metric]
        broken = value > rule.threshold if direction == "above" else value < rule.threshold
        if broken:
            where = f" of {column!r}" if column else ""
            alerts.append(
                Alert(
                    rule.metric,
                    rule.severity,
                    value,
                    rule.threshold,
                    f"{subject}: {what}{where} is {value:.6g}, "
                    f"{direction} the threshold {rule.threshold:.6g}.",
                    column,
                    subject,
                )
            )

    for i, rule in enumerate(rules):
        m = rule.metric
        if m in ("null_fraction", "missing_values"):
            for c in per_column(rule, stats.columns):
                emit(rule, stats[c].null_fraction, "null fraction", c)
        elif m == "row_count":
            emit(rule, float(stats.rows), "row count", None)
        elif m == "freshness_hours":
            if newest is None:
                raise ValidationError(
                    f"{subject}: rule freshness_hours needs the newest feature timestamp."
                )
            emit(rule, (now - newest).total_seconds() / 3600.0, "hours since newest row", None)
        elif m == "mean_change":
            if baseline is None:
                raise ValidationError(f"{subject}: rule mean_change needs a baseline.")
            for c in per_column(rule, stats.columns):
                cur, base = stats[c], baseline.columns.get(c)
                if not cur.numeric or base is None or cur.mean is None or base.mean is None:
                    continue
                change = abs(cur.mean - base.mean) / max(abs(base.mean), 1e-12)
                emit(rule, change, "relative change of the mean", c)
        elif m in ("drift_psi", "drift_p_value"):
            if drift is None:
                raise ValidationError(f"{subject}: rule {m} needs a baseline to compare with.")
            for c in per_column(rule, drift.columns):
                if c not in drift.columns:
                    continue
                d = drift[c]
                if m == "drift_psi":
                    emit(rule, d.psi, "PSI against the baseline", c)
                else:
                    emit(rule, d.p_value, f"{d.test} p-value against the baseline", c)
        else:  # expectation: every failing rule, each judged by its own `mostly`
            report = (validation or {}).get(i)
            if report is None:
                raise ValidationError(f"{subject}: rule {i} (expectation) was not validated.")
            for r in report.failed:
                e = r.expectation
                allowed = 1.0 - e.mostly if e.row_level else 0.0
                alerts.append(
                    Alert(
                        rule.metric,
                        rule.severity,
                        r.unexpected_fraction,
                        allowed,
                        f"{subject}: expectation {e.name} failed: {r.unexpected} of "
                        f"{r.evaluated} rows unexpected ({r.unexpected_fraction:.2%}, allowed "
                        f"{allowed:.2%}), examples {[_plain(x) for x in r.examples]}.",
                        e.column,
                        subject,
                    )
                )
    return alerts


AlertChannel = Callable[[Alert], None] | str


def send_alerts(
    alerts: Sequence[Alert], channels: Sequence[AlertChannel], *, timeout: float = 5.0
) -> list[str]:
    """Deliver alerts to every channel; return the delivery errors (never raises for them).

    Channels: a callable taking an :class:`Alert`; ``"log"`` (a WARNING, or ERROR for
    critical alerts, on the ``fstore_spark.quality.checks`` logger); an ``http(s)://`` URL that
    receives each alert as a JSON POST with a ``text`` field (the message), which a Slack
    incoming webhook displays.

    A failing channel does not stop the others; its error is returned (and logged), so an
    alert is never lost silently.
    """
    errors: list[str] = []
    for ch in channels:
        for a in alerts:
            try:
                if callable(ch):
                    ch(a)
                elif ch == "log":
                    level = logging.ERROR if a.severity == "critical" else logging.WARNING
                    _log.log(level, "%s alert: %s", a.severity, a.message)
                elif ch.startswith(("http://", "https://")):
                    body = json.dumps({"text": a.message, **a.to_dict()}).encode()
                    req = urllib.request.Request(
                        ch, data=body, headers={"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                        resp.read()
                else:
                    raise DefinitionError(
                        f"unknown alert channel {ch!r}: use a callable, 'log' or an http(s) URL."
                    )
            except DefinitionError:
                raise
            except Exception as exc:  # a channel's failure must not hide the other channels
                label = ch if isinstance(ch, str) else getattr(ch, "__name__", repr(ch))
                msg = f"alert channel {label}: {exc}"
                _log.error(msg)
                errors.append(msg)
    return errors


# ------------------------------------------------------------------------------------------
# Feature tables: statistics kept per Delta version, drift and monitoring of a view
# ------------------------------------------------------------------------------------------


def statistics_table_path(project_root: str, view: str) -> str:
    """Delta table holding a view's statistics, one row per feature table version."""
    return f"{project_root.rstrip('/')}/_statistics/{view}"


def monitoring_table_path(project_root: str, view: str) -> str:
    """Delta table holding a view's monitoring checks and their alerts (append-only)."""
    return f"{project_root.rstrip('/')}/_monitoring/{view}"


def _resolve_version(spark: SparkSession, project_root: str, view: str, version: int | None) -> int:
    if version is not None:
        return int(version)
    v = table_version(spark, feature_table_path(project_root, view))
    if v is None:
        raise NotFoundError(
            f"feature view {view!r} has no feature table yet. Fix: materialize it first."
        )
    return v


def view_statistics(
    spark: SparkSession,
    project_root: str,
    view: str,
    features: Sequence[str],
    *,
    version: int | None = None,
    recompute: bool = False,
) -> Statistics:
    """Statistics of a view's feature columns at a Delta version (default the latest).

    Computed once per version and kept in ``_statistics/<view>`` (a version's data never
    changes, so its statistics are read back afterwards); ``recompute=True`` replaces them.

    Raises:
        NotFoundError: the view has no feature table, or not that version.
    """
    from pyspark.sql import functions as F

    from fstore_spark.lakehouse.tables import is_delta_table

    v = _resolve_version(spark, project_root, view, version)
    path = statistics_table_path(project_root, view)
    exists = is_delta_table(spark, path)
    if exists and not recompute:
        row = (
            spark.read.format("delta")
            .load(path)
            .where(F.col("table_version") == F.lit(v))
            .select("stats")
            .limit(1)
            .collect()
        )
        if row:
            return _statistics_from_json(row[0]["stats"])
    df = read_feature_table(spark, project_root, view, as_of_version=v)
    stats = compute_statistics(df, [f for f in features if f in df.columns], table_version=v)
    record = spark.createDataFrame(
        [(v, stats.rows, json.dumps(stats.to_dict()), stats.computed_at)],
        "table_version long, rows long, stats string, computed_at timestamp",
    )
    writer = record.write.format("delta").mode("overwrite" if exists else "errorifexists")
    if exists:  # idempotent: one row per version
        writer = writer.option("replaceWhere", f"table_version = {v}")
    writer.save(path)
    return stats


def _statistics_from_json(text: str) -> Statistics:
    d = json.loads(text)
    computed = d.get("computed_at")
    return Statistics(
        int(d["rows"]),
        {k: ColumnStatistics.from_dict(c) for k, c in d["columns"].items()},
        d.get("table_version"),
        None if computed is None else datetime.fromisoformat(computed),
    )


def select_rows(df: DataFrame, window: tuple[datetime | str, datetime | str] | None) -> DataFrame:
    """Rows with ``start <= feature_timestamp < end`` (all rows when ``window`` is None)."""
    from pyspark.sql import functions as F

    if window is None:
        return df
    start, end = (to_utc(x).replace(tzinfo=None) for x in window)
    ts = F.col(FEATURE_TIMESTAMP)
    return df.where((ts >= F.lit(start)) & (ts < F.lit(end)))


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring check of a view.

    Attributes:
        view: View name.
        table_version: The checked Delta version.
        baseline_version: The baseline's Delta version, if any.
        checked_at: When (UTC).
        alerts: The broken rules.
        delivery_errors: Channels that failed to deliver (the alerts are still recorded).
        statistics: Statistics of the checked version.
        drift: Drift against the baseline, if the rules needed it.
    """

    view: str
    table_version: int
    baseline_version: int | None
    checked_at: datetime
    alerts: list[Alert]
    delivery_errors: list[str]
    statistics: Statistics
    drift: DriftReport | None = None

    @property
    def ok(self) -> bool:
        """Whether no rule was broken."""
        return not self.alerts

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: view, versions, time, alerts, delivery errors."""
        return {
            "view": self.view,
            "table_version": self.table_version,
            "baseline_version": self.baseline_version,
            "checked_at": self.checked_at.isoformat(),
            "alerts": [a.to_dict() for a in self.alerts],
            "delivery_errors": list(self.delivery_errors),
        }


def monitor_view(
    spark: SparkSession,
    project_root: str,
    view: str,
    features: Sequence[str],
    rules: Sequence[MonitorRule],
    *,
    version: int | None = None,
    baseline_version: int | None = None,
    baseline_window: tuple[datetime | str, datetime | str] | None = None,
    channels: Sequence[AlertChannel] = ("log",),
    now: datetime | None = None,
    drift_options: Mapping[str, Any] | None = None,
) -> MonitorResult:
    """Check a view's feature table (default its latest version) against rules.

    The baseline is another version (``baseline_version``), or the rows of
    ``baseline_window`` (``[start, end)`` on ``feature_timestamp``) at the baseline version
    (default: the checked version); without either, rules that need a baseline raise.
    Alerts go to ``channels`` (see :func:`send_alerts`), and every check, with its alerts, is
    appended to ``_monitoring/<view>`` so the history of checks is a Delta table too.

    Raises:
        ValidationError: a rule needs a baseline and none was given.
        NotFoundError: the view has no feature table, or not that version.
    """
    from pyspark.sql import functions as F

    v = _resolve_version(spark, project_root, view, version)
    now = now or datetime.now(UTC)
    subject = f"view {view!r} version {v}"
    needs_baseline = any(r.needs_baseline for r in rules)
    has_baseline = baseline_version is not None or baseline_window is not None
    if needs_baseline and not has_baseline:  # before any Spark work
        names = sorted({r.metric for r in rules if r.needs_baseline})
        raise ValidationError(
            f"{subject}: rule(s) {names} compare with a baseline. Fix: give baseline_version= "
            "or baseline_window=(start, end)."
        )
    stats = view_statistics(spark, project_root, view, features, version=v)
    current = read_feature_table(spark, project_root, view, as_of_version=v)
    base_v = baseline_version if baseline_version is not None else v
    baseline_stats: Statistics | None = None
    drift: DriftReport | None = None
    if has_baseline and needs_baseline:
        base_df = select_rows(
            read_feature_table(spark, project_root, view, as_of_version=base_v), baseline_window
        )
        cols = [f for f in features if f in current.columns and f in base_df.columns]
        if baseline_window is None:
            baseline_stats = view_statistics(spark, project_root, view, features, version=base_v)
        else:
            baseline_stats = compute_statistics(base_df, cols, table_version=base_v)
        if any(r.metric.startswith("drift_") for r in rules):
            drift = detect_drift(base_df, current, cols, **dict(drift_options or {}))
    validation = {
        i: validate(current, r.expectations)
        for i, r in enumerate(rules)
        if r.metric == "expectation"
    }
    newest = None
    if any(r.metric == "freshness_hours" for r in rules):
        row = current.agg(F.max(FEATURE_TIMESTAMP).alias("m")).first()
        if row is not None and row["m"] is not None:
            newest = to_utc(row["m"])
        else:
            newest = datetime(1970, 1, 1, tzinfo=UTC)
    alerts = evaluate_rules(
        rules,
        stats,
        subject=subject,
        baseline=baseline_stats,
        drift=drift,
        validation=validation,
        newest=newest,
        now=now,
    )
    errors = send_alerts(alerts, channels) if alerts else []
    record = spark.createDataFrame(
        [
            (
                now.astimezone(UTC).replace(tzinfo=None),
                v,
                None if not has_baseline else base_v,
                len(alerts),
                json.dumps([a.to_dict() for a in alerts]),
                json.dumps(errors),
            )
        ],
        "checked_at timestamp, table_version long, baseline_version long, alert_count int, "
        "alerts string, delivery_errors string",
    )
    record.write.format("delta").mode("append").save(monitoring_table_path(project_root, view))
    return MonitorResult(
        view, v, None if not has_baseline else base_v, now, alerts, errors, stats, drift
    )


@dataclass(frozen=True)
class MonitorPlan:
    """What to check on one view, as written in a monitoring YAML file.

    Attributes:
        view: View name.
        rules: Monitor rules (the plan's expectations become one ``expectation`` rule).
        baseline_version: Baseline Delta version, if any.
        baseline_window: Baseline ``[start, end)`` on ``feature_timestamp``, if any.
        channels: Alert channels: ``log`` and/or http(s) webhook URLs.
    """

    view: str
    rules: tuple[MonitorRule, ...]
    baseline_version: int | None = None
    baseline_window: tuple[str, str] | None = None
    channels: tuple[str, ...] = ("log",)


def _expand_env(text: str, where: str) -> str:
    import os
    import re

    def env(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise DefinitionError(
                f"{where}: needs environment variable {m.group(1)}, which is not set."
            )
        return value

    return re.sub(r"\$\{(\w+)\}", env, text)


def load_monitoring(source: str | Mapping[str, Any]) -> list[MonitorPlan]:
    """Read monitoring plans from a YAML file (or its parsed mapping), validated up front.

    Format::

        views:
          customer_transaction_features:
            baseline_window: ["2024-01-01", "2024-02-01"]   # or baseline_version: 3
            channels: [log, "${SLACK_WEBHOOK_URL}"]
            expectations:            # per column, see expectations_from_spec
              total_spent_30d: {min_value: 0, null_percentage: 0.05}
            rules:
              - {metric: missing_values, threshold: 0.05, severity: critical}
              - {metric: drift_psi, threshold: 0.2}

    ``${VAR}`` in channels is read from the environment (webhook URLs are secrets).

    Raises:
        DefinitionError: unknown keys, metrics or severities, bad expectations, a missing
            environment variable, an unreadable file.
    """
    if isinstance(source, str):
        import yaml

        try:
            with open(source, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DefinitionError(f"monitoring file {source}: {exc}") from exc
        where = source
    else:
        data, where = source, "monitoring plan"
    if not isinstance(data, Mapping) or set(data) - {"views"}:
        raise DefinitionError(f"{where}: expected a mapping with one key 'views'.")
    known = {"baseline_version", "baseline_window", "channels", "expectations", "rules"}
    plans = []
    for view, spec in (data.get("views") or {}).items():
        spec = spec or {}
        at = f"{where}: view {view!r}"
        unknown = set(spec) - known
        if unknown:
            raise DefinitionError(
                f"{at}: unknown key(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}."
            )
        rules: list[MonitorRule] = []
        for i, r in enumerate(spec.get("rules") or []):
            try:
                rules.append(MonitorRule(**r))
            except TypeError as exc:
                raise DefinitionError(f"{at} rule {i}: {exc}") from exc
        exps: list[Expectation] = []
        for column, espec in (spec.get("expectations") or {}).items():
            exps += expectations_from_spec(column, espec or {})
        if exps:
            rules.append(MonitorRule("expectation", expectations=tuple(exps)))
        channels = tuple(_expand_env(str(ch), at) for ch in spec.get("channels") or ["log"])
        window = spec.get("baseline_window")
        if window is not None and (not isinstance(window, list) or len(window) != 2):
            raise DefinitionError(f"{at}: baseline_window is [start, end].")
        version = spec.get("baseline_version")
        plans.append(
            MonitorPlan(
                str(view),
                tuple(rules),
                None if version is None else int(version),
                None if window is None else (str(window[0]), str(window[1])),
                channels,
            )
        )
    return plans
