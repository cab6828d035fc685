"""Scheduled syncs and monitors run on time, once each, by one scheduler at a time.

Two ``fstore scheduler`` processes start at once on one project with two schedules (an online
sync and a monitor, every minute). Only the lease holder runs jobs; the test kills
it (SIGKILL) mid-way, and the other takes over once the lease expires. The run log then has
each (job, slot) exactly once, every slot on time while a scheduler held the lease, runs by
both processes, and only the slots a dead scheduler could not run are missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from fstore_spark import DeltaSource, Entity, FeatureStore, FeatureView, Field
from fstore_spark.scheduler import export_crontab, export_databricks, scheduled_jobs
from fstore_spark.workflows import FeatureMonitor

ROOT = Path(__file__).resolve().parents[2]
TICK, LEASE, RUN_FOR = 3.0, 30.0, 900.0


def _project(spark, tmp_path: Path, redis_url: str) -> tuple[FeatureStore, Path]:  # type: ignore[no-untyped-def]
    conf = tmp_path / "feature_store.yaml"
    conf.write_text(
        json.dumps(
            {
                "project": "sched",
                "lakehouse": {"root": str(tmp_path / "lake")},
                "online_store": {"url": redis_url},
                "spark": {
                    "master": "local[1]",
                    "shuffle_partitions": 1,
                    "driver_memory": "1g",
                    "options": {
                        "spark.sql.adaptive.enabled": "false",
                        "spark.ui.showConsoleProgress": "false",
                    },
                },
            }
        )
    )
    store = FeatureStore(config=str(conf), spark=spark)
    t0 = datetime(2026, 1, 1)
    profiles = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(20)], "ts": [t0] * 20, "age": range(20, 40)}
    )
    spark.createDataFrame(profiles, "customer_id string, ts timestamp, age bigint").write.format(
        "delta"
    ).save(store.table_path("raw/profiles"))
    store.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            FeatureView(
                name="profile",
                entities=["customer"],
                source=DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts"),
                features=[Field(name="age", dtype="int64")],
            ),
        ]
    )
    store.materialize("profile", t0, t0 + timedelta(days=1))
    store.create_feature_set("fs1", ["profile:age"])
    store.configure_online_serving("fs1", update_frequency="60s")
    monitor = FeatureMonitor(store)
    monitor.add_metric("row_count", threshold=1, alert_channel="log")
    monitor.start_monitoring("fs1", frequency="60s")
    return store, conf


def _scheduler(conf: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable,
        "-m",
        "fstore_spark.cli",
        "--config",
        str(conf),
        "scheduler",
        "--tick",
        str(TICK),
        "--lease-seconds",
        str(LEASE),
        "--for",
        str(RUN_FOR),
        "--id",
        name,
    ]
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)


def _records(log: Path) -> list[dict[str, str]]:
    """The JSON run records a scheduler printed."""
    text = log.read_text() if log.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _wait_for(procs: dict[str, subprocess.Popen[bytes]], tmp_path: Path, done) -> str:  # type: ignore[no-untyped-def]
    """The first scheduler whose printed runs satisfy ``done`` (within ten minutes)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(3)
        for name, proc in procs.items():
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            if done(name, _records(tmp_path / f"{name}.log")):
                return name
    raise AssertionError([p.read_text()[-3000:] for p in tmp_path.glob("*.log")])


def test_two_schedulers_run_each_slot_once_and_take_over(spark, tmp_path, redis_url) -> None:  # type: ignore[no-untyped-def]
    store, conf = _project(spark, tmp_path, redis_url)
    jobs = {j.name: j for j in scheduled_jobs(store)}
    assert set(jobs) == {"sync:fs1", "monitor:fs1"}
    procs = {n: _scheduler(conf, n, tmp_path / f"{n}.log") for n in ("A", "B")}
    # one of them runs jobs for a while (read from their output: the test's own Spark
    # session stays idle meanwhile); kill it, let the other take over and run, then stop it
    holder = _wait_for(procs, tmp_path, lambda n, recs: len(recs) >= 4)
    killed_at = datetime.now(UTC)
    procs[holder].send_signal(signal.SIGKILL)
    procs[holder].wait()
    survivor = "B" if holder == "A" else "A"
    _wait_for({survivor: procs[survivor]}, tmp_path, lambda n, recs: len(recs) >= 4)
    procs[survivor].send_signal(signal.SIGINT)  # a clean stop: it releases the lease
    assert procs[survivor].wait(timeout=120) == 0, (tmp_path / f"{survivor}.log").read_text()

    runs = spark.read.format("delta").load(store.table_path("_schedules/runs")).toPandas()
    assert set(runs.status) == {"ok"}, runs[["job", "message"]]
    assert not runs.duplicated(["job", "slot"]).any()
    assert set(runs.runner) == {holder, survivor}  # the survivor took over
    for name, job in jobs.items():
        mine = runs[runs.job == name].sort_values("slot")
        slots = list(mine.slot.dt.tz_localize(UTC))
        started = list(mine.started_at.dt.tz_localize(UTC))
        assert len(slots) >= 3
        for slot, t in zip(slots, started, strict=True):
            assert slot == job.slot(slot)  # slots are multiples of the frequency
            lateness = (t - slot).total_seconds()
            # on time: each run starts within its own slot
            assert 0 <= lateness < job.every.total_seconds(), (name, slot, t)
        takeover = killed_at + timedelta(seconds=LEASE + 4 * TICK + 30)
        for a, b in zip(slots, slots[1:], strict=False):
            # consecutive slots, but for those that fell while no scheduler held the lease
            assert b - a == job.every or (a <= takeover and b >= killed_at - job.every), (a, b)
    records = _records(tmp_path / f"{survivor}.log")
    assert {r["job"] for r in records} == set(jobs)
    # the monitor run checked the set's view and the sync wrote the view to Redis
    assert any("1 view(s) checked" in r["message"] for r in records)
    assert any(r["message"].startswith("profile:") for r in records)


def test_the_schedule_exports_to_databricks_and_cron(spark, tmp_path, redis_url) -> None:  # type: ignore[no-untyped-def]
    store, conf = _project(spark, tmp_path, redis_url)
    store.configure_online_serving("fs1", update_frequency="2h")
    jobs = scheduled_jobs(store)
    cron = export_crontab(jobs, ["fstore", "--config", str(conf)])
    assert f"0 */2 * * * fstore --config {conf} schedule run sync:fs1" in cron
    bundle = export_databricks(jobs, "sched", ["--config", "/dbfs/fstore.yaml"])
    import yaml

    spec = yaml.safe_load(bundle)["resources"]["jobs"]
    assert spec["fstore_sched_sync_fs1"]["schedule"]["quartz_cron_expression"] == "0 0 0/2 * * ?"
    task = spec["fstore_sched_sync_fs1"]["tasks"][0]["python_wheel_task"]
    assert task["parameters"] == ["--config", "/dbfs/fstore.yaml", "schedule", "run", "sync:fs1"]
    assert "*/1 * * * * fstore --config" in cron  # the monitor, every minute
    # 45 seconds is not a cron schedule: the export says so instead of rounding
    import pytest

    from fstore_spark.errors import ConfigError

    odd = FeatureMonitor(store)
    odd.add_metric("row_count", threshold=1)
    odd.start_monitoring("profile", frequency="45s")
    with pytest.raises(ConfigError, match="cron cannot express it"):
        export_crontab(scheduled_jobs(store), ["fstore"])
