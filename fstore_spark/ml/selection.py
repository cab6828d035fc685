"""Feature selection: correlation analysis and mutual information, computed by Spark.

Both reduce the data to small tables in one aggregation each (sums of products for
correlations; joint counts of binned values for mutual information), so a training set of any
size can be analysed; only a ``k x k`` matrix or ``features x bins x classes`` counts reach the
driver.

* :func:`correlation_matrix`: Pearson correlations over pairwise-complete rows (a pair of
  columns uses the rows where both are non-null and not NaN), as pandas' ``DataFrame.corr``.
* :func:`mutual_information`: mutual information (nats) between each feature and the target.
  Numeric features and targets are cut at their distinct ``bins``-quantiles (a value equal to
  an edge goes to the bin below it, so a 0/1 column keeps its two values apart; nulls form
  their own bin); strings and booleans use their values (the ``max_categories`` most
  frequent, the rest in one bucket).
* :func:`select_features`: the ``top_k`` features by mutual information or by absolute
  correlation with the target, optionally skipping a feature whose absolute correlation with
  one already chosen exceeds ``max_correlation`` (redundancy).

Example::

    from fstore_spark.ml.selection import correlation_matrix, select_features

    corr = correlation_matrix(training_df, ["amount_7d", "amount_30d", "count_30d"])
    best = select_features(training_df, "converted", method="mutual_info", top_k=10,
                           max_correlation=0.95)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

__all__ = ["correlation_matrix", "mutual_information", "select_features"]

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


def _numeric(dtype: str) -> bool:
    """Whether a Spark type name (``df.dtypes``) is numeric."""
    return dtype.startswith(_NUMERIC)


def _check(df: DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Column -> Spark type of ``df``, after checking that ``columns`` exist."""
    types = dict(df.dtypes)
    missing = [c for c in columns if c not in types]
    if missing:
        raise DefinitionError(
            f"feature selection: column(s) {missing} are not in the data; columns: "
            f"{', '.join(df.columns)}."
        )
    return types


def _q(c: str) -> Column:
    """A column reference that survives dots and backticks in the name."""
    from pyspark.sql import functions as F

    return F.col(f"`{c.replace('`', '``')}`")


