"""The notebooks in ``notebooks/``: Databricks source format, and they run in order.

The five notebooks run in this process (the session's Spark), as a Databricks job would run
them one after the other, against a throwaway lakehouse, Redis database and MLflow store.
Each one's results are then checked against facts read independently (the feature tables,
the label table, the Redis reads).
"""

from __future__ import annotations

import logging
import os
import runpy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ORDER = [
    "01_quickstart.py",
    "02_training_with_mlflow.py",
    "03_online_serving.py",
    "04_quality_and_monitoring.py",
    "05_ab_test.py",
]
SPEND = "customer_transaction_features"
PROFILE = "customer_demographic_features"


def test_the_notebooks_are_in_databricks_source_format() -> None:
    files = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_file())
    assert files == ORDER
    for name in files:
        text = (NOTEBOOKS / name).read_text()
        assert text.startswith("# Databricks notebook source\n"), name
        cells = text.split("\n# COMMAND ----------\n")
        assert len(cells) >= 3, f"{name}: cells are separated by '# COMMAND ----------'"
        assert cells[0].lstrip("\n").splitlines()[1].startswith("# MAGIC %md"), name
        for line in text.splitlines():
            assert not line.startswith("# COMMAND") or line == "# COMMAND ----------", name
        compile(text, name, "exec")  # plain Python too


def _latest(rows: Any, key: str, at: datetime | None = None) -> Any:
    """The newest row of a feature table for a customer (at or before ``at``)."""
    df = rows.where(f"customer_id = '{key}'")
    if at is not None:
        df = df.where(df.feature_timestamp <= at)
    return df.orderBy("feature_timestamp", ascending=False).first()


