"""One end-to-end flow, three deployments, the same results.

* **local**: in this process, on the test session (``local[2]``);
* **cluster**: ``spark-submit --master local-cluster[2,1,1024]`` (a driver and two executor
  JVMs) with Delta given only by ``--jars`` (no ``spark-defaults.conf``, an empty JAR cache);
  the job's config asks for ``local[*]`` and its own app name, and the launcher must win. It
  runs the flow up to a second backfill of the same data (its cold JVMs make it the slowest);
* **connect**: a Spark Connect client process against Spark's own ``SparkConnectServer``
  (Delta's SQL extension and catalog, no Delta Connect plugin), started on a free loopback port
  and stopped after the test.

The three write to their own lakehouse, MLflow store and Redis database. Local and Connect
must give the same training sets, feature tables, statistics, drift, scores and online reads,
the cluster the same backfilled feature table (floats at a relative 1e-9); locally and on
Connect, materializing the same data twice must change nothing (diff and fingerprint), and an
incremental run that takes late events from the source's change feed must equal a backfill.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import deploy_flow as flow
import pytest
from conftest import free_port

from fstore_spark.session import DELTA_CATALOG, DELTA_EXTENSION, delta_jars

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REL_TOL = 1e-9
# the cluster lane's short-lived JVMs: the C1 compiler alone and the serial GC finish sooner
# (not the Connect server: it runs longer, and C2 pays off there)
SHORT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _spark_env(**extra: str) -> dict[str, str]:
    import pyspark

    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT")}
    env.update(
        PYTHONPATH=str(ROOT),
        PYSPARK_PYTHON=sys.executable,
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        **extra,
    )
    return env


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Spark Connect server exited: {log.read_text()[-4000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    proc.kill()
    pytest.fail(f"Spark Connect server did not listen on {port}: {log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Spark's SparkConnectServer with Delta on a free loopback port; yields its ``sc://`` URL."""
    port = free_port()
    work = tmp_path_factory.mktemp("connect")
    log = work / "server.log"
    cmd = [
        str(BIN / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master",
        "local[2]",
        "--jars",
        ",".join(delta_jars()),
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.sql.extensions={DELTA_EXTENSION}",
        "--conf",
        f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
        "--conf",
        "spark.sql.session.timeZone=UTC",
        "--conf",
        "spark.sql.shuffle.partitions=2",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.driver.bindAddress=127.0.0.1",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        f"spark.sql.warehouse.dir={work / 'warehouse'}",
        "spark-internal",
    ]
    with log.open("wb") as out:
        env = _spark_env()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        _wait_for_port(port, proc, log, timeout=180)
        yield f"sc://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _lane_dirs(tmp_path: Path, name: str, mlflow_template: Path) -> tuple[Path, str, Path]:
    lane = tmp_path / name
    (lane / "lakehouse").mkdir(parents=True)
    shutil.copyfile(mlflow_template, lane / "mlflow.db")
    return lane / "lakehouse", f"sqlite:///{lane / 'mlflow.db'}", lane


def _run_cluster_lane(lane: Path, root: Path, redis_url: str, mlflow_uri: str, t0: str) -> Any:
    empty_cache = lane / "no_jars"
    empty_cache.mkdir()
    properties = lane / "spark.properties"  # replaces spark-defaults.conf (its JAR list)
    properties.write_text("spark.ui.showConsoleProgress false\n")
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        "local-cluster[2,1,1024]",
        "--properties-file",
        str(properties),
        "--driver-java-options",
        SHORT_JVM,
        "--conf",
        f"spark.executor.extraJavaOptions={SHORT_JVM}",
        "--jars",
        ",".join(delta_jars()),
        str(ROOT / "tests" / "deploy" / "deploy_flow.py"),
        str(root),
        redis_url,
        mlflow_uri,
        str(lane),
        t0,
        "backfill",  # up to the second backfill (see deploy_flow.run)
    ]
    env = _spark_env(FSTORE_JARS_DIR=str(empty_cache))
    return _finish(cmd, env, lane, "cluster")


