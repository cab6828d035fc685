"""Point-in-time (as-of) join: the latest feature row known at each label's instant.

**Semantics.** For a label row with keys ``k`` and time ``t``, a feature row of the same keys is
*eligible* iff ``feature_ts <= t`` and, when the view has a ttl, ``t - feature_ts <= ttl``
(a row exactly one ttl old is still valid). Among eligible rows the one with the greatest
``feature_ts`` wins; ties are broken by the greatest created timestamp. No eligible row gives
nulls. Labels with a null key get nulls (never an error). Every label row comes out exactly
once: duplicates in the labels are kept, label columns are untouched. All times are UTC
instants.

**Algorithm (chosen by measurement, see docs/benchmarks.md).** The naive plan joins every label
with every feature row of its key and keeps the latest with ``row_number`` — a per-key cross
product whose size is labels x feature rows per key. Instead:

1. The feature table is pruned with *literal* bounds ``[min label time - ttl, max label time]``
   so Delta skips files by their statistics; with few label keys, also to those keys by a
   broadcast semi join.
2. Label rows (their columns packed in one struct, so each row travels once and duplicates
   stay distinct) and feature rows are unioned, sorted per key by time (feature rows before
   labels at equal times, then by created time) and the last feature *struct* is carried
   forward with ``last(struct, ignorenulls=True)`` over a running frame: the struct holds all
   feature values and the feature time, so a null feature value is never filled from an older
   row. This costs one shuffle and one sort of ``labels + feature rows`` — it scales like a
   sort. (A first version computed distinct (key, time) pairs and joined the answers back:
   two more shuffles, measured slower than join + row_number at scale S; see
   docs/benchmarks.md.)
3. The ttl check is applied to the carried feature time. Label rows with a null key or time
   skip the sort and come out with null features.

Hot keys: the running frame is O(1) memory per row and Spark's window sort spills to disk, so
a key with millions of rows is slow in its task but never runs out of memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fstore_spark.errors import PointInTimeError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["asof_join", "FOUND_TS"]

FOUND_TS = "_fs_found_ts"


def asof_join(
    labels: DataFrame,
    features: DataFrame,
    *,
    keys: Sequence[str],
    label_ts: str,
    feature_ts: str,
    value_columns: Sequence[str],
    ttl: timedelta | None = None,
    created_ts: str | None = None,
    feature_key_columns: Sequence[str] | None = None,
    keep_feature_ts: bool = False,
    prune_bounds: tuple[datetime, datetime] | None = None,
    few_label_keys: bool = False,
) -> DataFrame:
    """Attach to every label row the latest eligible feature values (see module docstring).

    Args:
        labels: Label rows; must hold ``keys`` and ``label_ts``.
        features: Feature rows; must hold the keys (named ``feature_key_columns`` there,
            default the same names), ``feature_ts`` and ``value_columns``.
        keys: Join key columns of the labels.
        label_ts: Label time column (timestamp).
        feature_ts: Feature time column (timestamp).
        value_columns: Feature columns to attach (names must not clash with label columns).
        ttl: Maximum age of a feature row; ``None`` = unlimited.
        created_ts: Created-time column of the features, breaking ties on ``feature_ts``.
        feature_key_columns: Key column names in ``features`` if they differ from ``keys``.
        keep_feature_ts: Also output the matched feature time as ``_fs_found_ts``.
        prune_bounds: ``(min label time, max label time)`` when known; the feature table is
            then filtered with literals so Delta can skip files.
        few_label_keys: The labels hold few distinct keys (say < 1M): feature rows of other
            keys are dropped by a broadcast semi join before the sort.

    Returns:
        ``labels`` with ``value_columns`` appended (lazy; no action is run).

    Raises:
        PointInTimeError: missing columns or clashing names.
    """
    keys = list(keys)
    fkeys = list(feature_key_columns or keys)
    values = list(value_columns)
    _check_inputs(labels, features, keys, fkeys, label_ts, feature_ts, values, created_ts)
    label_cols = list(labels.columns)
    packed = _pack_labels(labels, keys, label_ts)
    feats = (
        _pack_features(features, fkeys, feature_ts, created_ts, values)
        .transform(_within_bounds, prune_bounds, ttl)
        .transform(_of_label_keys, packed if few_label_keys else None, len(keys))
    )
    answered = (
        _timeline(packed, feats, len(keys))
        .transform(_carry_forward, len(keys))
        .transform(_answers, values, ttl, keep_feature_ts)
    )
    missing = _unanswerable(packed, features, values, keep_feature_ts)
    return answered.unionByName(missing).select(
        *label_cols, *values, *([FOUND_TS] if keep_feature_ts else [])
    )


def _key_columns(n: int) -> list[str]:
    """The join keys, renamed by position so label and feature rows share them."""
    return [f"_fs_k{i}" for i in range(n)]


def _check_inputs(
    labels: DataFrame,
    features: DataFrame,
    keys: list[str],
    fkeys: list[str],
    label_ts: str,
    feature_ts: str,
    values: list[str],
    created_ts: str | None,
) -> None:
    """Both sides hold the columns the join reads, and no feature name clashes with a label's."""
    _check(labels, [*keys, label_ts], "entity_df")
    _check(
        features, [*fkeys, feature_ts, *values, *([created_ts] if created_ts else [])], "features"
    )
    clash = [c for c in values if c in labels.columns]
    if clash:
        raise PointInTimeError(
            f"feature column(s) {clash} clash with columns of entity_df. Fix: rename those "
            "label columns, or request full feature names (view__feature)."
        )