def _forget_mlflow_experiment() -> None:
    from mlflow.tracking import fluent

    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def test_the_notebooks_run_in_order_and_their_results_hold(
    spark,
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import mlflow

    conf = tmp_path / "conf"
    conf.mkdir()
    cfg = conf / "feature_store.yaml"
    cfg.write_text(
        "project: notebooks\n"
        "lakehouse:\n  root: ../lake\n"
        f"online_store:\n  url: {redis_url}\n"
        f"mlflow:\n  tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n  experiment: notebooks\n"
        f"repo_path: {ROOT / 'feature_repo'}\n"
    )
    monkeypatch.setenv("FSTORE_CONFIG", str(cfg))
    monkeypatch.chdir(tmp_path)
    before = mlflow.get_tracking_uri()
    ns: dict[str, dict[str, Any]] = {}
    checks = {  # each notebook is checked right after it ran, before the next one changes things
        ORDER[0]: lambda nb: _check_quickstart(spark, nb),
        ORDER[1]: lambda nb: _check_training(nb, len(ns[ORDER[0]]["labels_df"])),
        ORDER[2]: _check_online,
        ORDER[3]: lambda nb: _check_quality(nb, caplog),
        ORDER[4]: _check_ab_test,
    }
    try:
        # a later notebook on an empty lakehouse says to run 01 first
        with pytest.raises(RuntimeError, match="run 01_quickstart first"):
            runpy.run_path(str(NOTEBOOKS / ORDER[1]), run_name="__main__")
        for name in ORDER:
            with caplog.at_level(logging.WARNING, logger="fstore_spark.quality"):
                ns[name] = runpy.run_path(str(NOTEBOOKS / name), run_name="__main__")
            checks[name](ns[name])
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        _forget_mlflow_experiment()
        mlflow.set_tracking_uri(before)


def _check_quickstart(spark: Any, nb: dict[str, Any]) -> None:
    store, labels = nb["store"], nb["labels_df"]
    raw = spark.read.format("delta").load(nb["events_path"])
    # raw events: the first commit holds the events before the cutoff, the second the rest
    assert nb["raw_count"] == raw.count() == nb["EVENTS"]
    on_time = raw.where(raw.event_timestamp < nb["cutoff"]).count()
    assert nb["raw_first_count"] == on_time < nb["EVENTS"]
    # one training row per label row, split by time
    assert nb["training"].to_spark().count() == len(labels)
    assert nb["train"].count() + nb["test"].count() == len(labels)
    # the incremental run is a later Delta version that added rows
    first, later = nb["backfill"][SPEND].table_version, nb["incremental"].table_version
    assert later > first
    assert [v["version"] for v in nb["tx_versions"][:2]] == [later, first]
    assert nb["changes"].to_dict()["added"] > 0
    # time travel: features as each version of the table held them at `now`
    for frame, version in ((nb["as_first"], first), (nb["as_latest"], later)):
        table = store.read_view(SPEND, as_of_version=version)
        assert len(frame) == 5
        for row in frame.itertuples():
            want = _latest(table, row.customer_id, nb["now"])
            assert row.total_spent_30d == pytest.approx(want["total_spent_30d"])
            assert row.transaction_count_30d == want["transaction_count_30d"]


def _check_training(nb: dict[str, Any], label_rows: int) -> None:
    store, fs = nb["store"], nb["fs"]
    assert fs.view_versions[SPEND] == store.list_versions(SPEND)[0]["version"]
    assert len(nb["pdf"]) == nb["labels"].count() == label_rows
    assert nb["ts"].inputs and nb["ts"].mlflow_run_id == nb["run_id"]
    scored = nb["scored"].toPandas()
    assert len(scored) == label_rows
    assert set(scored["prediction"]) <= {0.0, 1.0}
    assert nb["again"].entity_rows == label_rows
    assert nb["run_id"] in [r["run_id"] for r in nb["users"]]


def _check_online(nb: dict[str, Any]) -> None:
    store, customers = nb["store"], nb["customers"]
    assert {r.mode for r in nb["full"].values()} == {"full"}
    assert nb["full"][SPEND].keys_written > 0
    inc, mat = nb["incremental"], nb["materialized"]
    assert inc.mode == "incremental"
    assert inc.version == mat.table_version and inc.previous_version < inc.version
    assert inc.keys_written >= 3  # the three customers with new transactions
    # online values are the latest rows of the feature tables
    spend, profile = store.read_view(SPEND), store.read_view(PROFILE)
    after, now = nb["after"], datetime.now(UTC)
    assert after["customer_id"] == customers
    for i, c in enumerate(customers):
        row = _latest(spend, c, now)
        assert after["total_spent_30d"][i] == pytest.approx(row["total_spent_30d"])
        assert after["transaction_count_30d"][i] == row["transaction_count_30d"]
        assert after["age"][i] == _latest(profile, c)["age"]
    # the new transactions (250 each and up) raised the spend of customers 0-2
    for i in range(3):
        assert after["total_spent_30d"][i] >= nb["before"]["total_spent_30d"][i] + 250
    # through the feature set, a value older than the 1d cache_ttl is not served
    by_set = nb["by_set_dict"]
    for i, c in enumerate(customers):
        for name, table in (("total_spent_30d", spend), ("age", profile)):
            ts = _latest(table, c, now)["feature_timestamp"].replace(tzinfo=UTC)
            if abs((now - ts) - timedelta(days=1)) < timedelta(minutes=10):
                continue  # at the edge of the cache_ttl: either answer is right
            if now - ts < timedelta(days=1):
                assert by_set[name][i] == after[name][i]
                assert by_set[f"{name}__status"][i] == "PRESENT"
            else:
                assert by_set[name][i] is None
                assert by_set[f"{name}__status"][i] == "OUTSIDE_MAX_AGE"
    # the HTTP answer is what get_online_features returns
    assert nb["http_status"] == 200 and nb["health"]["status"] == "ok"
    direct = store.get_online_features(nb["features"], nb["request"]["entity_rows"]).to_dict()
    assert nb["http_table"] == direct


def _check_quality(nb: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    store = nb["store"]
    assert nb["report"].success and len(nb["report"].results) == 2
    table_rows = store.read_view(SPEND).count()
    latest = nb["stats"][nb["latest_version"]]
    assert latest.table_version == nb["latest_version"]
    assert latest["transaction_count_30d"].count == table_rows
    # drift: p-values are probabilities; the flag is the p-value below the threshold
    drift = nb["drift"]
    assert drift.method == "ks" and drift.threshold == 0.05
    assert set(nb["drift_table"]["column"]) >= {"total_spent_30d", "transaction_count_30d"}
    for d in drift.columns.values():
        assert 0.0 <= d.p_value <= 1.0
        assert d.drifted == (d.p_value < drift.threshold)
        assert d.reference_count > 0 and d.current_count > 0
    # monitoring: one check of the view, recorded, its alerts sent to the log channel
    (check,) = nb["checks"]
    assert check.view == SPEND and check.table_version == nb["latest_version"]
    assert check.baseline_version == nb["previous_version"] < nb["latest_version"]
    assert any(a.metric == "row_count" for a in check.alerts)
    assert nb["history"].count() >= 1
    logged = [r.getMessage() for r in caplog.records if r.name == "fstore_spark.quality"]
    for alert in check.alerts:
        assert any(alert.message in m for m in logged), alert.message


def _check_ab_test(nb: dict[str, Any]) -> None:
    results, table = nb["results"], nb["results_table"]
    assert set(table["variant"]) == {"control", "treatment"}
    assert (table["rows"] > 0).all()
    rows = sum(results.counts[v]["rows"] for v in ("control", "treatment"))
    assert 0 < rows <= len(nb["requests"])
    assert set(table["metric"]) >= {"auc", "precision", "recall"}
