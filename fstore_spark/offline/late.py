"""Late events: recompute only the entities they touch, from their first late tile on.

A source with Delta's change data feed says exactly which events arrived since the last run,
however old their event time. An event at or before the last instant already in the feature
table is *late*: the rows of its entity from its tile on are stale (its tile, and the instants
where it leaves each window). An incremental run takes every late event: it rebuilds the
affected entities' tiles from their events and their feature rows from those tiles, and keeps
every other entity's tiles and rows as they are. Both tables are replaced over the late range
in the run's usual single commit each, so the run stays idempotent and equals a backfill.

Events the change feed reports as deleted or updated count as touching their entity too: its
tiles are rebuilt from the events the source holds now, so removing an event is taken as well.

The cost grows with the affected entities' events and tiles (recomputed) plus the rows of
every other entity in the late range (copied): a late event a year old rewrites a year of the
feature table once. ``lateness`` caps that range (see :mod:`fstore_spark.offline.incremental`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from fstore_spark.lakehouse.tables import (
    CREATED_TIMESTAMP,
    FEATURE_TIMESTAMP,
    read_delta,
    read_feature_table,
)
from fstore_spark.offline.plan import TILE, AggregationPlan
from fstore_spark.offline.runs import RunContext, feature_rows, from_us, lit_ts
from fstore_spark.offline.tiles import build_tiles
from fstore_spark.offline.windows import features_from_tiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["LateRange", "late_feature_rows", "late_tiles"]


class LateRange(NamedTuple):
    """The entities late events touch, and where their stale rows begin.

    Attributes:
        keys: Distinct join keys of the affected entities (a lazy DataFrame).
        start_us: The first instant to recompute: the end of the earliest late tile.
    """

    keys: DataFrame
    start_us: int


def late_tiles(
    ctx: RunContext, plan: AggregationPlan, events: DataFrame, late: LateRange, hi_us: int
) -> DataFrame:
    """The tiles in ``(late.start - cadence, hi]``: affected entities' rebuilt, others' kept.

    ``events`` is the source as of the run's version; ``hi_us`` the last tile the caller's
    own rebuild (of every entity's newest tiles) does not cover.
    """
    from pyspark.sql import functions as F

    lo_us = late.start_us - plan.cadence_us
    ts = F.col(ctx.ts).cast("timestamp")
    in_range = (ts > lit_ts(from_us(lo_us))) & (ts <= lit_ts(from_us(hi_us)))
    affected_events = events.where(in_range).join(late.keys, list(plan.keys), "left_semi")
    rebuilt = build_tiles(affected_events, plan, ctx.ts, ctx.source.created_timestamp_column)
    stored = read_delta(ctx.spark, ctx.tiles).where(
        (F.col(TILE) > F.lit(lo_us)) & (F.col(TILE) <= F.lit(hi_us))
    )
    kept = stored.join(late.keys, list(plan.keys), "left_anti")
    return rebuilt.unionByName(kept.select(*rebuilt.columns))


def late_feature_rows(
    ctx: RunContext, plan: AggregationPlan, tiles: DataFrame, late: LateRange, before_us: int
) -> DataFrame:
    """Feature rows in ``[late.start, before)``: affected entities' recomputed, others' kept.

    ``tiles`` is the tile table after the run's tile commit. Recomputed rows get this run's
    ``created_timestamp``; kept rows keep theirs.
    """
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    cut = late.start_us - plan.max_window_us - plan.cadence_us
    affected = tiles.join(late.keys, keys, "left_semi")
    computed = features_from_tiles(
        affected, plan, late.start_us, before_us - plan.cadence_us, cut_us=cut
    )
    recomputed = feature_rows(ctx, computed).withColumn(CREATED_TIMESTAMP, F.current_timestamp())
    ts = F.col(FEATURE_TIMESTAMP)
    table = read_feature_table(ctx.spark, ctx.root, ctx.view)
    stale = (ts >= lit_ts(from_us(late.start_us))) & (ts < lit_ts(from_us(before_us)))
    kept = table.where(stale).join(late.keys, keys, "left_anti")
    return recomputed.unionByName(kept.select(*recomputed.columns))
