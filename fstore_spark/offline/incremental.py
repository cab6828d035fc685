"""Incremental materialization: continue from the last run, recompute only what changed.

The last run is read from the feature table's Delta history. New source data is found from the
source's change data feed when it is enabled (exact: every new row, including late ones) or
otherwise with a watermark on the event time (``last end - lateness``). Events older than
``last end - lateness`` are *late beyond the bound*: with the change feed they are counted and
quarantined in ``_quarantine/<view>`` with the reason; with the watermark they are not seen (run
a backfill to take them). Only the tiles touched by new events are recomputed, and feature rows
are rewritten from the earliest touched tile onward. A first run, or a run with a changed
definition (hash differs), is a full backfill. When the table's history proves it has no row in
the run's range, the rows are appended as an idempotent transaction (see
:mod:`fstore_spark.offline.storage`).
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
from fstore_spark.offline.plan import plan_view
from fstore_spark.offline.quarantine import (
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
    lateness: timedelta = DEFAULT_LATENESS,
    view_version: int | None = None,
    run_id: str | None = None,
    by: str | None = None,
) -> MaterializationResult:
    """Bring the feature table up to ``end`` (default: now), touching only what changed.

    ``by`` (who runs it) is recorded in the commit's metadata.

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
    bound = last_end - lateness
    with ctx.step("source"):
        scan = _scan_new_events(ctx, events, last, src_version, bound, run_id)
    start = _first_instant(last_end, scan.first, view.cadence)
    if view.is_aggregated:
        feats = _aggregated_rows(ctx, events, start, end_dt)
    else:
        feats = project_rows(ctx, events, start, end_dt)
    extra = {"late_events_quarantined": scan.late, "invalid_events_quarantined": scan.invalid}
    meta = ctx.metadata(run_id, "incremental", start, end_dt, src_version, extra)
    with ctx.step("features"):
        append_at = history[0]["version"] if all_rows_before(history, start) else None
        committed = write_features(ctx, feats, start, end_dt, meta, append_at)
    with ctx.step("changes"):
        written = row_changes(ctx, *committed)
    return MaterializationResult.of(
        ctx,
        run_id,
        "incremental",
        (start, end_dt),
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


class _Scan(NamedTuple):
    """What the new events of an incremental run hold."""

    first: datetime | None  # earliest accepted new event time
    late: int  # late events quarantined
    invalid: int  # events with a null key or unreadable time, quarantined


def _scan_new_events(
    ctx: RunContext,
    events: DataFrame,
    last: dict[str, Any],
    src_version: int | None,
    bound: datetime,
    run_id: str,
) -> _Scan:
    """The new events' earliest time, late and invalid counts, in one pass.

    The late events found (change feed only) and the invalid ones are quarantined.
    """
    from pyspark.sql import functions as F

    new_events, late = _new_events(ctx, events, last, src_version, bound)
    ts = F.col(ctx.ts).cast("timestamp")
    invalid = invalid_event(ctx)
    is_late = F.lit(False) if late is None else late & ~invalid
    row = new_events.select(
        F.min(F.when(~is_late & ~invalid, ts)).alias("m"),
        F.count(F.when(is_late, 1)).alias("late"),
        F.count(F.when(invalid, 1)).alias("invalid"),
    ).first()
    n_late = int(row["late"]) if row is not None else 0
    n_invalid = int(row["invalid"]) if row is not None else 0
    if n_late:
        reason = f"event time older than {bound.isoformat()}"
        quarantine(ctx, new_events.where(is_late), run_id, reason)
        _warn_late(ctx, n_late, bound)
    quarantine_invalid(ctx, new_events, run_id, n_invalid)
    first_new = None if row is None or row["m"] is None else to_utc(row["m"])
    return _Scan(first_new, n_late, n_invalid)


def _warn_late(ctx: RunContext, n: int, bound: datetime) -> None:
    _log.warning(
        "feature view %r: %d late event(s) older than the lateness bound %s were "
        "quarantined in %s and are not in the features. Fix: backfill their range "
        "(materialize), or run the incremental with a larger lateness.",
        ctx.view.name,
        n,
        bound.isoformat(),
        quarantine_path(ctx.root, ctx.view.name),
    )


def _first_instant(last_end: datetime, first_new: datetime | None, cadence: timedelta) -> datetime:
    """The first emission instant to rewrite: after the last run, or the earliest new tile."""
    start = align_floor(last_end, cadence) + cadence
    if first_new is not None:
        start = min(start, align_floor(first_new - timedelta(microseconds=1), cadence) + cadence)
    return start


def _aggregated_rows(
    ctx: RunContext, events: DataFrame, start: datetime, end: datetime
) -> DataFrame:
    """Rewrite the tiles from ``start`` on; the feature rows in ``[start, end]`` from them.

    A few instants are evaluated directly; a longer range sweeps the tiles of the last
    ``max_window`` before ``start`` with older tiles folded into a lifetime baseline.
    """
    from pyspark.sql import functions as F

    plan = plan_view(ctx.view, ctx.keys, definition_dtypes(events.schema))
    end_floor = align_floor(end, ctx.view.cadence)
    hi = to_us(end_floor)
    lo = to_us(start) - plan.cadence_us  # tiles with end >= start
    if start <= end_floor:
        ts = F.col(ctx.ts).cast("timestamp")
        src = events.where((ts > lit_ts(from_us(lo))) & (ts <= lit_ts(end_floor)))
        tiles = build_tiles(src, plan, ctx.ts, ctx.source.created_timestamp_column)
        with ctx.step("tiles"):
            write_tiles(ctx, tiles, lo, hi)
    stored = read_delta(ctx.spark, ctx.tiles)
    instants = (hi - to_us(start)) // plan.cadence_us + 1
    if instants <= _DIRECT_MAX_INSTANTS:
        computed = features_at_instants(stored, plan, to_us(start), hi)
    else:
        cut = to_us(start) - plan.max_window_us - plan.cadence_us
        computed = features_from_tiles(stored, plan, to_us(start), hi, cut_us=cut)
    return feature_rows(ctx, computed)


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
    bound: datetime,
) -> tuple[DataFrame, Column | None]:
    """(new events, the condition that marks the late ones among them).

    With the change feed, the new events are the feed's inserted rows since the last run,
    late ones included (event time at or before the bound): the condition says which. With a
    watermark, late events cannot be seen: the new events are those after the bound, and the
    condition is None.
    """
    from pyspark.sql import functions as F

    ts = F.col(ctx.ts).cast("timestamp")
    last_version = last.get("source_version")
    if last_version is not None and src_version is not None and _cdf_enabled(ctx):
        if src_version <= int(last_version):
            return events.limit(0), None
        loc = source_location(ctx.source, ctx.root)
        reader = (
            ctx.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", int(last_version) + 1)
            .option("endingVersion", int(src_version))
        )
        assert isinstance(ctx.source, DeltaSource)
        changes = reader.table(loc) if ctx.source.table is not None else reader.load(loc)
        changes = changes.where(F.col("_change_type").isin("insert", "update_postimage"))
        changes = changes.drop("_change_type", "_commit_version", "_commit_timestamp")
        return changes, ts <= lit_ts(bound)
    return events.where(ts > lit_ts(bound)), None
