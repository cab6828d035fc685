"""The sync job: keep Redis in step with a view's Delta feature table, from Spark executors.

What Redis holds for a view is "the latest row per entity as of the sync instant": the row with
the largest ``(feature_timestamp, created_timestamp)`` among rows with
``as_of - ttl <= feature_timestamp <= as_of`` -- exactly what a training set would join for a
label at ``as_of`` (:mod:`fstore_spark.offline.asof`).

* **full** (:mod:`~fstore_spark.online.sync_full`) -- every entity's latest row from the Delta
  snapshot, written into a new namespace that readers are switched to atomically at the end.
* **incremental** (:mod:`~fstore_spark.online.sync_incremental`) -- only the entities whose
  rows changed since the last synced Delta version, found from the table's recent commits and
  its change data feed.

Writes happen on executors with ``mapInArrow`` (works under Spark Connect too): each partition
opens one connection and sends pipelined batches of ``EVALSHA`` (the compare-and-set script in
:mod:`fstore_spark.online.writer`); each partition returns one row of counts and the driver sums
them -- nothing but those rows is collected.

State and resumption: the state (last synced Delta version, instant, namespace) lives in Redis in
the view's ``_meta`` hash and is only advanced after all partitions succeeded. A crashed
incremental run is simply run again from the same version (already written keys are skipped or
rewritten identically). A crashed full run is resumed by the next run at the same Delta version
and instant. One sync per view runs at a time (a Redis lease renewed while the job runs).

Example::

    result = sync_view(spark, project_root, view, [("customer_id", "string")], online)
    result.keys_written, result.mode       # (1000, 'full') the first time
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fstore_spark.core import FeatureView, definition_hash
from fstore_spark.errors import OnlineStoreError
from fstore_spark.lakehouse.tables import feature_table_path
from fstore_spark.online.client import OnlineStore
from fstore_spark.online.codec import micros
from fstore_spark.online.sync_full import full_reload, remove_old_namespace
from fstore_spark.online.sync_incremental import incremental
from fstore_spark.online.sync_job import SyncJob, require_table
from fstore_spark.online.sync_state import SyncLease, SyncResult, SyncState
from fstore_spark.online.sync_writes import spark_dtypes

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SyncResult", "spark_dtypes", "sync_view"]

_log = logging.getLogger("fstore_spark.online")


def _run(job: SyncJob, state: SyncState, mode: str, version: int, as_of_us: int) -> SyncResult:
    """Choose the mode of the run (a pending reload first, then full when it must be) and run it.

    Full when asked, on the first sync, when the view definition changed since the last sync,
    when the table went back to an older version, or when the saved state is of another
    table (another lakehouse with the same project and key prefix); incremental otherwise.
    """
    if state.pending_ns is not None and state.pending_version is not None:
        pending_as_of = state.pending_as_of_us if state.pending_as_of_us is not None else as_of_us
        return full_reload(job, state, state.pending_version, pending_as_of)
    if mode == "full":
        return full_reload(job, state, version, as_of_us, reason="full sync requested")
    if state.ns is None or state.version is None or state.as_of_us is None:
        return full_reload(job, state, version, as_of_us, reason="first sync of the view")
    if state.definition_hash != definition_hash(job.view):
        return full_reload(job, state, version, as_of_us, reason="the view definition changed")
    if state.table is not None and state.table != job.path:
        reason = f"the saved state is of another table ({state.table})"
        return full_reload(job, state, version, as_of_us, reason=reason)
    if state.version > version:
        reason = "the feature table went back to an older version"
        return full_reload(job, state, version, as_of_us, reason=reason)
    return incremental(job, state, version, as_of_us)


def sync_view(
    spark: SparkSession,
    project_root: str,
    view: FeatureView,
    join_keys: list[tuple[str, str]],
    online: OnlineStore,
    *,
    mode: str = "incremental",
    expire_after: timedelta | None = None,
    now: datetime | None = None,
    partitions: int | None = None,
    fail_after_partitions: int | None = None,
    by: str | None = None,
) -> SyncResult:
    """Sync one view's feature table to Redis (see the module docstring for the semantics).

    Args:
        spark: Session.
        project_root: Project root in the lakehouse.
        view: The feature view.
        join_keys: ``(join key, dtype)`` in declared order.
        online: The online store.
        mode: ``incremental`` (default; falls back to full when there is no state, the
            definition changed or the change data feed cannot be read) or ``full``.
        expire_after: Redis expiry after each value's feature timestamp (``PEXPIREAT``); None
            keeps keys until replaced.
        now: The instant to sync "latest as of" (default: the clock). Tests pin it.
        partitions: Repartition the entities into this many writer tasks (default: Spark's
            shuffle partitions).
        fail_after_partitions: **Test hook**: partitions after the first N write one batch and
            then fail, as if the job were killed mid-run. The state is not advanced, so the next
            run resumes.
        by: Who runs the sync, recorded as ``synced_by`` in the view's sync state.

    Returns:
        What the run did.

    Raises:
        NotFoundError: the view has no feature table yet.
        OnlineStoreError: Redis is unreachable, or another sync of the view is running.
    """
    if mode not in ("incremental", "full"):
        raise OnlineStoreError(f"sync mode must be 'incremental' or 'full', got {mode!r}.")
    t0 = time.perf_counter()
    require_table(spark, feature_table_path(project_root, view), view.name)
    online.ping()
    lease_key = online.layout.lock_key(view.name)
    with SyncLease(online.client, lease_key, view.name, online.conn_spec.error):
        state = online.state(view.name)
        job = SyncJob(spark, project_root, view, join_keys, online, expire_after, partitions)
        job.fail_after = fail_after_partitions
        job.by = by
        usual = mode == "incremental" and state.version is not None and state.pending_ns is None
        # the usual run reads the commits since the last sync straight from the Delta log
        version = job.load_commits(state.version if usual else None)
        as_of_us = micros(now) if now is not None else time.time_ns() // 1000
        left = state.unlink_ns if state.unlink_ns not in (None, state.ns) else None
        leftover = 0 if left is None else remove_old_namespace(job, left)
        result = _run(job, state, mode, version, as_of_us)
    unlinked = result.keys_unlinked + leftover
    done = replace(result, seconds=time.perf_counter() - t0, keys_unlinked=unlinked)
    _log.info(
        "%s: sync %s to Delta version %s: %s keys written, %s deleted, %s skipped, %.1f s (%s)",
        view.name,
        done.mode,
        done.version,
        f"{done.keys_written:,}",
        f"{done.keys_deleted:,}",
        f"{done.keys_skipped:,}",
        done.seconds,
        done.reason,
    )
    return done
