"""One tiny smoke test per component: Delta, Redis, MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_delta_write_and_time_travel(spark, lakehouse: Path) -> None:
    path = str(lakehouse / "t")
    spark.range(3).write.format("delta").save(path)
    spark.range(10).write.format("delta").mode("overwrite").save(path)
    assert spark.read.format("delta").load(path).count() == 10
    v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert sorted(r.id for r in v0.collect()) == [0, 1, 2]
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history().select("version").collect()
    assert sorted(r.version for r in history) == [0, 1]


def test_session_is_utc_with_delta(spark) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")


def test_redis_set_get(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set("fstore:smoke", "1")
    assert client.get("fstore:smoke") == b"1"
    assert redis_url.startswith("redis://127.0.0.1:")


def test_mlflow_log_and_read_back(mlflow_uri: str, tmp_path: Path) -> None:
    import mlflow

    exp = mlflow.create_experiment("smoke", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_param("p", "x")
        mlflow.log_metric("m", 1.5)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params == {"p": "x"}
    assert got.data.metrics == {"m": pytest.approx(1.5)}
    assert mlflow_uri.startswith("sqlite:///")
