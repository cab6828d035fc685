"""Secrets stay secret: a whole run with a Redis password and API keys set, then a grep.

The run applies, materializes, syncs to a password-protected redis-server, reads online,
builds a training set under an MLflow run, serves HTTP requests with good and bad keys, and
provokes Redis errors. Every log record, everything written to stdout/stderr (the JVM's too),
every exception text, the MLflow run's params, tags and text artifacts, and the ``repr`` of
the configuration are then searched for the password and the keys.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from conftest import free_port
from fastapi.testclient import TestClient

from fstore_spark import DeltaSource, Entity, FeatureView, Field
from fstore_spark.config import FeatureStoreConfig, hash_key
from fstore_spark.errors import FstoreError
from fstore_spark.server import create_app
from fstore_spark.store import FeatureStore

PASSWORD = "Pw-9f3c1e-SECRET-redis"
KEY_IN_ENV = "k3y-7d2a-SECRET-from-env"
KEY_HASHED = "k3y-0b8e-SECRET-hashed"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture()
def protected_redis(tmp_path: Path) -> Any:
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--requirepass",
            PASSWORD,
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait()


def _defs() -> list[Any]:
    customer = Entity(name="customer", join_keys={"customer_id": "string"})
    src = DeltaSource(
        name="people",
        path="raw/people",
        timestamp_column="event_timestamp",
        schema={"customer_id": "string", "age": "int64"},
    )
    view = FeatureView(
        name="people", entities=[customer], source=src, features=[Field(name="age", dtype="int64")]
    )
    return [customer, src, view]


def test_no_secret_in_logs_errors_mlflow_or_config(
    spark,
    lakehouse: Path,
    protected_redis: int,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FSTORE_TEST_REDIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("FSTORE_TEST_API_KEY", KEY_IN_ENV)
    cfg = FeatureStoreConfig.for_local(
        lakehouse,
        project="sec",
        online_store={
            "url": f"redis://127.0.0.1:{protected_redis}/0",
            "password_env": "FSTORE_TEST_REDIS_PASSWORD",
        },
        mlflow={"tracking_uri": mlflow_uri},
        server={
            "api_keys": [
                {"name": "env-key", "key_env": "FSTORE_TEST_API_KEY", "views": ["*"]},
                {"name": "hashed", "sha256": hash_key(KEY_HASHED), "views": ["people"]},
            ]
        },
    )
    store = FeatureStore(config=cfg, spark=spark)
    texts: list[str] = [repr(cfg), str(cfg), repr(cfg.online_store), repr(cfg.server)]
    texts += [repr(store.online_store.conn_spec), str(cfg.model_dump())]

    rows = [(f"c{i}", T0 + timedelta(hours=i), 30 + i) for i in range(10)]
    (
        spark.createDataFrame(rows, "customer_id string, event_timestamp timestamp, age bigint")
        .write.format("delta")
        .save(store.table_path("raw/people"))
    )
    store.apply(_defs())
    store.materialize("people", T0, T0 + timedelta(days=1))
    texts += [repr(r) for r in store.sync_online()]
    online = store.get_online_features(["people:age"], entity_keys=["c1", "c2"]).to_dict()
    assert online["age"] == [31, 32]

    fs = store.create_feature_set("people_set", ["people:age"])
    labels = pd.DataFrame(
        {
            "customer_id": ["c1", "c5"],
            "event_timestamp": [T0 + timedelta(days=1), T0 + timedelta(days=1)],
            "y": [0, 1],
        }
    )
    with mlflow.start_run() as run:
        ts = store.get_training_set(fs, labels)
        assert len(ts.to_pandas()) == 2
    got = MlflowClient(mlflow_uri).get_run(run.info.run_id)
    texts += [str(got.data.params), str(got.data.tags)]
    for art in MlflowClient(mlflow_uri).list_artifacts(run.info.run_id):
        if not art.is_dir:
            texts.append(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{art.path}"))
    assert any("fstore" in t for t in texts[-3:])  # the run did log lineage

    with TestClient(create_app(store, refresh_seconds=None)) as client:
        body = {"features": ["people:age"], "entity_rows": [{"customer_id": "c1"}]}
        for key in (KEY_IN_ENV, KEY_HASHED):
            ok = client.post("/get-online-features", json=body, headers={"X-API-Key": key})
            assert ok.status_code == 200, ok.text
        bad = client.post(
            "/get-online-features", json=body, headers={"Authorization": f"Bearer {PASSWORD}"}
        )
        assert bad.status_code == 401
        texts += [ok.text, bad.text]

    errors = _provoke_errors(spark, lakehouse, protected_redis)
    assert len(errors) == 3
    texts += errors

    out, err = capfd.readouterr()
    texts += [out, err, caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    haystack = "\n".join(texts)
    assert len(haystack) > 2000  # we are looking at a real run's output
    for secret in (PASSWORD, KEY_IN_ENV, KEY_HASHED):
        assert secret not in haystack, f"a secret leaked: ...{_around(haystack, secret)}..."


def _provoke_errors(spark: Any, lakehouse: Path, port: int) -> list[str]:
    """Error texts (with their tracebacks) of reads that fail in three ways."""
    wrong_port = free_port()
    configs = [
        {"url": f"redis://127.0.0.1:{port}/0"},  # no password: NOAUTH
        {"url": f"redis://:{PASSWORD}@127.0.0.1:{wrong_port}/0"},  # password in a dead URL
        {"url": f"redis://127.0.0.1:{wrong_port}/0?password={PASSWORD}"},
    ]
    texts = []
    for online in configs:
        cfg = FeatureStoreConfig.for_local(lakehouse, project="sec", online_store=online)
        store = FeatureStore(config=cfg, spark=spark)
        texts.append(repr(cfg))
        with pytest.raises(FstoreError) as info:
            store.get_online_features(["people:age"], entity_keys=["c1"])
        texts[-1] += "".join(traceback.format_exception(info.value))
    return texts


def _around(text: str, secret: str) -> str:
    i = text.index(secret)
    return text[max(0, i - 200) : i + 50].replace(secret, "<SECRET>")
