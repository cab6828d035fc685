"""The README's example: the same text as ``examples/quickstart.py``, and that program runs.

The program runs in this process (the session's Spark) against a throwaway lakehouse, Redis
database and MLflow store; its results are then checked against the feature tables.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "quickstart.py"


def _excerpt() -> str:
    text = EXAMPLE.read_text()
    found = re.search(r"# --8<-- \[start:readme\]\n(.*?)# --8<-- \[end:readme\]", text, re.S)
    assert found is not None
    return found.group(1)


def test_the_readme_shows_the_example_unchanged() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks and blocks[0] == _excerpt()


def test_the_example_runs_and_its_results_hold(
    spark, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    cfg = conf / "feature_store.yaml"
    cfg.write_text(
        "project: quickstart\n"
        "lakehouse:\n  root: ../lake\n"
        f"online_store:\n  url: {redis_url}\n"
        "mlflow:\n  tracking_uri: sqlite:///../mlflow.db\n  experiment: quickstart\n"
        f"repo_path: {ROOT / 'feature_repo'}\n"
    )
    monkeypatch.setenv("FSTORE_CONFIG", str(cfg))
    monkeypatch.chdir(tmp_path)
    import mlflow

    before = mlflow.get_tracking_uri()
    try:
        ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        mlflow.set_tracking_uri(before)
    store, labels = ns["store"], ns["labels_df"]

    # training sets: one row per label, split by time
    assert ns["training"].to_spark().count() == len(labels)
    assert ns["train"].count() + ns["test"].count() == len(labels)
    assert ns["first"].to_spark().count() == len(labels)
    # every label's customer has a profile as of the label: the model is fit on real ages
    ages = ns["ts"].to_pandas()["age"]
    assert len(ages) == len(labels) and ages.notna().all(), ages.isna().sum()
    # lineage: the run's training set was rebuilt with the same fingerprint; all rows scored
    assert ns["again"].entity_rows == len(labels)
    assert ns["scored"].count() == len(labels)
    # the rerun of March wrote the same rows again: nothing changed between versions 0 and 1
    diff = ns["changes"].to_dict()
    assert diff["changed"] == 0 and diff["added"] == 0 and diff["removed"] == 0, diff
    # online: the value served is the latest row of the feature table for that customer
    table = store.read_view("customer_transaction_features").where("customer_id = 'customer_12'")
    latest = table.orderBy("feature_timestamp", ascending=False).first()
    assert ns["online"]["total_spent_30d"] == [pytest.approx(latest["total_spent_30d"])]
    # quality
    assert ns["report"].success
    assert ns["stats"]["total_spent_30d"].count > 0
    assert set(ns["drift"].to_pandas()["column"]) >= {"total_spent_30d"}
    assert ns["check"].table_version is not None
