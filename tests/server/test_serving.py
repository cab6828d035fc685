"""HTTP feature server, ``fstore sync`` and ``jobs/sync_online.py`` under spark-submit.

One small project is materialized once per module; each test syncs or reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import free_port
from fastapi.testclient import TestClient

from fstore_spark.cli import main as cli_main
from fstore_spark.server import create_app
from fstore_spark.store import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def project(spark, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config file whose project has the demo repo's demographic view materialized."""
    redis.Redis.from_url(redis_server).flushall()
    conf = tmp_path_factory.mktemp("serving") / "conf"
    conf.mkdir()
    cfg_file = conf / "feature_store.yaml"
    cfg_file.write_text(
        "project: srv\n"
        "lakehouse:\n  root: ../lake\n"
        f"repo_path: {ROOT / 'feature_repo'}\n"
        f"online_store:\n  url: {redis_server}\n"
        "spark:\n  master: local[1]\n  shuffle_partitions: 2\n"
        "  options:\n    spark.ui.showConsoleProgress: 'false'\n"
    )
    store = FeatureStore(config=cfg_file, spark=spark)
    rows = [
        (f"customer_{i}", NOW - timedelta(days=2, hours=i), 30 + i, f"city {i}", None)
        for i in range(20)
    ]
    (
        spark.createDataFrame(
            rows,
            "customer_id string, event_timestamp timestamp, age bigint, city string, "
            "signup_date date",
        )
        .write.format("delta")
        .save(store.table_path("raw/customer_demographics"))
    )
    store.apply()
    store.materialize("customer_demographic_features", NOW - timedelta(days=30), NOW)
    return cfg_file


def test_cli_sync_then_http_server(spark, project: Path, capsys) -> None:
    code = cli_main(["--config", str(project), "sync", "customer_demographic_features"])
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["mode"] == "full" and result["keys_written"] == 20
    assert cli_main(["--config", str(project), "sync", "customer_demographic_features"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["mode"] == "noop"

    store = FeatureStore(config=project, spark=spark)
    with TestClient(create_app(store, refresh_seconds=None)) as client:
        ok = client.post(
            "/get-online-features",
            json={
                "features": [
                    "customer_demographic_features:age",
                    "customer_demographic_features:city",
                    "customer_demographic_features:signup_date",
                ],
                "entity_rows": [{"customer_id": "customer_3"}, {"customer": "nobody"}],
            },
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["metadata"]["feature_names"] == ["customer_id", "age", "city", "signup_date"]
        key, age, city, signup = body["results"]
        assert key["values"] == ["customer_3", "nobody"]
        assert age["values"] == [33, None] and age["statuses"] == ["PRESENT", "NOT_FOUND"]
        assert city["values"] == ["city 3", None]
        assert signup["statuses"] == ["NULL_VALUE", "NOT_FOUND"]
        assert datetime.fromisoformat(age["event_timestamps"][0]) <= NOW

        bad_json = client.post("/get-online-features", json={"features": ["x:y"]})
        assert bad_json.status_code == 422 and "entity_rows" in bad_json.text
        both = client.post(
            "/get-online-features",
            json={"entity_rows": [{"customer_id": "a"}]},
        )
        assert both.status_code == 422
        unknown = client.post(
            "/get-online-features",
            json={"features": ["nope:age"], "entity_rows": [{"customer_id": "a"}]},
        )
        assert unknown.status_code == 400
        assert unknown.json()["error"] == "NotFoundError"
        assert "customer_demographic_features" in unknown.json()["detail"]
        no_key = client.post(
            "/get-online-features",
            json={
                "features": ["customer_demographic_features:age"],
                "entity_rows": [{"user": "a"}],
            },
        )
        assert no_key.status_code == 400 and no_key.json()["error"] == "EntityRowError"

        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        spec = client.get("/openapi.json").json()
        assert "/get-online-features" in spec["paths"] and "/health" in spec["paths"]
        assert "GetOnlineFeaturesRequest" in json.dumps(spec)


def test_health_reports_redis_down(spark, project: Path) -> None:
    from fstore_spark.config import load_config

    cfg = load_config(
        project, overrides={"online_store": {"url": f"redis://127.0.0.1:{free_port()}/0"}}
    )
    store = FeatureStore(config=cfg, spark=spark)
    with TestClient(create_app(store, refresh_seconds=None)) as client:
        down = client.get("/health")
        assert down.status_code == 503 and "redis-server is running" in down.json()["detail"]
        read = client.post(
            "/get-online-features",
            json={
                "features": ["customer_demographic_features:age"],
                "entity_rows": [{"customer_id": "customer_1"}],
            },
        )
        assert read.status_code == 503 and read.json()["error"] == "OnlineStoreError"


@pytest.mark.slow
def test_spark_submit_sync_online(spark, project: Path) -> None:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable}
    cmd = [
        str(spark_submit),
        "--master",
        "local[1]",
        # a short-lived JVM: the C1 compiler alone and the serial GC start and finish sooner
        "--driver-java-options",
        "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        str(ROOT / "jobs" / "sync_online.py"),
        "--config",
        str(project),
        "--view",
        "customer_demographic_features",
        "--full",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["view"] == "customer_demographic_features" and result["mode"] == "full"
    store = FeatureStore(config=project, spark=spark)
    got = store.get_online_features(
        ["customer_demographic_features:age"], entity_keys=["customer_0", "customer_19"]
    ).to_dict()
    assert got == {"customer_id": ["customer_0", "customer_19"], "age": [30, 49]}