def correlation_matrix(df: DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Pearson correlation of numeric columns, pairwise-complete (one aggregation).

    Returns:
        A square pandas DataFrame indexed and labelled by the columns; NaN where a pair has
        fewer than two rows or a constant column.
    """
    import pandas as pd
    from pyspark.sql import functions as F

    types = _check(df, columns or [])
    cols = list(columns) if columns is not None else [c for c, t in df.dtypes if _numeric(t)]
    bad = [c for c in cols if not _numeric(types[c])]
    if bad:
        raise DefinitionError(f"correlation needs numeric columns; {bad} are not.")
    x = {c: _q(c).cast("double") for c in cols}
    ok = {c: x[c].isNotNull() & ~F.isnan(x[c]) for c in cols}
    aggs: list[Column] = []
    pairs = [(i, j) for i in range(len(cols)) for j in range(i + 1, len(cols))]
    for i, j in pairs:
        a, b = cols[i], cols[j]
        both = ok[a] & ok[b]
        xa, xb = F.when(both, x[a]), F.when(both, x[b])
        aggs += [
            F.count(F.when(both, 1)).alias(f"n{i}_{j}"),
            F.sum(xa).alias(f"a{i}_{j}"),
            F.sum(xb).alias(f"b{i}_{j}"),
            F.sum(xa * xa).alias(f"aa{i}_{j}"),
            F.sum(xb * xb).alias(f"bb{i}_{j}"),
            F.sum(xa * xb).alias(f"ab{i}_{j}"),
        ]
    out = pd.DataFrame(float("nan"), index=cols, columns=cols)
    for c in cols:
        out.loc[c, c] = 1.0
    if not pairs:
        return out
    row = df.select(*aggs).first()
    assert row is not None
    for i, j in pairs:
        n = int(row[f"n{i}_{j}"])
        if n < 2:
            continue
        sa, sb = float(row[f"a{i}_{j}"]), float(row[f"b{i}_{j}"])
        cov = float(row[f"ab{i}_{j}"]) - sa * sb / n
        va = float(row[f"aa{i}_{j}"]) - sa * sa / n
        vb = float(row[f"bb{i}_{j}"]) - sb * sb / n
        if va <= 0 or vb <= 0:
            continue
        r = max(-1.0, min(1.0, cov / math.sqrt(va * vb)))
        out.loc[cols[i], cols[j]] = out.loc[cols[j], cols[i]] = r
    return out


def _pairs(matrix: pd.DataFrame) -> dict[tuple[str, str], float]:
    """A correlation matrix as {(a, b): r}."""
    out: dict[tuple[str, str], float] = {}
    for a, column in matrix.to_dict().items():
        for b, r in column.items():
            out[(str(b), str(a))] = float(r)
    return out


def _bin_columns(
    df: DataFrame, columns: Sequence[str], types: dict[str, str], bins: int, max_categories: int
) -> dict[str, Column]:
    """Per column, an expression of its bin (a string; null for null/NaN).

    Numeric columns: the number of quantile edges strictly below the value, the edges being
    the distinct ``1/bins ... (bins-1)/bins`` quantiles (one job for every numeric column).
    Others: the value among the ``max_categories`` most frequent, else one shared bucket.
    """
    from pyspark.sql import functions as F

    nums = list(dict.fromkeys(c for c in columns if _numeric(types[c])))
    probs = [i / bins for i in range(1, bins)]
    edges = dict(zip(nums, df.approxQuantile(nums, probs, 1e-3), strict=True)) if nums else {}
    out: dict[str, Column] = {}
    for c in dict.fromkeys(columns):
        col = _q(c)
        if c in edges:
            v = col.cast("double")
            idx = F.lit(0)
            for e in sorted(set(edges[c])):
                idx = idx + (v > F.lit(e)).cast("int")
            out[c] = F.when(col.isNotNull() & ~F.isnan(v), idx.cast("string"))
            continue
        s_col = col.cast("string")
        top = [
            r[0]
            for r in df.where(col.isNotNull())
            .groupBy(s_col.alias("v"))
            .agg(F.count(F.lit(1)).alias("n"))
            .orderBy(F.col("n").desc(), F.col("v").asc())
            .limit(max_categories)
            .collect()
        ]
        out[c] = F.when(s_col.isin(top), s_col).when(s_col.isNotNull(), F.lit("\x00other"))
    return out


def mutual_information(
    df: DataFrame,
    features: Sequence[str],
    target: str,
    *,
    bins: int = 10,
    max_categories: int = 50,
) -> dict[str, float]:
    """Mutual information (nats) of each feature with the target, on binned values.

    Nulls are a value of their own (a feature that is null exactly when the target is 1 is
    informative). All features are counted in one aggregation over a long (feature, bin,
    target) layout.

    Returns:
        Feature -> mutual information, in the order given.
    """
    from pyspark.sql import functions as F

    types = _check(df, [*features, target])
    binned = _bin_columns(df, [*features, target], types, bins, max_categories)
    ybin = binned[target]
    cells = [F.struct(F.lit(i).alias("f"), binned[f].alias("x")) for i, f in enumerate(features)]
    if not cells:
        return {}
    long = df.select(F.explode(F.array(*cells)).alias("c"), ybin.alias("y")).select(
        "c.f", "c.x", "y"
    )
    counts = long.groupBy("f", "x", "y").agg(F.count(F.lit(1)).alias("n")).collect()
    joint: dict[int, dict[tuple[Any, Any], int]] = {i: {} for i in range(len(features))}
    for r in counts:
        joint[int(r["f"])][(r["x"], r["y"])] = int(r["n"])
    return {f: _mutual_information(joint[i]) for i, f in enumerate(features)}


def _mutual_information(joint: dict[tuple[Any, Any], int]) -> float:
    """Mutual information (nats) of a joint count table {(x bin, y bin): count}.

    Empty cells are absent, so every logarithm is defined; rounding below 0 is clipped.
    """
    n = sum(joint.values())
    px: dict[Any, int] = {}
    py: dict[Any, int] = {}
    for (xv, yv), k in joint.items():
        px[xv] = px.get(xv, 0) + k
        py[yv] = py.get(yv, 0) + k
    mi = 0.0
    for (xv, yv), k in joint.items():
        mi += (k / n) * math.log(k * n / (px[xv] * py[yv]))
    return max(mi, 0.0)


def _default_candidates(df: DataFrame, target: str) -> list[str]:
    """Numeric, string and boolean columns but the target and identifier-like columns.

    An identifier is a string or integer column with distinct values for at least half of its
    non-null rows (one approximate count per column, in one pass).
    """
    from pyspark.sql import functions as F

    cols = [c for c, t in df.dtypes if c != target and (_numeric(t) or t in ("string", "boolean"))]
    keyish = [c for c, t in df.dtypes if c in cols and (t == "string" or t.endswith("int"))]
    if not keyish:
        return cols
    row = df.select(
        *[F.count(_q(c)).alias(f"n{i}") for i, c in enumerate(keyish)],
        *[F.approx_count_distinct(_q(c)).alias(f"d{i}") for i, c in enumerate(keyish)],
    ).first()
    if row is None:
        return cols
    ids = {c for i, c in enumerate(keyish) if row[f"n{i}"] and 2 * row[f"d{i}"] >= row[f"n{i}"]}
    return [c for c in cols if c not in ids]


def select_features(
    df: Any,
    target: str,
    features: Sequence[str] | None = None,
    *,
    method: str = "mutual_info",
    top_k: int = 10,
    max_correlation: float | None = None,
    bins: int = 10,
    exclude: Sequence[str] = (),
) -> list[str]:
    """The ``top_k`` features most related to ``target``, best first.

    Args:
        df: Training data with the features and the target: a Spark DataFrame, or a training
            set (``get_historical_features`` / ``get_training_set``), whose join keys, label
            columns and timestamps are then never candidates.
        target: Label column.
        features: Candidates; default a training set's features, or every numeric, string and
            boolean column of a DataFrame but the target, except identifiers: string and
            integer columns whose distinct values are at least half of their non-null rows
            (``customer_id``, ``order_id``...), which would rank high for no reason.
        exclude: Columns that are never candidates (e.g. keys of a plain DataFrame).
        method: ``mutual_info`` (any feature type) or ``correlation`` (absolute Pearson
            correlation with a numeric target; numeric features only).
        top_k: How many to return.
        max_correlation: Skip a numeric candidate whose absolute correlation with an already
            selected numeric feature is above this (removes near-duplicates such as a 30-day
            sum and a 30-day mean of the same count).
        bins: Quantile bins for mutual information.

    Ties are broken by name, so the result is deterministic.
    """
    if method not in ("mutual_info", "correlation"):
        raise DefinitionError(
            f"unknown selection method {method!r}; valid: mutual_info, correlation."
        )
    feature_columns = getattr(df, "feature_columns", None)  # a training set
    df = getattr(df, "df", df)
    types = _check(df, [target, *(features or [])])
    if features is not None:
        cands = list(features)
    elif feature_columns is not None:
        cands = [c for c in feature_columns if c != target]
    else:
        cands = _default_candidates(df, target)
    cands = [c for c in cands if c not in set(exclude)]
    if method == "mutual_info":
        scores = mutual_information(df, cands, target, bins=bins)
    else:
        nums = [c for c in cands if _numeric(types[c])]
        with_target = _pairs(correlation_matrix(df, [*nums, target]))
        scores = {
            c: abs(v) for c in nums if not math.isnan(v := with_target.get((c, target), math.nan))
        }
    ranked = sorted(scores, key=lambda c: (-scores[c], c))
    if max_correlation is None:
        return ranked[:top_k]
    nums = [c for c in ranked if _numeric(types[c])]
    among = _pairs(correlation_matrix(df, nums)) if len(nums) > 1 else {}
    chosen: list[str] = []
    for c in ranked:
        if len(chosen) == top_k:
            break
        if any(abs(among.get((c, s), 0.0)) > max_correlation for s in chosen):
            continue  # NaN compares False: an undefined correlation never excludes
        chosen.append(c)
    return chosen
