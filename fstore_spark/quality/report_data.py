"""The small figures an HTML quality report plots, counted in Spark.

A report compares two Delta versions of a view's feature table. Its plots need, per feature,
the share of rows in each histogram bin (numeric features) or category (strings, booleans) on
both sides; all of them are counted in one grouped aggregation over both versions, so only
``2 x features x (bins or categories + 1)`` counts reach the driver. The report's monitor
section reads the newest few checks recorded for the compared version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.lakehouse.tables import is_delta_table, read_delta, to_utc
from fstore_spark.quality._values import is_float, is_numeric, quoted
from fstore_spark.quality.monitoring import monitoring_table_path
from fstore_spark.quality.statistics import ColumnStatistics

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "OTHER",
    "CATEGORICAL_TYPES",
    "Distribution",
    "RecordedCheck",
    "distributions",
    "recorded_checks",
]

OTHER = "(other)"  # the bucket of every category outside the plotted ones
CATEGORICAL_TYPES = ("string", "boolean")
_LOW, _HIGH = "0.01", "0.99"  # the histogram range: 1st to 99th percentile of both sides


@dataclass(frozen=True)
class Distribution:
    """Baseline and current counts of one feature over shared bins or categories.

    Attributes:
        feature: Feature name.
        kind: ``numeric`` (histogram over ``edges``) or ``categorical`` (counts per label).
        labels: Categorical: the plotted categories, then :data:`OTHER`.
        edges: Numeric: the ``bins + 1`` bin edges.
        baseline: Non-null values of the baseline per bin or label.
        current: Non-null values of the current version per bin or label.
        clipped: Numeric: some values lie outside the edges and are counted in the end bins.
    """

    feature: str
    kind: str
    labels: tuple[str, ...]
    edges: tuple[float, ...]
    baseline: tuple[int, ...]
    current: tuple[int, ...]
    clipped: bool = False

    @staticmethod
    def shares(counts: Sequence[int]) -> list[float]:
        """Counts as fractions of their total (zeros when there are none)."""
        total = sum(counts)
        return [c / total if total else 0.0 for c in counts]


@dataclass(frozen=True)
class RecordedCheck:
    """One monitoring check recorded for a view version, with its alerts.

    Attributes:
        checked_at: When the check ran (UTC).
        baseline_version: The baseline version it compared with, if any.
        alerts: The alerts it raised, as recorded (``metric``, ``severity``, ``message``...).
    """

    checked_at: datetime
    baseline_version: int | None
    alerts: tuple[dict[str, Any], ...]


def _range(sides: Sequence[ColumnStatistics]) -> tuple[float, float] | None:
    """Histogram range of a numeric feature from both sides' statistics (None: no values).

    The 1st to 99th percentile of both sides together, so one outlier does not squeeze every
    other value into a bin; the min and max when there are no quantiles.
    """
    lows = [s.quantiles.get(_LOW, s.min) for s in sides]
    highs = [s.quantiles.get(_HIGH, s.max) for s in sides]
    lo = min((x for x in lows if x is not None), default=None)
    hi = max((x for x in highs if x is not None), default=None)
    if lo is None or hi is None:
        return None
    return (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)


def _bins(dtype: str, lo: float, hi: float, bins: int) -> tuple[float, float, int]:
    """Histogram range and bin count: one bin per value for integers of a small range."""
    integer = is_numeric(dtype) and not is_float(dtype) and not dtype.startswith("decimal")
    if integer and hi - lo < bins:
        low, high = math.floor(lo), math.ceil(hi)
        return low - 0.5, high + 0.5, high - low + 1
    return lo, hi, bins


def _categories(sides: Sequence[ColumnStatistics], top_k: int) -> list[str]:
    """The categories to plot: the most frequent on either side, by their larger share."""
    share: dict[str, float] = {}
    for s in sides:
        rows = s.count - s.nulls
        for value, n in s.top_values:
            key = category_text(value)
            share[key] = max(share.get(key, 0.0), n / rows if rows else 0.0)
    return sorted(share, key=lambda k: (-share[k], k))[:top_k]


def category_text(value: Any) -> str:
    """A category as Spark casts it to a string (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bin_key(column: str, dtype: str, lo: float, hi: float, bins: int) -> Column:
    """Bin index (as text) of a numeric column's value over ``[lo, hi]``; ends take the rest."""
    from pyspark.sql import functions as F

    v = F.col(quoted(column)).cast("double")
    valid = v.isNotNull() & ~F.isnan(v) if is_float(dtype) else v.isNotNull()
    index = F.floor((v - F.lit(lo)) / F.lit((hi - lo) / bins))
    clamped = F.least(F.greatest(index, F.lit(0)), F.lit(bins - 1)).cast("string")
    return F.when(valid, clamped)


def _category_key(column: str, categories: Sequence[str]) -> Column:
    """A string or boolean column's value as text, or :data:`OTHER` outside ``categories``."""
    from pyspark.sql import functions as F

    v = F.col(quoted(column)).cast("string")
    known = v.isin(list(categories)) if categories else F.lit(False)
    return F.when(v.isNull(), F.lit(None)).when(known, v).otherwise(F.lit(OTHER))


def distributions(
    baseline: DataFrame,
    current: DataFrame,
    stats: Mapping[str, tuple[ColumnStatistics, ColumnStatistics]],
    *,
    bins: int = 30,
    top_k: int = 12,
) -> dict[str, Distribution]:
    """Counts per histogram bin or category of each numeric, string or boolean feature.

    Bin ranges and categories come from both versions' statistics (``stats``: baseline and
    current per feature); the counting is one grouped aggregation over both versions.
    Features of other types, and numeric features without a value, are left out.
    """
    from pyspark.sql import functions as F

    plans: dict[str, tuple[Column, tuple[str, ...], tuple[float, ...], bool]] = {}
    for name, (b, c) in stats.items():
        if is_numeric(b.dtype):
            found = _range((b, c))
            if found is None:
                continue
            lo, hi, n = _bins(b.dtype, *found, bins)
            edges = tuple(lo + (hi - lo) * i / n for i in range(n + 1))
            clipped = any(
                (s.min is not None and s.min < lo) or (s.max is not None and s.max > hi)
                for s in (b, c)
            )
            plans[name] = (_bin_key(name, b.dtype, lo, hi, n), (), edges, clipped)
        elif b.dtype in CATEGORICAL_TYPES:
            labels = (*_categories((b, c), top_k), OTHER)
            plans[name] = (_category_key(name, labels[:-1]), labels, (), False)
    if not plans:
        return {}
    names = list(plans)
    keys = [plans[n][0].alias(f"_k{i}") for i, n in enumerate(names)]
    both = baseline.select(F.lit(0).alias("_side"), *keys).unionByName(
        current.select(F.lit(1).alias("_side"), *keys)
    )
    pairs = F.array(
        *[F.struct(F.lit(i).alias("f"), F.col(f"_k{i}").alias("k")) for i in range(len(names))]
    )
    counted = (
        both.select("_side", F.explode(pairs).alias("p"))
        .select("_side", F.col("p.f").alias("f"), F.col("p.k").alias("k"))
        .where(F.col("k").isNotNull())
        .groupBy("_side", "f", "k")
        .count()
        .collect()  # bounded: 2 sides x features x (bins or categories + 1)
    )
    found_counts: dict[tuple[int, int, str], int] = {
        (int(r["_side"]), int(r["f"]), str(r["k"])): int(r["count"]) for r in counted
    }
    return {n: _distribution(n, i, plans[n][1:], found_counts) for i, n in enumerate(names)}


def _distribution(
    name: str,
    index: int,
    plan: tuple[tuple[str, ...], tuple[float, ...], bool],
    counts: Mapping[tuple[int, int, str], int],
) -> Distribution:
    """One feature's :class:`Distribution` from the counts of the grouped aggregation."""
    labels, edges, clipped = plan
    keys = list(labels) if labels else [str(b) for b in range(len(edges) - 1)]
    side = [tuple(counts.get((s, index, k), 0) for k in keys) for s in (0, 1)]
    kind = "categorical" if labels else "numeric"
    return Distribution(name, kind, labels, edges, side[0], side[1], clipped)


def recorded_checks(
    spark: SparkSession, project_root: str, view: str, version: int, *, limit: int = 10
) -> list[RecordedCheck]:
    """The newest ``limit`` monitoring checks recorded for a version of a view, newest first."""
    from pyspark.sql import functions as F

    path = monitoring_table_path(project_root, view)
    if not is_delta_table(spark, path):
        return []
    rows = (
        read_delta(spark, path)
        .where(F.col("table_version") == F.lit(version))
        .orderBy(F.col("checked_at").desc())
        .limit(limit)
        .collect()  # bounded: limit rows
    )
    return [
        RecordedCheck(
            to_utc(r["checked_at"]),
            None if r["baseline_version"] is None else int(r["baseline_version"]),
            tuple(json.loads(r["alerts"] or "[]")),
        )
        for r in rows
    ]
