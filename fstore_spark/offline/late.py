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

The cost grows with the affected entities' events and tiles (recomputed). When they are few
(at most :data:`KEYED_MAX` entities, keys of string or integer types), the feature table's
replace is keyed: only their rows in the late range are replaced, so Delta rewrites only the
files that hold them (feature files are cut by row count and hold consecutive entities).
Otherwise the rows of every other entity in the late range are copied too: a late event a
year old then rewrites a year of the feature table once. ``lateness`` caps that range (see
:mod:`fstore_spark.offline.incremental`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

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

__all__ = ["KEYED_MAX", "LateRange", "keyed_predicate", "late_feature_rows", "late_tiles"]

# at most this many affected entities get a keyed replace (their keys are listed in it)
KEYED_MAX = 1000
_QUOTABLE = {"string", "byte", "short", "integer", "long"}


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


def keyed_predicate(late: LateRange, keys: list[str]) -> str | None:
    """A SQL predicate true for the affected entities' rows; None to replace every entity's.

    None when more than :data:`KEYED_MAX` entities are affected (a bounded collect of at most
    that many keys), or a key is not of a string or integer type, or a string key holds a
    quote or a backslash (literals are only built from values that need no escaping).
    """
    fields = {f.name: f.dataType for f in late.keys.schema.fields}
    if any(k not in fields or fields[k].typeName() not in _QUOTABLE for k in keys):
        return None
    rows = late.keys.limit(KEYED_MAX + 1).collect()
    if not rows or len(rows) > KEYED_MAX:
        return None
    literals = []
    for r in rows:
        values = [r[k] for k in keys]
        if any(v is None or (isinstance(v, str) and ("'" in v or "\\" in v)) for v in values):
            return None
        quoted = [f"'{v}'" if isinstance(v, str) else str(int(v)) for v in values]
        literals.append(quoted[0] if len(keys) == 1 else _struct(keys, quoted, fields))
    if len(keys) == 1:
        return f"`{keys[0]}` IN ({', '.join(literals)})"
    target = _struct(keys, [f"`{k}`" for k in keys], fields)
    return f"{target} IN ({', '.join(literals)})"


def _struct(keys: list[str], values: list[str], fields: dict[str, Any]) -> str:
    """``named_struct`` of the keys, each value cast to its key's type (so IN compares alike)."""
    parts = (
        f"'{k}', CAST({v} AS {fields[k].simpleString()})" for k, v in zip(keys, values, strict=True)
    )
    return f"named_struct({', '.join(parts)})"


def late_feature_rows(
    ctx: RunContext,
    plan: AggregationPlan,
    tiles: DataFrame,
    late: LateRange,
    before_us: int,
    *,
    keep_others: bool = True,
) -> DataFrame:
    """Feature rows in ``[late.start, before)``: affected entities' recomputed, others' kept.

    ``tiles`` is the tile table after the run's tile commit. Recomputed rows get this run's
    ``created_timestamp``; kept rows keep theirs. ``keep_others=False`` (a keyed replace,
    :func:`keyed_predicate`) returns the recomputed rows alone.
    """
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    cut = late.start_us - plan.max_window_us - plan.cadence_us
    affected = tiles.join(late.keys, keys, "left_semi")
    computed = features_from_tiles(
        affected, plan, late.start_us, before_us - plan.cadence_us, cut_us=cut
    )
    recomputed = feature_rows(ctx, computed).withColumn(CREATED_TIMESTAMP, F.current_timestamp())
    if not keep_others:
        return recomputed
    ts = F.col(FEATURE_TIMESTAMP)
    table = read_feature_table(ctx.spark, ctx.root, ctx.view)
    stale = (ts >= lit_ts(from_us(late.start_us))) & (ts < lit_ts(from_us(before_us)))
    kept = table.where(stale).join(late.keys, keys, "left_anti")
    return recomputed.unionByName(kept.select(*recomputed.columns))
