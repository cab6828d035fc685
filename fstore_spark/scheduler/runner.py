"""The scheduler loop: hold the lease, run each due job once per slot, log every run.

Each run is logged in the Delta table ``_schedules/runs`` with its job, slot, runner, start and
end times, status (``ok`` / ``failed``) and a message; the log is keyed by (job, slot), so a
slot is run and logged once. A failing job is logged and does not stop the others.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError
from fstore_spark.lakehouse.tables import is_delta_table, read_delta
from fstore_spark.lakehouse.writes import insert_new_rows
from fstore_spark.scheduler.jobs import Job, scheduled_jobs
from fstore_spark.scheduler.lease import Lease
from fstore_spark.workflows.monitoring import FeatureMonitor

if TYPE_CHECKING:
    from fstore_spark.store import FeatureStore

__all__ = ["RUNS_SCHEMA", "Scheduler", "run_job"]

RUNS_SCHEMA = (
    "job string, slot timestamp, runner string, started_at timestamp, "
    "finished_at timestamp, status string, message string"
)


def run_job(store: FeatureStore, job: Job) -> str:
    """Run one job now; returns a one-line summary of what it did."""
    if job.kind == "sync":
        views = sorted({ref.split(":", 1)[0] for ref in store.get_feature_set(job.target).features})
        online = {v.name for v in store.list_feature_views() if v.online}
        results = [store.sync_online(v) for v in views if v in online]
        return "; ".join(
            f"{r.view}: {r.mode} to version {r.version}, {r.keys_written} keys" for r in results
        )
    if job.kind == "monitor":
        checks = FeatureMonitor.from_schedule(job.spec, store).check(job.target)
        alerts = sum(len(r.alerts) for r in checks)
        return f"{len(checks)} view(s) checked, {alerts} alert(s)"
    raise DefinitionError(f"job {job.name!r}: unknown kind {job.kind!r} (sync or monitor).")


class Scheduler:
    """Runs a store's scheduled jobs while it holds the lease.

    Args:
        store: The store whose registry holds the schedules.
        tick: Seconds between two looks at what is due (and lease renewals).
        lease_ttl: How long the lease lasts without renewal. It is renewed before each job,
            so it must exceed the longest job; a killed scheduler's jobs are taken over after
            at most this long.
        runner: This scheduler's name in the lease and the run log (default host:pid).
    """

    def __init__(
        self,
        store: FeatureStore,
        *,
        tick: float = 10.0,
        lease_ttl: float = 60.0,
        runner: str | None = None,
    ) -> None:
        self.store = store
        self.tick = tick
        self.runner = runner or f"{socket.gethostname()}:{os.getpid()}"
        self.runs_path = store.table_path("_schedules/runs")
        self.lease = Lease(
            store.spark,
            store.table_path("_schedules/lease"),
            self.runner,
            timedelta(seconds=lease_ttl),
        )

    def run(
        self, *, duration: float | None = None, emit: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """Loop until interrupted (or for ``duration`` seconds), one JSON record per run."""
        out = emit or (lambda rec: print(json.dumps(rec, default=str), flush=True))
        stop = None if duration is None else time.monotonic() + duration
        try:
            while stop is None or time.monotonic() < stop:
                started = time.monotonic()
                for record in self.run_due(datetime.now(UTC)):
                    out(record)
                time.sleep(max(0.0, self.tick - (time.monotonic() - started)))
        finally:
            try:
                self.lease.release()
            except Exception:  # noqa: BLE001 - stopping anyway; the lease then just expires
                pass

    def run_due(self, now: datetime) -> list[dict[str, Any]]:
        """If this scheduler holds the lease, run every job whose slot has no logged run."""
        if not self.lease.acquire(now):
            return []
        done = self._logged(now)
        records = []
        for job in scheduled_jobs(self.store):
            if (job.name, job.slot(datetime.now(UTC))) in done:
                continue
            # renewed before each job: a job never starts on a lease about to lapse
            if not self.lease.acquire(datetime.now(UTC)):
                break
            slot = job.slot(datetime.now(UTC))  # the slot the job starts in
            if (job.name, slot) not in done:
                records.append(self._run(job, slot))
        return records

    def _logged(self, now: datetime) -> set[tuple[str, datetime]]:
        """(job, slot) of the runs logged recently (the longest frequency is a day or so)."""
        if not is_delta_table(self.store.spark, self.runs_path):
            return set()
        recent = read_delta(self.store.spark, self.runs_path).where(
            f"slot >= timestamp'{(now - timedelta(days=32)).strftime('%Y-%m-%d %H:%M:%S')}'"
        )
        return {
            (r["job"], r["slot"].astimezone(UTC)) for r in recent.select("job", "slot").collect()
        }

    def _run(self, job: Job, slot: datetime) -> dict[str, Any]:
        """Run a job and log it (``failed`` with the error's last line when it raises)."""
        started = datetime.now(UTC)
        try:
            status, message = "ok", run_job(self.store, job)
        except Exception as exc:  # one failing job must not stop the others
            status = "failed"
            message = f"{type(exc).__name__}: {exc}".strip() or traceback.format_exc(limit=1)
        record = {
            "job": job.name,
            "slot": slot,
            "runner": self.runner,
            "started_at": started,
            "finished_at": datetime.now(UTC),
            "status": status,
            "message": message[:2000],
        }
        rows = self.store.spark.createDataFrame([tuple(record.values())], RUNS_SCHEMA)
        insert_new_rows(self.store.spark, self.runs_path, rows, ["job", "slot"])
        return record
