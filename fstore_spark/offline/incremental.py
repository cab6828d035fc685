"""Incremental materialization: continue from the last run, recompute only what changed.

The last run is read from the feature table's Delta history. New source data is found from the
source's change data feed when it is enabled (exact: every new row, however late) or otherwise
with a watermark on the event time (``last end - lateness``, 2 days by default).

With the change feed every late event is taken: an event at or before the last instant in the
table makes its entity's rows stale from its tile on, and only those entities' tiles and rows
are recomputed (see :mod:`fstore_spark.offline.late`), so an incremental run equals a backfill.
``lateness`` is then an optional cap on that cost: events older than ``last end - lateness``
are counted, quarantined in ``_quarantine/<view>`` with the reason and logged as a warning
(``replay_quarantine`` takes them later). With the watermark, events older than the bound are
not seen at all (run a backfill of their range to take them).

New instants (after the last run) are computed for every entity from the tiles; a first run,
or a run with a changed definition (hash differs), is a full backfill. When the table's
history proves it has no row in the run's range, the rows are appended as an idempotent
transaction (see :mod:`fstore_spark.offline.storage`).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from fstore_spark.core import DeltaSource, FeatureView
from fstore_spark.errors import MaterializationError
from fstore_spark.lakehouse.tables import (
    CREATED_TIMESTAMP,
    definition_dtypes,
    last_run_metadata,
    read_delta,
    source_location,
    table_history,
    table_properties,
    to_utc,
)
from fstore_spark.offline.backfill import backfill, project_rows
from fstore_spark.offline.instants import features_at_instants
from fstore_spark.offline.late import LateRange, keyed_predicate, late_feature_rows, late_tiles
from fstore_spark.offline.plan import plan_view
from fstore_spark.offline.quarantine import (
    LATE_REASON,
    invalid_event,
    quarantine,
    quarantine_invalid,
    quarantine_path,
)
from fstore_spark.offline.runs import (
    MaterializationResult,
    RunContext,
    align_floor,
    feature_rows,
    from_us,
    lit_ts,
    tile_end,
    to_us,
)
from fstore_spark.offline.storage import (
    all_rows_before,
    row_changes,
    write_features,
    write_tiles,
)
from fstore_spark.offline.tiles import build_tiles
from fstore_spark.offline.windows import features_from_tiles

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_log = logging.getLogger("fstore_spark.offline")

__all__ = ["DEFAULT_LATENESS", "incremental"]

DEFAULT_LATENESS = timedelta(days=2)
# an incremental run emitting at most this many instants evaluates them directly
# (features_at_instants) instead of sweeping the last max_window of tiles again
_DIRECT_MAX_INSTANTS = 8


def incremental(
    spark: SparkSession,
    project_root: str,
    view: FeatureView,
    join_keys: list[str],
    *,
    end: datetime | str | None = None,
    lateness: timedelta | None = None,
    view_version: int | None = None,
    run_id: str | None = None,
    by: str | None = None,
) -> MaterializationResult:
    """Bring the feature table up to ``end`` (default: now), touching only what changed.

    ``lateness``: with the source's change data feed, a cap on how old a late event may be and
    still be taken (default: no cap, every late event is taken); with a watermark, how far
    back new events are looked for (default :data:`DEFAULT_LATENESS`). ``by`` (who runs it)
    is recorded in the commit's metadata.

    See the module docstring for how new data is found and how late data is treated.

    Raises:
        MaterializationError: ``end`` is before the last run's end, or a first run finds no
            events.
    """
    t0 = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex
    ctx = RunContext(spark, project_root, view, join_keys, view_version, by=by)
    end_dt = to_utc(end) if end is not None else datetime.now(UTC)
    history = table_history(spark, ctx.table)
    last = last_run_metadata(spark, ctx.table, history)
    events, src_version = ctx.read_source()
    if last is None or last.get("definition_hash") != ctx.def_hash:
        return _rebuild(ctx, events, end_dt, run_id)

    last_end = to_utc(last["end"])
    if end_dt < last_end:
        raise MaterializationError(
            f"incremental run of {view.name!r}: end {end_dt} is before the last run's end "
            f"{last_end}. Fix: use backfill to rewrite the past."
        )
    with ctx.step("source"):
        new = _new_events(ctx, events, last, src_version, last_end, lateness)
        scan = _scan_new_events(ctx, new, run_id)
    late = _late_range(ctx, new, scan) if new.feed and view.is_aggregated else None
    start = _first_instant(last_end, None if late else scan.first, view.cadence)
    keyed = keyed_predicate(late, ctx.keys) if late is not None else None
    if view.is_aggregated:
        feats = _aggregated_rows(ctx, events, start, end_dt, late, keep_others=keyed is None)
    else:
        feats = project_rows(ctx, events, start, end_dt)
    first = start if late is None else from_us(late.start_us)
    extra = {"late_events_quarantined": scan.late, "invalid_events_quarantined": scan.invalid}
    meta = ctx.metadata(run_id, "incremental", first, end_dt, src_version, extra)
    with ctx.step("features"):
        append_at = history[0]["version"] if all_rows_before(history, first) else None
        only = None if keyed is None else (start, keyed)
        committed = write_features(ctx, feats, first, end_dt, meta, append_at, only)
    with ctx.step("changes"):
        written = row_changes(ctx, *committed)
    return MaterializationResult.of(
        ctx,
        run_id,
        "incremental",
        (first, end_dt),
        written,
        src_version,
        (scan.late, scan.invalid),
        t0,
    )


def _rebuild(
    ctx: RunContext, events: DataFrame, end: datetime, run_id: str
) -> MaterializationResult:
    """First run, or the definition changed: a backfill from the first event to ``end``."""
    from pyspark.sql import functions as F

    first = events.select(F.min(F.col(ctx.ts).cast("timestamp")).alias("m")).first()
    if first is None or first["m"] is None:
        raise MaterializationError(f"source of {ctx.view.name!r} has no events to materialize.")
    result = backfill(
        ctx.spark,
        ctx.root,
        ctx.view,
        ctx.keys,
        to_utc(first["m"]),
        end,
        view_version=ctx.view_version,
        run_id=run_id,
    )
    return MaterializationResult(**{**asdict(result), "mode": "incremental"})


class _NewEvents(NamedTuple):
    """What changed in the source since the last run, and how to judge it."""

    rows: DataFrame  # new or updated events (the source's columns)
    removed: DataFrame | None  # events the change feed reports deleted or replaced
    capped: Column  # marks events older than the lateness cap (never true without one)
    bound: datetime | None  # the lateness cap (change feed) or the watermark
    past_us: int  # the last instant in the table: events at or before it are late
    feed: bool  # found by the change data feed


class _Scan(NamedTuple):
    """What the new events of an incremental run hold."""

    first: datetime | None  # earliest accepted new event time
    late: int  # late events beyond the cap, quarantined
    invalid: int  # events with a null key or unreadable time, quarantined
    past_first: datetime | None  # earliest change at or before the last instant (feed only)


_REMOVED = "_fs_removed"


def _changes(ctx: RunContext, new: _NewEvents) -> tuple[DataFrame, Column, Column]:
    """The changes, flagged ``_fs_removed``, and two conditions on them.

    The first marks the new events a run takes; the second the changes the late path takes:
    taken or removed events at or before the last instant in the table.
    """
    from pyspark.sql import functions as F

    rows = new.rows.withColumn(_REMOVED, F.lit(False))
    if new.removed is not None:
        rows = rows.unionByName(new.removed.withColumn(_REMOVED, F.lit(True)))
    invalid = invalid_event(ctx)
    accepted = ~F.col(_REMOVED) & ~new.capped & ~invalid
    past = F.col(ctx.ts).cast("timestamp") <= F.timestamp_micros(F.lit(new.past_us))
    taken_late = past & ~invalid & (F.col(_REMOVED) | ~new.capped)
    return rows, accepted, taken_late


def _scan_new_events(ctx: RunContext, new: _NewEvents, run_id: str) -> _Scan:
    """The new events' earliest times, late and invalid counts, in one pass.

    The late events beyond the cap (change feed only) and the invalid ones are quarantined.
    """
    from pyspark.sql import functions as F

    rows, accepted, taken_late = _changes(ctx, new)
    ts = F.col(ctx.ts).cast("timestamp")
    arrived = ~F.col(_REMOVED)
    invalid = invalid_event(ctx)
    is_late = new.capped & ~invalid
    row = rows.select(
        F.min(F.when(accepted, ts)).alias("m"),
        F.min(F.when(taken_late, ts)).alias("p"),
        F.count(F.when(arrived & is_late, 1)).alias("late"),
        F.count(F.when(arrived & invalid, 1)).alias("invalid"),
    ).first()
    n_late = int(row["late"]) if row is not None else 0
    n_invalid = int(row["invalid"]) if row is not None else 0
    if n_late and new.bound is not None:
        reason = f"{LATE_REASON} {new.bound.isoformat()}"
        quarantine(ctx, new.rows.where(is_late), run_id, reason)
        _warn_late(ctx, n_late, new.bound)
    quarantine_invalid(ctx, new.rows, run_id, n_invalid)
    first_new = None if row is None or row["m"] is None else to_utc(row["m"])
    past_first = None if row is None or row["p"] is None else to_utc(row["p"])
    return _Scan(first_new, n_late, n_invalid, past_first)


def _late_range(ctx: RunContext, new: _NewEvents, scan: _Scan) -> LateRange | None:
    """The entities late changes touch and their first stale instant; None without any."""
    if scan.past_first is None:
        return None
    rows, _, taken_late = _changes(ctx, new)
    keys = rows.where(taken_late).select(*ctx.keys).distinct()
    return LateRange(keys, to_us(tile_end(scan.past_first, ctx.view.cadence)))


def _warn_late(ctx: RunContext, n: int, bound: datetime) -> None:
    _log.warning(
        "feature view %r: %d late event(s) older than the lateness cap %s were "
        "quarantined in %s and are not in the features. Fix: take them with "
        "`fstore replay-quarantine %s` (or FeatureStore.replay_quarantine), or run the "
        "incremental without a lateness cap.",
        ctx.view.name,
        n,
        bound.isoformat(),
        quarantine_path(ctx.root, ctx.view.name),
        ctx.view.name,
    )


def _first_instant(last_end: datetime, first_new: datetime | None, cadence: timedelta) -> datetime:
    """The first emission instant to rewrite: after the last run, or the earliest new tile."""
    start = align_floor(last_end, cadence) + cadence
    if first_new is not None:
        start = min(start, tile_end(first_new, cadence))
    return start


def _aggregated_rows(
    ctx: RunContext,
    events: DataFrame,
    start: datetime,
    end: datetime,
    late: LateRange | None,
    *,
    keep_others: bool = True,
) -> DataFrame:
    """Rewrite the tiles from ``start`` on; the feature rows in ``[start, end]`` from them.

    A few instants are evaluated directly; a longer range sweeps the tiles of the last
    ``max_window`` before ``start`` with older tiles folded into a lifetime baseline. Late
    changes add the affected entities' tiles and rows before ``start`` (:mod:`.late`), and
    with ``keep_others`` every other entity's rows there, as they are.
    """
    from pyspark.sql import functions as F

    plan = plan_view(ctx.view, ctx.keys, definition_dtypes(events.schema))
    end_floor = align_floor(end, ctx.view.cadence)
    hi = to_us(end_floor)
    lo = to_us(start) - plan.cadence_us  # tiles with end >= start
    tiles = None
    if start <= end_floor:
        ts = F.col(ctx.ts).cast("timestamp")
        src = events.where((ts > lit_ts(from_us(lo))) & (ts <= lit_ts(end_floor)))
        tiles = build_tiles(src, plan, ctx.ts, ctx.source.created_timestamp_column)
    if late is not None:
        old = late_tiles(ctx, plan, events, late, lo)
        tiles = old if tiles is None else old.unionByName(tiles.select(*old.columns))
        lo = late.start_us - plan.cadence_us
    if tiles is not None:
        with ctx.step("tiles"):
            write_tiles(ctx, tiles, lo, max(hi, lo))
    stored = read_delta(ctx.spark, ctx.tiles)
    instants = (hi - to_us(start)) // plan.cadence_us + 1
    if instants <= _DIRECT_MAX_INSTANTS:
        computed = features_at_instants(stored, plan, to_us(start), hi)
    else:
        cut = to_us(start) - plan.max_window_us - plan.cadence_us
        computed = features_from_tiles(stored, plan, to_us(start), hi, cut_us=cut)
    rows = feature_rows(ctx, computed)
    if late is None:
        return rows
    rows = rows.withColumn(CREATED_TIMESTAMP, F.current_timestamp())
    before = to_us(start)
    return late_feature_rows(ctx, plan, stored, late, before, keep_others=keep_others).unionByName(
        rows
    )


def _cdf_enabled(ctx: RunContext) -> bool:
    """Whether the source is a Delta table with its change data feed on."""
    if not isinstance(ctx.source, DeltaSource):
        return False
    loc = source_location(ctx.source, ctx.root)
    props = table_properties(ctx.spark, loc, by_name=ctx.source.table is not None)
    return props.get("delta.enableChangeDataFeed") == "true"


def _new_events(
    ctx: RunContext,
    events: DataFrame,
    last: dict[str, Any],
    src_version: int | None,
    last_end: datetime,
    lateness: timedelta | None,
) -> _NewEvents:
    """The source's changes since the last run (see :class:`_NewEvents`).

    With the change feed, the new events are the feed's inserted and updated rows since the
    last run, however late (only ``lateness``, when given, caps them), and the removed ones
    are its deleted and pre-update rows. With a watermark, late events cannot be seen: the
    new events are those after ``last_end - lateness``.
    """
    from pyspark.sql import functions as F

    ts = F.col(ctx.ts).cast("timestamp")
    past_us = to_us(align_floor(last_end, ctx.view.cadence))
    last_version = last.get("source_version")
    if last_version is not None and src_version is not None and _cdf_enabled(ctx):
        bound = None if lateness is None else last_end - lateness
        capped = F.lit(False) if bound is None else ts <= lit_ts(bound)
        if src_version <= int(last_version):
            return _NewEvents(events.limit(0), None, capped, bound, past_us, True)
        loc = source_location(ctx.source, ctx.root)
        reader = (
            ctx.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", int(last_version) + 1)
            .option("endingVersion", int(src_version))
        )
        assert isinstance(ctx.source, DeltaSource)
        feed = reader.table(loc) if ctx.source.table is not None else reader.load(loc)
        kind = F.col("_change_type")
        meta = ("_change_type", "_commit_version", "_commit_timestamp")
        rows = feed.where(kind.isin("insert", "update_postimage")).drop(*meta)
        removed = feed.where(kind.isin("delete", "update_preimage")).drop(*meta)
        return _NewEvents(rows, removed, capped, bound, past_us, True)
    bound = last_end - (DEFAULT_LATENESS if lateness is None else lateness)
    return _NewEvents(events.where(ts > lit_ts(bound)), None, F.lit(False), bound, past_us, False)
