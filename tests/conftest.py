"""Shared test infrastructure.

* ``spark``: one session-scoped SparkSession (local[2], 1 shuffle partition, no AQE, UI off, UTC,
  Delta on, driver bound to 127.0.0.1), built through :func:`fstore_spark.get_spark` so the
  offline JAR cache is exercised by every run.
* ``redis_server``: a real ``redis-server`` started on a free loopback port for the test session
  and stopped after it; ``redis_url`` flushes it for each test.
* ``mlflow_uri``: a temporary SQLite tracking store per test (a copy of one migrated store).
* ``lakehouse``: a temporary lakehouse folder per test.
* ``webhook_receiver`` / ``smtp_receiver``: a real HTTP endpoint and a real SMTP server
  (aiosmtpd) on free loopback ports, recording what alert channels deliver.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


# ---------------------------------------------------------------- alert receivers


@dataclass
class Receiver:
    """What a local receiver got: each request's path, headers and decoded JSON body."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server on a free loopback port that records each POST (JSON body)."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "body": json.loads(body),
                }
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}", got)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """A local SMTP server's address and the messages it accepted."""

    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def smtp_receiver() -> Iterator[Mailbox]:
    """An SMTP server (aiosmtpd) on a free loopback port that keeps every message."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = message_from_bytes(envelope.content, policy=policy.default)
            box.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "subject": str(msg["Subject"]),
                    "body": msg.get_body(preferencelist=("plain",)).get_content(),
                }
            )
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