def _run_connect_lane(
    lane: Path, root: Path, redis_url: str, mlflow_uri: str, t0: str, url: str
) -> Any:
    cmd = [sys.executable, str(ROOT / "tests" / "deploy" / "deploy_flow.py")]
    cmd += [str(root), redis_url, mlflow_uri, str(lane), t0, "full"]
    return _finish(cmd, _spark_env(SPARK_REMOTE=url), lane, "connect")


def _finish(cmd: list[str], env: dict[str, str], lane: Path, name: str) -> dict[str, Any]:
    """Run a lane's process to its end; its result, or a failure with the output's tail."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=lane)
    steps = [ln for ln in out.stderr.splitlines() + out.stdout.splitlines() if "flow step" in ln]
    print(f"{name} lane:", *steps, sep="\n  ")
    assert out.returncode == 0, f"{name} lane failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return json.loads((lane / "result.json").read_text())


def _assert_close(a: Any, b: Any, where: str) -> None:
    """Equal, except floats within ``REL_TOL`` (relative; absolute near zero)."""
    if isinstance(a, float) and isinstance(b, float | int):
        assert math.isclose(a, b, rel_tol=REL_TOL, abs_tol=REL_TOL), f"{where}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


COMPARED = (
    "rematerialize",
    "incremental",
    "backfilled",
    "training",
    "feature_set",
    "feature_tables",
    "statistics",
    "drift",
    "scores",
    "sync",
    "online",
)


@pytest.mark.slow
def test_the_flow_gives_the_same_results_on_local_cluster_and_connect(
    spark, redis_url: str, _mlflow_template: Path, connect_server: str, tmp_path: Path
) -> None:
    base = redis_url.rsplit("/", 1)[0]
    t0 = flow.first_day()
    lanes = {n: _lane_dirs(tmp_path, n, _mlflow_template) for n in ("local", "cluster", "connect")}
    root, uri, _ = lanes["local"]
    local = flow.run(spark, root, f"{base}/0", uri, t0)
    local = json.loads(json.dumps(local, default=str, sort_keys=True))  # as the others: JSON
    root, uri, lane = lanes["cluster"]
    cluster = _run_cluster_lane(lane, root, f"{base}/1", uri, t0.isoformat())
    root, uri, lane = lanes["connect"]
    connect = _run_connect_lane(lane, root, f"{base}/2", uri, t0.isoformat(), connect_server)

    assert local["session"]["master"] == "local[2]"
    assert cluster["session"] == {
        "connect": False,
        "master": "local-cluster[2,1,1024]",
        "executors": 2,
        "app_name": "deploy_flow.py",  # spark-submit names the application after the script
    }
    assert connect["session"] == {"connect": True}
    # a second backfill of the same data is bit-identical on every lane, two executors
    # included (docs/semantics.md: floating-point sums are added in a fixed order)
    for name, result in {"local": local, "cluster": cluster, "connect": connect}.items():
        assert result["rematerialize"] == {  # the same data materialized twice: no change
            "added": 0,
            "removed": 0,
            "changed": 0,
            "unchanged": result["rematerialize"]["unchanged"],
            "same_fingerprint": True,
        }, name
    _assert_close(cluster["backfilled"], local["backfilled"], "cluster.backfilled")
    # the incremental took the late events from the change feed (its first rewritten instant
    # is the end of day 2 or 3, not the day after the last run), and equals a backfill
    late_start = (t0 + timedelta(days=3)).isoformat()
    assert local["incremental"]["start"] <= late_start, local["incremental"]
    assert local["incremental"]["late_events_quarantined"] == 0
    for result in (local, connect):
        where = f"{result['session']}.backfill_after_incremental"
        _assert_close(result["backfill_after_incremental"], result["feature_tables"]["txn"], where)
        assert result["training_logged"] is True
        assert dict(result["sync"])["txn"] == len(flow.CUSTOMERS)  # every key served
    for key in COMPARED:
        _assert_close(connect[key], local[key], f"connect.{key}")
