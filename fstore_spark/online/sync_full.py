"""The full reload: every entity's latest row of a Delta snapshot, into a fresh namespace.

The rows are written into a *new namespace* (``P:proj:view:<ns+1>:...``); when every partition
has finished, one ``MULTI`` flips the pointer key to it and records the sync state, then the
old namespace is unlinked. Readers switch atomically, and entities dropped from the table
simply are not in the new namespace.

A crashed reload leaves ``pending_ns``/``pending_version`` in the state; the next run resumes
it at the same Delta version and instant, so the namespace it flips to is exactly that
snapshot. When that version cannot be read any more (vacuumed), the reload starts over.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from fstore_spark.core import definition_hash
from fstore_spark.errors import NotFoundError
from fstore_spark.online.codec import from_micros
from fstore_spark.online.sync_job import SyncJob
from fstore_spark.online.sync_state import SyncResult, SyncState
from fstore_spark.online.sync_writes import WriteCounts, run_writers, spark_dtypes

__all__ = ["full_reload", "remove_old_namespace"]

_PENDING = ("pending_ns", "pending_version", "pending_as_of_us")


def _new_namespace(job: SyncJob, state: SyncState, version: int, as_of_us: int) -> int:
    """Allocate the next namespace and record it as the pending reload's."""
    client = job.online.client
    ns = int(client.hincrby(job.meta_key, "ns_seq", 1))
    if state.ns is not None and ns <= state.ns:  # the counter was lost: stay unique
        ns = state.ns + 1
        client.hset(job.meta_key, "ns_seq", ns)
    client.hset(
        job.meta_key,
        mapping={"pending_ns": ns, "pending_version": version, "pending_as_of_us": as_of_us},
    )
    return ns


def _flip(
    job: SyncJob,
    ns: int,
    version: int,
    as_of_us: int,
    counts: WriteCounts,
    dtypes: dict[str, str],
    old_ns: int | None,
) -> None:
    """Point readers at namespace ``ns`` and record the state, in one transaction.

    Called only after every partition succeeded. The namespace flipped away from is recorded
    as ``unlink_ns`` in the same transaction, so that a job killed before removing it leaves
    the next sync a note of what to remove.
    """
    pipe = job.online.client.pipeline(transaction=True)
    pipe.set(job.layout.pointer_key(job.view.name), ns)
    fields = {
        "ns": ns,
        "version": version,
        "as_of_us": as_of_us,
        "future_us": "" if counts.future_us is None else counts.future_us,
        "definition_hash": definition_hash(job.view),
        "table": job.path,
        "dtypes": json.dumps(dtypes),
        "mode": "full",
    }
    if old_ns is not None:
        fields["unlink_ns"] = old_ns
    pipe.hset(job.meta_key, mapping=job.meta(fields))
    pipe.hdel(job.meta_key, *_PENDING)
    pipe.execute()


def remove_old_namespace(job: SyncJob, ns: int) -> int:
    """Unlink every key of namespace ``ns`` and clear the note of it; return keys removed."""
    removed = job.unlink_ns(ns)
    job.online.client.hdel(job.meta_key, "unlink_ns")
    return removed


def _start_over(job: SyncJob, state: SyncState) -> SyncResult:
    """Drop a pending reload whose version is gone and reload the current version now."""
    assert state.pending_ns is not None
    job.unlink_ns(state.pending_ns)
    job.online.client.hdel(job.meta_key, *_PENDING)
    state = replace(state, pending_ns=None)
    version = job.latest_version()
    return full_reload(job, state, version, time.time_ns() // 1000, "previous reload lost")


def full_reload(
    job: SyncJob, state: SyncState, version: int, as_of_us: int, reason: str | None = None
) -> SyncResult:
    """Reload the view from the snapshot at ``version``, "latest as of" ``as_of_us``.

    Args:
        job: The run.
        state: The view's sync state before the run.
        version: Delta version to read.
        as_of_us: The instant (epoch micros) to take the latest rows at.
        reason: Why a full reload; None resumes the pending reload of ``state``.

    Raises:
        NotFoundError: the table is gone.
        OnlineStoreError: Redis fails.
    """
    resumed = reason is None
    if resumed:
        assert state.pending_ns is not None
        ns = state.pending_ns
        reason = (
            f"resuming the full reload into namespace {ns} at Delta version {version} that "
            "did not finish"
        )
        try:
            snapshot = job.snapshot(version)
        except NotFoundError:  # that version is gone (vacuumed): start over
            return _start_over(job, state)
    else:
        snapshot = job.snapshot(version)
        ns = _new_namespace(job, state, version, as_of_us)
    dtypes = spark_dtypes(snapshot, job.features)
    writes = job.writes(snapshot, ns, as_of_us, job.partitions, None)
    counts = run_writers(writes, job.spec(version))
    old = state.ns if state.ns is not None and state.ns != ns else None
    _flip(job, ns, version, as_of_us, counts, dtypes, old)
    unlinked = 0 if old is None else remove_old_namespace(job, old)
    return job.result(
        mode="full",
        version=version,
        previous_version=state.version,
        namespace=ns,
        keys_written=counts.written,
        keys_skipped=counts.skipped,
        keys_deleted=counts.deleted,
        keys_unlinked=unlinked,
        as_of=from_micros(as_of_us),
        reason=reason,
        resumed=resumed,
    )
