"""Replay quarantined late events: take what a lateness cap set aside, in one run.

An incremental run given a ``lateness`` cap quarantines the late events older than it (see
:mod:`fstore_spark.offline.incremental`). Those events are in the source; replaying takes them:
the entities they belong to get their tiles and feature rows recomputed from the earliest
such event's tile up to the last run's end (:mod:`fstore_spark.offline.late`), in one commit
recorded as a ``replay`` run, and the replayed rows leave the quarantine afterwards. A crash
between the two is harmless: the next replay recomputes the same rows.

Only late events are replayed; events quarantined for a null key or an unreadable time stay
(they belong to no entity or instant: fix them in the source, then backfill their range).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from fstore_spark.core import FeatureView
from fstore_spark.errors import MaterializationError
from fstore_spark.lakehouse.tables import (
    definition_dtypes,
    is_delta_table,
    last_run_metadata,
    read_delta,
    table_ref,
    to_utc,
)
from fstore_spark.offline.backfill import project_rows
from fstore_spark.offline.late import LateRange, late_feature_rows, late_tiles
from fstore_spark.offline.plan import plan_view
from fstore_spark.offline.quarantine import LATE_REASON, quarantine_path
from fstore_spark.offline.runs import (
    MaterializationResult,
    RunContext,
    align_floor,
    from_us,
    tile_end,
    to_us,
)
from fstore_spark.offline.storage import row_changes, write_features, write_tiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["replay_quarantine"]


def replay_quarantine(
    spark: SparkSession,
    project_root: str,
    view: FeatureView,
    join_keys: list[str],
    *,
    view_version: int | None = None,
    by: str | None = None,
) -> MaterializationResult | None:
    """Take the view's quarantined late events into its features; None if there are none.

    Raises:
        MaterializationError: the view was never materialized, or its definition changed
            since (run an incremental first: it rebuilds the table, late events included).
    """
    t0 = time.perf_counter()
    run_id = uuid.uuid4().hex
    ctx = RunContext(spark, project_root, view, join_keys, view_version, by=by)
    last = last_run_metadata(spark, ctx.table)
    if last is None or last.get("definition_hash") != ctx.def_hash:
        raise MaterializationError(
            f"feature view {view.name!r} has no run of its current definition to replay "
            "quarantined events into. Fix: run materialize_incremental first (a changed "
            "definition is rebuilt from the whole source, late events included)."
        )
    qpath = quarantine_path(project_root, view.name)
    if not is_delta_table(spark, qpath):
        return None
    late_rows = read_delta(spark, qpath).where(f"_fs_reason LIKE '{LATE_REASON}%'")
    seen = late_rows.selectExpr(f"min(`{ctx.ts}`) AS m", "max(_fs_quarantined_at) AS q").first()
    if seen is None or seen["m"] is None:
        return None
    events, _ = ctx.read_source()
    end = to_utc(last["end"])
    past = align_floor(end, view.cadence)
    first = to_utc(seen["m"])  # a projection's rows are at the events' own times
    if view.is_aggregated:  # the end of the earliest late event's tile
        first = tile_end(first, view.cadence)
    keys = late_rows.select(*join_keys).distinct()
    feats = _replayed_rows(ctx, events, LateRange(keys, to_us(first)), past)
    extra = {"late_events_quarantined": 0, "invalid_events_quarantined": 0}
    meta = ctx.metadata(run_id, "replay", first, end, last.get("source_version"), extra)
    with ctx.step("features"):
        committed = write_features(ctx, feats, first, past, meta)
    with ctx.step("changes"):
        written = row_changes(ctx, *committed)
    stamp = to_utc(seen["q"]).strftime("%Y-%m-%d %H:%M:%S.%f")
    spark.sql(
        f"DELETE FROM {table_ref(qpath)} WHERE _fs_reason LIKE '{LATE_REASON}%' "
        f"AND _fs_quarantined_at <= '{stamp}'"
    )  # built from constants and a timestamp we formatted
    return MaterializationResult.of(
        ctx, run_id, "replay", (first, end), written, last.get("source_version"), (0, 0), t0
    )


def _replayed_rows(
    ctx: RunContext, events: DataFrame, late: LateRange, past: datetime
) -> DataFrame:
    """Rows in ``[late.start, past]``: the late entities' recomputed, the others' kept."""
    if not ctx.view.is_aggregated:  # a projection: rewrite the range from the source
        return project_rows(ctx, events, from_us(late.start_us), past)
    plan = plan_view(ctx.view, ctx.keys, definition_dtypes(events.schema))
    before_us = to_us(past) + plan.cadence_us
    with ctx.step("tiles"):
        tiles = late_tiles(ctx, plan, events, late, to_us(past))
        write_tiles(ctx, tiles, late.start_us - plan.cadence_us, to_us(past))
    stored = read_delta(ctx.spark, ctx.tiles)
    return late_feature_rows(ctx, plan, stored, late, before_us)
