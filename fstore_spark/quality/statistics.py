"""Column statistics of a DataFrame, and of each Delta version of a feature table.

:func:`compute_statistics` computes every figure of every column in one aggregation (plus one
grouped aggregation per non-numeric column for its most frequent values). :func:`view_statistics`
keeps them per Delta version in ``_statistics/<view>``: a version's data never changes, so its
statistics are computed once and read back afterwards.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError
from fstore_spark.lakehouse.tables import (
    is_delta_table,
    read_delta,
    read_feature_table,
    save_delta,
)
from fstore_spark.quality._values import is_float, is_numeric, plain, quoted
from fstore_spark.quality.feature_table import resolve_version

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, Row, SparkSession

__all__ = [
    "DEFAULT_QUANTILES",
    "ColumnStatistics",
    "Statistics",
    "compute_statistics",
    "statistics_table_path",
    "view_statistics",
]

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_TOP_VALUE_TYPES = ("string", "boolean")  # the non-numeric types whose top values are kept


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
        return is_numeric(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["top_values"] = [[plain(v), n] for v, n in self.top_values]
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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Statistics:
        """Inverse of :meth:`to_dict`."""
        computed = d.get("computed_at")
        return cls(
            int(d["rows"]),
            {k: ColumnStatistics.from_dict(c) for k, c in d["columns"].items()},
            d.get("table_version"),
            None if computed is None else datetime.fromisoformat(computed),
        )


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

    Raises:
        DefinitionError: a column is not in the data.
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
        aggs += _column_aggregates(c, types[c], i, quantiles)
    row = df.select(*aggs).first()
    assert row is not None  # a global aggregation always yields one row
    total = int(row["_n"])
    out: dict[str, ColumnStatistics] = {}
    for i, c in enumerate(cols):
        common = _common_figures(row, i, c, types[c], total)
        if is_numeric(types[c]):
            out[c] = ColumnStatistics(**common, **_numeric_figures(row, i, quantiles))
        else:
            out[c] = ColumnStatistics(**common, top_values=_top_values(df, c, types[c], top_k))
    return Statistics(total, out, table_version, datetime.now(UTC))


def _column_aggregates(column: str, dtype: str, i: int, quantiles: Sequence[float]) -> list[Column]:
    """The aggregates of column ``i`` in the shared aggregation, aliased ``_<figure><i>``.

    NaN is counted on its own and left out of every other figure (Spark would count it as a
    distinct value and let it poison the mean).
    """
    from pyspark.sql import functions as F

    col = F.col(quoted(column))
    aggs = [F.count(F.when(col.isNull(), 1)).alias(f"_null{i}")]
    value = F.when(~F.isnan(col), col) if is_float(dtype) else col
    if is_float(dtype):
        aggs.append(F.count(F.when(F.isnan(col), 1)).alias(f"_nan{i}"))
    aggs.append(F.approx_count_distinct(value, 0.01).alias(f"_d{i}"))
    if is_numeric(dtype):
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
    return aggs


def _common_figures(row: Row, i: int, column: str, dtype: str, total: int) -> dict[str, Any]:
    """The figures every column has (rows, nulls, NaNs, distinct values) from the aggregate row."""
    return {
        "column": column,
        "dtype": dtype,
        "count": total,
        "nulls": int(row[f"_null{i}"]),
        "nans": int(row[f"_nan{i}"]) if is_float(dtype) else 0,
        "distinct": int(row[f"_d{i}"]),
    }


def _numeric_figures(row: Row, i: int, quantiles: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation, min, max and quantiles of numeric column ``i``."""
    qv = row[f"_q{i}"] if quantiles else None
    return {
        "mean": _opt(row[f"_mean{i}"]),
        "stddev": _opt(row[f"_sd{i}"]),
        "min": _opt(row[f"_min{i}"]),
        "max": _opt(row[f"_max{i}"]),
        "quantiles": {str(float(q)): float(x) for q, x in zip(quantiles, qv, strict=True)}
        if qv is not None
        else {},
    }


def _top_values(df: DataFrame, column: str, dtype: str, top_k: int) -> list[tuple[Any, int]]:
    """The ``top_k`` most frequent non-null values of a string or boolean column, ties by value.

    Other non-numeric types (timestamps, arrays...) get none: their values rarely repeat.
    """
    from pyspark.sql import functions as F

    if top_k <= 0 or dtype not in _TOP_VALUE_TYPES:
        return []
    col = F.col(quoted(column))
    rows = (
        df.where(col.isNotNull())
        .groupBy(col.alias("v"))
        .agg(F.count(F.lit(1)).alias("n"))
        .orderBy(F.col("n").desc(), F.col("v").asc())
        .limit(top_k)
        .collect()  # bounded: top_k rows
    )
    return [(r["v"], int(r["n"])) for r in rows]


def _opt(x: Any) -> float | None:
    """A figure as a float, or None when Spark had none (no values) or it is NaN."""
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def statistics_table_path(project_root: str, view: str) -> str:
    """Delta table holding a view's statistics, one row per feature table version."""
    return f"{project_root.rstrip('/')}/_statistics/{view}"


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
    v = resolve_version(spark, project_root, view, version)
    path = statistics_table_path(project_root, view)
    exists = is_delta_table(spark, path)
    if exists and not recompute:
        kept = _kept_statistics(spark, path, v)
        if kept is not None:
            return kept
    df = read_feature_table(spark, project_root, view, as_of_version=v)
    stats = compute_statistics(df, [f for f in features if f in df.columns], table_version=v)
    _keep_statistics(spark, path, stats, v, exists)
    return stats


def _kept_statistics(spark: SparkSession, path: str, version: int) -> Statistics | None:
    """The statistics kept for ``version`` in the statistics table, if any."""
    from pyspark.sql import functions as F

    row = (
        read_delta(spark, path)
        .where(F.col("table_version") == F.lit(version))
        .select("stats")
        .limit(1)
        .collect()
    )
    return Statistics.from_dict(json.loads(row[0]["stats"])) if row else None


def _keep_statistics(
    spark: SparkSession, path: str, stats: Statistics, version: int, exists: bool
) -> None:
    """Write the statistics of ``version``, replacing any row already kept for it."""
    record = spark.createDataFrame(
        [(version, stats.rows, json.dumps(stats.to_dict()), stats.computed_at)],
        "table_version long, rows long, stats string, computed_at timestamp",
    )
    # "error", not "errorifexists": Spark Connect accepts only the short name
    writer = record.write.format("delta").mode("overwrite" if exists else "error")
    if exists:  # idempotent: one row per version
        writer = writer.option("replaceWhere", f"table_version = {version}")
    save_delta(writer, path)
