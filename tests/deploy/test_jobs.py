"""spark-submit jobs run end to end against a project config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fstore_spark.lakehouse.tables import read_feature_table
from fstore_spark.store import FeatureStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_spark_submit_compute_features(spark, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    cfg_file = conf / "feature_store.yaml"
    cfg_file.write_text(
        "project: jobs\n"
        "lakehouse:\n  root: ../lake\n"
        f"repo_path: {ROOT / 'feature_repo'}\n"
        # the config asks for local[2]; the job is submitted to local[1], and the launcher wins
        "spark:\n  master: local[2]\n  shuffle_partitions: 2\n"
        "  options:\n    spark.ui.showConsoleProgress: 'false'\n"
    )
    store = FeatureStore(config=cfg_file, spark=spark)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (f"customer_{i % 5}", t0 + timedelta(hours=7 * i), t0 + timedelta(hours=7 * i), float(i))
        for i in range(100)
    ]
    (
        spark.createDataFrame(
            rows,
            "customer_id string, event_timestamp timestamp, created_at timestamp, amount double",
        )
        .write.format("delta")
        .save(store.table_path("raw/customer_transactions"))
    )
    store.apply()
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYSPARK_PYTHON": sys.executable}
    cmd = [
        str(spark_submit),
        "--master",
        "local[1]",
        str(ROOT / "jobs" / "compute_features.py"),
        "--config",
        str(cfg_file),
        "--view",
        "customer_transaction_features",
        "--start",
        "2024-01-01",
        "--end",
        "2024-02-15",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    # spark-submit merges the Python driver's stderr into its stdout
    assert "compute_features: Spark master local[1]\n" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["view"] == "customer_transaction_features" and result["rows_written"] > 0
    table = read_feature_table(spark, store.config.project_root, "customer_transaction_features")
    assert table.count() == result["rows_written"]
    assert set(table.columns) >= {
        "customer_id",
        "feature_timestamp",
        "total_spent_30d",
        "created_timestamp",
    }