def _pack_labels(labels: DataFrame, keys: list[str], label_ts: str) -> DataFrame:
    """Label rows as (keys, time, whether they can match, every label column in one struct).

    The struct lets any label schema union with the feature rows, keeps duplicate labels
    distinct, and makes each label row travel once.
    """
    from pyspark.sql import functions as F

    lts = F.col(label_ts).cast("timestamp")
    has_key = lts.isNotNull()
    for k in keys:
        has_key = has_key & F.col(k).isNotNull()
    return labels.select(
        *[F.col(k).alias(kc) for k, kc in zip(keys, _key_columns(len(keys)), strict=True)],
        lts.alias("_fs_ts"),
        has_key.alias("_fs_has_key"),
        F.struct(*[F.col(c) for c in labels.columns]).alias("_fs_label"),
    )


def _pack_features(
    features: DataFrame,
    fkeys: list[str],
    feature_ts: str,
    created_ts: str | None,
    values: list[str],
) -> DataFrame:
    """Feature rows with a key as (keys, time, created time, values and time in one struct).

    The struct carries the feature time with the values, so the ttl check reads the time of
    the row that was carried, and a null value is never filled from an older row.
    """
    from pyspark.sql import functions as F

    fts = F.col(feature_ts).cast("timestamp")
    created = F.col(created_ts).cast("timestamp") if created_ts else F.lit(None).cast("timestamp")
    kcols = _key_columns(len(fkeys))
    feats = features.select(
        *[F.col(fk).alias(kc) for fk, kc in zip(fkeys, kcols, strict=True)],
        fts.alias("_fs_ts"),
        created.alias("_fs_created"),
        F.struct(fts.alias(FOUND_TS), *[F.col(c) for c in values]).alias("_fs_val"),
    )
    for kc in kcols:
        feats = feats.where(F.col(kc).isNotNull())
    return feats


def _within_bounds(
    feats: DataFrame, bounds: tuple[datetime, datetime] | None, ttl: timedelta | None
) -> DataFrame:
    """Feature rows that some label can see: ``[min label time - ttl, max label time]``.

    The bounds are literals, so Delta skips files by their statistics.
    """
    from pyspark.sql import functions as F

    if bounds is None:
        return feats
    lo, hi = bounds
    cond = F.col("_fs_ts") <= F.lit(hi).cast("timestamp")
    if ttl is not None:
        cond = cond & (F.col("_fs_ts") >= F.lit(lo - ttl).cast("timestamp"))
    return feats.where(cond)


