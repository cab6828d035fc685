"""Shared test infrastructure.

* ``spark``: one session-scoped SparkSession (local[2], 1 shuffle partition, no AQE, UI off, UTC,
  Delta on, driver bound to 127.0.0.1), built through :func:`fstore_spark.get_spark` so the
  offline JAR cache is exercised by every run.
* ``redis_server``: a real ``redis-server`` started on a free loopback port for the test session
  and stopped after it; ``redis_url`` flushes it for each test.
* ``mlflow_uri``: a temporary SQLite tracking store per test (a copy of one migrated store).
* ``lakehouse``: a temporary lakehouse folder per test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts Spark (directly or through a fixture) with ``spark``."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


def _extra_conf() -> dict[str, str]:
    """``FSTORE_TEST_SPARK_CONF="k=v,k=v"``: extra settings for the test session (tuning)."""
    raw = os.environ.get("FSTORE_TEST_SPARK_CONF", "")
    return dict(kv.split("=", 1) for kv in raw.split(",") if kv)


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    from fstore_spark.config import SparkConfig
    from fstore_spark.session import get_spark

    cfg = SparkConfig(
        master="local[2]",
        app_name="fstore_tests",
        shuffle_partitions=1,
        ui_enabled=False,
        driver_memory="2g",
        options={
            "spark.ui.showConsoleProgress": "false",
            # tiny test data: one shuffle partition and no adaptive re-planning per query
            "spark.sql.adaptive.enabled": "false",
            "spark.databricks.delta.snapshotPartitions": "1",
            **_extra_conf(),
        },
    )
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a throwaway redis-server on a free loopback port; yield its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed: run `apt-get install redis-server` (.ci/run does)"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture()
def redis_url(redis_server: str) -> str:
    import redis

    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its schema migrated, made once for the session.

    Creating a store runs MLflow's schema migrations (2-3 s); each test gets a copy instead.
    """
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture()
def mlflow_uri(tmp_path: Path, _mlflow_template: Path) -> Iterator[str]:
    import mlflow
    from mlflow.tracking import fluent

    def forget_experiment() -> None:
        # set_experiment is process-wide: an experiment id a test set in its own database
        # must not leak into the next test's
        fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)

    previous = mlflow.get_tracking_uri()
    shutil.copyfile(_mlflow_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    forget_experiment()
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    forget_experiment()
    mlflow.set_tracking_uri(previous)


@pytest.fixture()
def lakehouse(tmp_path: Path) -> Path:
    root = tmp_path / "lakehouse"
    root.mkdir()
    return root
