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
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(keys)
    fkeys = list(feature_key_columns or keys)
    values = list(value_columns)
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
    lts = F.col(label_ts).cast("timestamp")
    label_cols = list(labels.columns)
    has_key = lts.isNotNull()
    for k in keys:
        has_key = has_key & F.col(k).isNotNull()
    # label columns travel packed in one struct, so any label schema unions with features
    packed = labels.select(
        *[F.col(k).alias(f"_fs_k{i}") for i, k in enumerate(keys)],
        lts.alias("_fs_ts"),
        has_key.alias("_fs_has_key"),
        F.struct(*[F.col(c) for c in label_cols]).alias("_fs_label"),
    )

    feats = features.select(
        *[F.col(fk).alias(f"_fs_k{i}") for i, fk in enumerate(fkeys)],
        F.col(feature_ts).cast("timestamp").alias("_fs_ts"),
        (
            F.col(created_ts).cast("timestamp") if created_ts else F.lit(None).cast("timestamp")
        ).alias("_fs_created"),
        F.struct(
            F.col(feature_ts).cast("timestamp").alias(FOUND_TS), *[F.col(c) for c in values]
        ).alias("_fs_val"),
    )
    for i in range(len(keys)):
        feats = feats.where(F.col(f"_fs_k{i}").isNotNull())
    if prune_bounds is not None:
        lo, hi = prune_bounds
        cond = F.col("_fs_ts") <= F.lit(hi).cast("timestamp")
        if ttl is not None:
            cond = cond & (F.col("_fs_ts") >= F.lit(lo - ttl).cast("timestamp"))
        feats = feats.where(cond)
    if few_label_keys:
        # few label keys: drop every other key's feature rows before the sort
        label_keys = (
            packed.where("_fs_has_key").select(*[f"_fs_k{i}" for i in range(len(keys))]).distinct()
        )
        feats = feats.join(
            F.broadcast(label_keys), on=[f"_fs_k{i}" for i in range(len(keys))], how="left_semi"
        )

    kcols = [f"_fs_k{i}" for i in range(len(keys))]
    val_type = feats.schema["_fs_val"].dataType
    label_type = packed.schema["_fs_label"].dataType
    unioned = (
        packed.where("_fs_has_key")
        .select(
            *kcols,
            "_fs_ts",
            F.lit(1).alias("_fs_is_label"),
            F.lit(None).cast("timestamp").alias("_fs_created"),
            F.lit(None).cast(val_type).alias("_fs_val"),
            "_fs_label",
        )
        .unionByName(
            feats.withColumn("_fs_is_label", F.lit(0)).withColumn(
                "_fs_label", F.lit(None).cast(label_type)
            )
        )
    )
    # at equal times feature rows sort before labels (feature_ts <= label_ts is eligible), and
    # among features the latest created comes last so that it is the one carried forward
    order = [F.col("_fs_ts"), F.col("_fs_is_label"), F.col("_fs_created").asc_nulls_first()]
    running = Window.partitionBy(*kcols).orderBy(*order).rowsBetween(Window.unboundedPreceding, 0)
    carried = unioned.withColumn("_fs_last", F.last("_fs_val", ignorenulls=True).over(running))
    found = carried.where(F.col("_fs_is_label") == 1)
    last = F.col("_fs_last")
    ok = last.isNotNull()
    if ttl is not None:
        ttl_us = int(ttl / timedelta(microseconds=1))
        age_us = F.unix_micros(F.col("_fs_ts")) - F.unix_micros(last[FOUND_TS])
        ok = ok & (age_us <= F.lit(ttl_us))
    out_cols = [F.when(ok, last[c]).alias(c) for c in values]
    if keep_feature_ts:
        out_cols.append(F.when(ok, last[FOUND_TS]).alias(FOUND_TS))
    answered = found.select("_fs_label.*", *out_cols)
    # labels with a null key (or time) find nothing: they come out with null features
    missing = packed.where(~F.col("_fs_has_key")).select(
        "_fs_label.*",
        *[F.lit(None).cast(features.schema[c].dataType).alias(c) for c in values],
        *([F.lit(None).cast("timestamp").alias(FOUND_TS)] if keep_feature_ts else []),
    )
    return answered.unionByName(missing).select(
        *label_cols, *values, *([FOUND_TS] if keep_feature_ts else [])
    )


def _check(df: DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PointInTimeError(
            f"{what} is missing column(s) {missing}; it has: {', '.join(df.columns)}."
        )