def _of_label_keys(feats: DataFrame, packed: DataFrame | None, n_keys: int) -> DataFrame:
    """Feature rows of the labels' keys only (broadcast semi join), when labels are given.

    Worth it when the labels hold few keys: every other key's feature rows skip the sort.
    """
    from pyspark.sql import functions as F

    if packed is None:
        return feats
    kcols = _key_columns(n_keys)
    label_keys = packed.where("_fs_has_key").select(*kcols).distinct()
    return feats.join(F.broadcast(label_keys), on=kcols, how="left_semi")


def _timeline(packed: DataFrame, feats: DataFrame, n_keys: int) -> DataFrame:
    """Matchable label rows and feature rows in one frame, told apart by ``_fs_is_label``."""
    from pyspark.sql import functions as F

    val_type = feats.schema["_fs_val"].dataType
    label_type = packed.schema["_fs_label"].dataType
    labels = packed.where("_fs_has_key").select(
        *_key_columns(n_keys),
        "_fs_ts",
        F.lit(1).alias("_fs_is_label"),
        F.lit(None).cast("timestamp").alias("_fs_created"),
        F.lit(None).cast(val_type).alias("_fs_val"),
        "_fs_label",
    )
    features = feats.withColumn("_fs_is_label", F.lit(0)).withColumn(
        "_fs_label", F.lit(None).cast(label_type)
    )
    return labels.unionByName(features)


def _carry_forward(timeline: DataFrame, n_keys: int) -> DataFrame:
    """Label rows with ``_fs_last``: the latest feature struct at or before them, per key.

    At equal times feature rows sort before labels (``feature_ts <= label_ts`` is eligible),
    and among features the latest created comes last so that it is the one carried forward.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [F.col("_fs_ts"), F.col("_fs_is_label"), F.col("_fs_created").asc_nulls_first()]
    running = (
        Window.partitionBy(*_key_columns(n_keys))
        .orderBy(*order)
        .rowsBetween(Window.unboundedPreceding, 0)
    )
    carried = timeline.withColumn("_fs_last", F.last("_fs_val", ignorenulls=True).over(running))
    return carried.where(F.col("_fs_is_label") == 1)


def _answers(
    found: DataFrame, values: list[str], ttl: timedelta | None, keep_feature_ts: bool
) -> DataFrame:
    """Label columns plus the carried values, null where the carried row is older than ttl."""
    from pyspark.sql import functions as F

    last = F.col("_fs_last")
    ok = last.isNotNull()
    if ttl is not None:
        ttl_us = int(ttl / timedelta(microseconds=1))
        age_us = F.unix_micros(F.col("_fs_ts")) - F.unix_micros(last[FOUND_TS])
        ok = ok & (age_us <= F.lit(ttl_us))
    out_cols = [F.when(ok, last[c]).alias(c) for c in values]
    if keep_feature_ts:
        out_cols.append(F.when(ok, last[FOUND_TS]).alias(FOUND_TS))
    return found.select("_fs_label.*", *out_cols)


def _unanswerable(
    packed: DataFrame, features: DataFrame, values: list[str], keep_feature_ts: bool
) -> DataFrame:
    """Labels with a null key (or time): they find nothing and come out with null features."""
    from pyspark.sql import functions as F

    return packed.where(~F.col("_fs_has_key")).select(
        "_fs_label.*",
        *[F.lit(None).cast(features.schema[c].dataType).alias(c) for c in values],
        *([F.lit(None).cast("timestamp").alias(FOUND_TS)] if keep_feature_ts else []),
    )


def _check(df: DataFrame, cols: list[str], what: str) -> None:
    """``df`` has every column of ``cols`` (``what`` names it in the error)."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PointInTimeError(
            f"{what} is missing column(s) {missing}; it has: {', '.join(df.columns)}."
        )
