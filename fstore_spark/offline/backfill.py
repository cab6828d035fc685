"""Backfill: a view's feature rows over a time range, rebuilt from the source in one commit.

An aggregated view's tiles are rebuilt from every source event up to ``end``, then the feature
rows with ``start <= feature_timestamp <= end`` are computed from the stored tiles
(:func:`~fstore_spark.offline.windows.features_from_tiles`). A projection view's feature rows
are the source rows in the range (:func:`project_rows`). Either way the range is replaced in one
Delta commit, so running a backfill twice yields the same rows, never duplicates.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from fstore_spark.core import FeatureView
from fstore_spark.errors import MaterializationError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    definition_dtypes,
    read_delta,
    to_utc,
)
from fstore_spark.offline.plan import plan_view, spark_type
from fstore_spark.offline.quarantine import quarantine_invalid
from fstore_spark.offline.runs import (
    MaterializationResult,
    RunContext,
    align_floor,
    feature_rows,
    lit_ts,
    to_us,
)
from fstore_spark.offline.storage import row_changes, write_features, write_tiles
from fstore_spark.offline.tiles import build_tiles
from fstore_spark.offline.windows import features_from_tiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["backfill", "project_rows"]


def backfill(
    spark: SparkSession,
    project_root: str,
    view: FeatureView,
    join_keys: list[str],
    start: datetime | str,
    end: datetime | str,
    *,
    view_version: int | None = None,
    run_id: str | None = None,
    by: str | None = None,
) -> MaterializationResult:
    """Compute and write the view's feature rows with ``start <= feature_timestamp <= end``.

    Idempotent: the same range yields the same rows (the range is replaced in one commit).
    ``by`` (who runs it) is recorded in the commit's metadata.

    Raises:
        MaterializationError: ``start > end``, missing source or columns, bad definitions.
    """
    t0 = time.perf_counter()
    start_dt, end_dt = to_utc(start), to_utc(end)
    if start_dt > end_dt:
        raise MaterializationError(
            f"backfill of {view.name!r}: start {start_dt} is after end {end_dt}."
        )
    run_id = run_id or uuid.uuid4().hex
    ctx = RunContext(spark, project_root, view, join_keys, view_version, by=by)
    events, src_version = ctx.read_source()
    with ctx.step("source"):
        invalid = quarantine_invalid(ctx, _read_scope(ctx, events, start_dt, end_dt), run_id)
    if view.is_aggregated:
        feats = _aggregated_rows(ctx, events, start_dt, end_dt)
    else:
        feats = project_rows(ctx, events, start_dt, end_dt)
    meta = ctx.metadata(run_id, "backfill", start_dt, end_dt, src_version, {})
    with ctx.step("features"):
        committed = write_features(ctx, feats, start_dt, end_dt, meta)
    with ctx.step("changes"):
        written = row_changes(ctx, *committed)
    return MaterializationResult.of(
        ctx, run_id, "backfill", (start_dt, end_dt), written, src_version, (0, invalid), t0
    )


def _read_scope(ctx: RunContext, events: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """The events a backfill reads, invalid ones included.

    Every event up to ``end`` for an aggregated view (its tiles are rebuilt from them), those
    in ``[start, end]`` for a projection; and every event whose time is null or unreadable,
    since it cannot be placed in or out of the range.
    """
    from pyspark.sql import functions as F

    ts = F.col(ctx.ts).cast("timestamp")
    in_range = ts <= lit_ts(end)
    if not ctx.view.is_aggregated:
        in_range = in_range & (ts >= lit_ts(start))
    return events.where(ts.isNull() | in_range)


def _aggregated_rows(
    ctx: RunContext, events: DataFrame, start: datetime, end: datetime
) -> DataFrame:
    """Rebuild (and write) every tile up to ``end``; the feature rows in range from them."""
    from pyspark.sql import functions as F

    plan = plan_view(ctx.view, ctx.keys, definition_dtypes(events.schema))
    end_floor = align_floor(end, ctx.view.cadence)
    hi = to_us(end_floor)
    src = events.where(F.col(ctx.ts).cast("timestamp") <= lit_ts(end_floor))
    tiles = build_tiles(src, plan, ctx.ts, ctx.source.created_timestamp_column)
    with ctx.step("tiles"):
        write_tiles(ctx, tiles, None, hi)
    stored = read_delta(ctx.spark, ctx.tiles)
    feats = features_from_tiles(stored, plan, to_us(start), hi)
    return feature_rows(ctx, feats)


def project_rows(ctx: RunContext, events: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Feature rows of a projection view: source rows with ``start <= ts <= end``.

    Rows with a null key are dropped. Several source rows for one (key, ts) keep the latest
    created one; remaining ties are broken by the feature values, so the result is
    deterministic.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    view = ctx.view
    ts = F.col(ctx.ts).cast("timestamp")
    df = events.where((ts >= lit_ts(start)) & (ts <= lit_ts(end)))
    for k in ctx.keys:
        df = df.where(F.col(k).isNotNull())
    cols = [F.col(k) for k in ctx.keys] + [ts.alias(FEATURE_TIMESTAMP)]
    cols += [F.col(f.name).cast(spark_type(f.dtype)).alias(f.name) for f in view.features]
    created = ctx.source.created_timestamp_column
    df = df.select(
        *cols, (F.col(created).cast("timestamp") if created else F.lit(None)).alias("_c")
    )
    order = [F.col("_c").desc_nulls_last()] + [
        F.col(f.name).asc_nulls_last() for f in view.features
    ]
    w = Window.partitionBy(*ctx.keys, FEATURE_TIMESTAMP).orderBy(*order)
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "_c")
