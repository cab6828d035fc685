"""The incremental sync: rewrite only the entities whose rows changed since the last sync.

The changed entities are found with Delta's change data feed (from the last synced version
+ 1; enabled on every feature table at creation). Their latest rows are recomputed from the
current snapshot and upserted; an entity with no eligible row any more is deleted. The write
script skips a same-timestamp write whose values did not change, so ``keys_written`` counts
exactly the entities whose served values changed.

Fast paths, chosen from the commits read at the start of the run:

* commits that only *inserted* rows (appends, or a ``replaceWhere`` that replaced nothing: no
  removed files, no deleted rows) make the inserted rows the only candidates, and the snapshot
  is not read at all: a candidate older than what Redis holds is refused by the script. Those
  rows are read straight from the data files the commits added when the table's files are
  plain Parquet (no partition columns, no column mapping) -- what the feed would return,
  without planning its scan -- otherwise from the feed. This assumes (keys,
  ``feature_timestamp``) is unique in the table, which materialization guarantees;
* few changed rows: the changed keys are broadcast to the snapshot's semi join.

Rows stamped after the sync instant (a backfill into the future) are not served yet; the
smallest such timestamp is kept in the state, and the first sync after it also takes every
entity with rows that became current since the previous sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fstore_spark.lakehouse.commits import read_change_feed
from fstore_spark.lakehouse.tables import FEATURE_TIMESTAMP
from fstore_spark.online.codec import from_micros
from fstore_spark.online.sync_full import full_reload
from fstore_spark.online.sync_job import SyncJob, min_opt
from fstore_spark.online.sync_state import SyncResult, SyncState
from fstore_spark.online.sync_writes import WriteCounts, run_writers

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["incremental"]

_BROADCAST_ROWS = 2_000_000  # changed rows up to which the changed keys are broadcast
_SMALL_FEED_ROWS = 200_000  # inserted rows up to which one writer task takes them all
_INSERTS = "_change_type = 'insert'"


def _record(
    job: SyncJob,
    state: SyncState,
    version: int,
    as_of_us: int,
    future: int | None,
    counts: WriteCounts,
    reason: str,
) -> SyncResult:
    """Advance the sync state (after every partition succeeded) and report the run."""
    fields = {
        "version": version,
        "as_of_us": as_of_us,
        "future_us": "" if future is None else future,
        "mode": "incremental",
    }
    job.online.client.hset(job.meta_key, mapping=job.meta(fields))
    return job.result(
        mode="incremental",
        version=version,
        previous_version=state.version,
        namespace=state.ns,
        keys_written=counts.written,
        keys_skipped=counts.skipped,
        keys_deleted=counts.deleted,
        as_of=from_micros(as_of_us),
        reason=reason,
    )


def _noop(job: SyncJob, state: SyncState, version: int, as_of_us: int) -> SyncResult:
    """Nothing changed: only the instant the view is "latest as of" moves on."""
    job.online.client.hset(job.meta_key, mapping=job.meta({"as_of_us": as_of_us}))
    return job.result(
        mode="noop",
        version=version,
        previous_version=state.version,
        namespace=state.ns,
        keys_written=0,
        keys_skipped=0,
        keys_deleted=0,
        as_of=from_micros(as_of_us),
        reason=f"no new Delta version since {state.version}",
    )


def _from_inserts(
    job: SyncJob,
    rows: DataFrame,
    where: str | None,
    state: SyncState,
    version: int,
    as_of_us: int,
) -> SyncResult:
    """Sync when the commits since the last sync only inserted ``rows`` (``where`` holds).

    An entity without a current candidate (all its new rows in the future or beyond the ttl)
    keeps what Redis has: nothing was removed from the table.
    """
    assert state.ns is not None and state.version is not None
    prev = state.version
    small = job.changed_rows(prev) <= _SMALL_FEED_ROWS  # one task, no shuffle
    writes = job.writes(
        rows, state.ns, as_of_us, None if small else job.partitions, None, where=where
    )
    counts = run_writers(writes, job.spec(version))
    future = min_opt(state.future_us, counts.future_us)
    source = "the change data feed" if where else "their data files"
    reason = f"rows inserted by Delta versions {prev + 1}..{version}, read from {source}"
    return _record(job, state, version, as_of_us, future, counts, reason)


def _touched_keys(
    job: SyncJob,
    touched: DataFrame | None,
    snapshot: DataFrame,
    state: SyncState,
    as_of_us: int,
    due: bool,
) -> DataFrame:
    """The keys of every entity to recompute.

    Those the commits changed, and (when ``due``) those with rows that were in the future at
    the last sync and are current now.
    """
    from pyspark.sql import functions as F

    assert state.as_of_us is not None and state.version is not None
    if due:
        ts = F.col(FEATURE_TIMESTAMP)
        lo = F.lit(from_micros(state.as_of_us).replace(tzinfo=None)).cast("timestamp")
        hi = F.lit(from_micros(as_of_us).replace(tzinfo=None)).cast("timestamp")
        became = snapshot.where((ts > lo) & (ts <= hi)).select(*job.key_names)
        touched = became if touched is None else touched.unionByName(became)
    assert touched is not None
    for k in job.key_names:
        touched = touched.where(F.col(k).isNotNull())
    return touched


def _next_future(snapshot: DataFrame, as_of_us: int) -> int | None:
    """The smallest feature timestamp after ``as_of_us`` over the whole table (micros)."""
    from pyspark.sql import functions as F

    row = (
        snapshot.where(F.col(FEATURE_TIMESTAMP) > F.lit(from_micros(as_of_us).replace(tzinfo=None)))
        .agg(F.min(F.unix_micros(F.col(FEATURE_TIMESTAMP))).alias("m"))
        .first()
    )
    return None if row is None or row["m"] is None else int(row["m"])


def _recompute(
    job: SyncJob,
    touched: DataFrame | None,
    state: SyncState,
    version: int,
    as_of_us: int,
    due: bool,
) -> SyncResult:
    """The general path: rewrite the touched entities from the snapshot's rows.

    Touched entities without any eligible row any more come out null: they are deleted.
    """
    assert state.ns is not None and state.version is not None
    prev = state.version
    snapshot = job.snapshot(version)
    keys = _touched_keys(job, touched, snapshot, state, as_of_us, due)
    # few changes (the usual case): ship the changed keys to every task instead of shuffling
    # the whole table for the semi join (the hint goes on the join's side only: ``keys`` is
    # used again below, where a hint would be ignored with a warning)
    small = job.changed_rows(state.version) <= _BROADCAST_ROWS
    from pyspark.sql import functions as F

    rows = snapshot.join(F.broadcast(keys) if small else keys, on=job.key_names, how="left_semi")
    writes = job.writes(rows, state.ns, as_of_us, job.partitions, "D", also_keys=keys)
    counts = run_writers(writes, job.spec(version))
    if due:  # recompute the next future instant over the whole table
        future = _next_future(snapshot, as_of_us)
    else:
        future = min_opt(state.future_us, counts.future_us)
    reason = f"changes of Delta versions {prev + 1}..{version}"
    if due:
        reason += " and rows that became current"
    return _record(job, state, version, as_of_us, future, counts, reason)


def incremental(job: SyncJob, state: SyncState, version: int, as_of_us: int) -> SyncResult:
    """Bring the view from its synced version to ``version``, "latest as of" ``as_of_us``.

    Falls back to a full reload when the change data feed cannot be read for the range (not
    enabled, or vacuumed).

    Args:
        job: The run (its commits loaded).
        state: The view's sync state; it must hold a completed sync.
        version: The table's current Delta version (not older than the synced one).
        as_of_us: The instant (epoch micros) to take the latest rows at.
    """
    from pyspark.errors import AnalysisException

    assert state.version is not None and state.as_of_us is not None and state.ns is not None
    prev = state.version
    due = state.future_us is not None and state.future_us <= as_of_us
    if version == prev and not due:
        return _noop(job, state, version, as_of_us)
    inserts_only = version > prev and not due and not job.removed_since(prev)
    if inserts_only:
        inserted = job.inserted_rows(prev)
        if inserted is not None:
            return _from_inserts(job, inserted, None, state, version, as_of_us)
    touched: DataFrame | None = None
    if version > prev:
        try:
            feed = read_change_feed(job.spark, job.path, prev + 1, version)
            touched = feed.select(*job.key_names)
        except AnalysisException as exc:  # feed not enabled for that range, or vacuumed
            reason = f"change data feed unreadable from version {prev + 1}: {type(exc).__name__}"
            return full_reload(job, state, version, as_of_us, reason=reason)
        if inserts_only:
            # the feed's inserted rows are the candidates; any removal (a replaced range, a
            # delete, an update) takes the general path, which re-reads the touched entities
            return _from_inserts(job, feed, _INSERTS, state, version, as_of_us)
    return _recompute(job, touched, state, version, as_of_us, due)
