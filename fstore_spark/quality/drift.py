"""Drift: has a column's distribution moved between a reference and a current dataset?

Numeric columns are compared by the two-sample Kolmogorov-Smirnov test
(``scipy.stats.ks_2samp``) and the population stability index (PSI) over the reference's
quantile bins; categorical columns by a chi-square test of the category counts
(``scipy.stats.chi2_contingency``) and PSI over the same categories. Counting happens in Spark;
only bin counts, category counts and at most ``sample_size`` values per side for a KS test
reach the driver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError
from fstore_spark.quality._values import is_numeric, quoted

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

__all__ = ["ColumnDrift", "DriftReport", "detect_drift"]

_METHODS = {"ks": "ks", "ks_test": "ks", "chi2": "ks", "psi": "psi"}
_PSI_FLOOR = 1e-4  # proportions below this count as this, so an empty bin does not give infinity


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


@dataclass(frozen=True)
class _Options:
    """How :func:`detect_drift` tests and flags each column (see its arguments)."""

    how: str
    threshold: float
    bins: int
    sample_size: int
    max_categories: int
    seed: int

    def flags(self, p_value: float, psi: float) -> bool:
        """Whether a column with this p-value and PSI is flagged as drifted."""
        return (p_value < self.threshold) if self.how == "ks" else (psi >= self.threshold)


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
    opts = _Options(how, thr, bins, sample_size, max_categories, seed)
    rtypes = dict(reference.dtypes)
    out: dict[str, ColumnDrift] = {}
    for c in _compared_columns(reference, current, columns):
        col = F.col(quoted(c))
        if is_numeric(rtypes[c]):
            valid = col.isNotNull() & ~F.isnan(col.cast("double"))
            ref = reference.where(valid).select(col.cast("double").alias("v"))
            cur = current.where(valid).select(col.cast("double").alias("v"))
            out[c] = _numeric_drift(c, ref, cur, opts)
        else:
            ref = reference.where(col.isNotNull()).select(col.cast("string").alias("v"))
            cur = current.where(col.isNotNull()).select(col.cast("string").alias("v"))
            out[c] = _categorical_drift(c, ref, cur, opts)
    return DriftReport(out, how, thr)


def _compared_columns(
    reference: DataFrame, current: DataFrame, columns: Sequence[str] | None
) -> list[str]:
    """The columns to compare, in the reference's order by default.

    By default: the numeric, string and boolean columns both sides have (timestamps, dates
    and nested types have no test here). Given columns must be on both sides.
    """
    rtypes, ctypes = dict(reference.dtypes), dict(current.dtypes)
    if columns is None:
        return [
            c
            for c in reference.columns
            if c in ctypes and (is_numeric(rtypes[c]) or rtypes[c] in ("string", "boolean"))
        ]
    cols = list(columns)
    for c in cols:
        if c not in rtypes or c not in ctypes:
            raise DefinitionError(
                f"drift: column {c!r} is not in both datasets; reference has "
                f"{', '.join(reference.columns)}; current has {', '.join(current.columns)}."
            )
    return cols


def _numeric_drift(name: str, ref: DataFrame, cur: DataFrame, opts: _Options) -> ColumnDrift:
    """KS test and PSI of one numeric column (``ref`` and ``cur`` hold its values as ``v``)."""
    from pyspark.sql import functions as F

    probs = [i / opts.bins for i in range(1, opts.bins)]
    edges = sorted(set(ref.approxQuantile("v", probs, 1e-3))) if opts.bins > 1 else []
    bin_index = F.lit(0)  # bin b holds edges[b-1] < v <= edges[b]
    for e in edges:
        bin_index = bin_index + (F.col("v") > F.lit(e)).cast("int")
    rc, cc = _counts_by(ref, bin_index), _counts_by(cur, bin_index)
    n_ref, n_cur = sum(rc.values()), sum(cc.values())
    n_bins = len(edges) + 1
    psi = _psi([rc.get(b, 0) for b in range(n_bins)], [cc.get(b, 0) for b in range(n_bins)])
    if n_ref and n_cur:
        from scipy import stats

        res = stats.ks_2samp(
            _bounded_sample(ref, n_ref, opts.sample_size, opts.seed),
            _bounded_sample(cur, n_cur, opts.sample_size, opts.seed),
        )
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = 0.0, 1.0
    sampled = max(n_ref, n_cur) > opts.sample_size
    drifted = opts.flags(p, psi)
    return ColumnDrift(name, "numeric", "ks", stat, p, psi, bool(drifted), n_ref, n_cur, sampled)


def _categorical_drift(name: str, ref: DataFrame, cur: DataFrame, opts: _Options) -> ColumnDrift:
    """Chi-square test and PSI of one categorical column over the reference's top categories.

    Values outside the reference's ``max_categories`` most frequent ones share one bucket, so
    a category new in the current data shows up there.
    """
    from pyspark.sql import functions as F

    top = [
        r["v"]
        for r in ref.groupBy("v")
        .agg(F.count(F.lit(1)).alias("n"))
        .orderBy(F.col("n").desc(), F.col("v").asc())
        .limit(opts.max_categories)
        .collect()  # bounded: max_categories rows
    ]
    bucket = F.when(F.col("v").isin(top), F.col("v")).otherwise(F.lit(None)) if top else F.lit(None)
    rc, cc = _counts_by(ref, bucket), _counts_by(cur, bucket)
    keys: list[str | None] = [*top, None]  # None: every other value
    r = [rc.get(k, 0) for k in keys]
    c = [cc.get(k, 0) for k in keys]
    psi = _psi(r, c)
    table = [(x, y) for x, y in zip(r, c, strict=True) if x + y > 0]
    n_ref, n_cur = sum(r), sum(c)
    if n_ref and n_cur and len(table) >= 2:
        from scipy import stats

        res = stats.chi2_contingency([[x for x, _ in table], [y for _, y in table]])
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = 0.0, 1.0
    drifted = opts.flags(p, psi)
    return ColumnDrift(name, "categorical", "chi2", stat, p, psi, bool(drifted), n_ref, n_cur)


def _counts_by(df: DataFrame, key: Column) -> dict[Any, int]:
    """Rows per value of ``key`` (a bin or bucket), counted in Spark; bounded by the keys."""
    from pyspark.sql import functions as F

    rows = df.groupBy(key.alias("b")).agg(F.count(F.lit(1)).alias("n")).collect()
    return {r["b"]: int(r["n"]) for r in rows}


def _bounded_sample(df: DataFrame, n: int, sample_size: int, seed: int) -> list[float]:
    """At most ``sample_size`` of the ``n`` values of ``v``: all of them, or a seeded sample.

    The sampling fraction aims 20% above ``sample_size`` so that the limit, not chance,
    usually decides the size.
    """
    if n <= sample_size:
        return [float(r[0]) for r in df.collect()]  # bounded: n <= sample_size
    frac = min(1.0, 1.2 * sample_size / n)
    return [float(r[0]) for r in df.sample(fraction=frac, seed=seed).limit(sample_size).collect()]


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
