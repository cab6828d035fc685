"""Catalog tables: with ``lakehouse.catalog``/``schema`` set, the store's tables are catalog
tables, and a second process on the same metastore reads them by name.

Two processes run :mod:`catalog_flow` one after the other against one persistent Hive metastore
(Derby allows one process at a time): the first applies, backfills and builds a training set;
the second, with a new session, reads the registry and feature tables by name and builds the
same training set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import deploy_flow as flow
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _step(step: str, d: Path, redis_url: str) -> dict:
    """Run one step of the flow in its own Python process; its JSON result."""
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    env["PYTHONPATH"] = f"{ROOT}:{HERE}"
    first = flow.first_day().isoformat()
    cmd = [sys.executable, str(HERE / "catalog_flow.py"), step, str(d), first, redis_url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=d, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((d / f"{step}.json").read_text())


@pytest.mark.slow
def test_a_second_process_reads_catalog_tables_by_name(tmp_path: Path, redis_url: str) -> None:
    wrote = _step("write", tmp_path, redis_url)
    read = _step("read", tmp_path, redis_url)

    own = {
        "flow_features_txn",
        "flow_features_profile",
        "flow_tiles_txn",
        "flow_registry",
        "flow_statistics_txn",
    }
    assert own <= set(wrote["tables"]), wrote["tables"]
    assert read["tables"] == wrote["tables"]
    # the store's tables are in the catalog, not under the project root: only the sources are
    assert wrote["folders"] == read["folders"] == ["raw"]
    assert read["views"] == ["profile", "txn"]
    assert read["txn_rows"] == wrote["txn_rows"] > 0
    assert len(read["training"]) == 30
    assert read["training"] == wrote["training"]
    assert any(r["amount_3d"] is not None for r in read["training"])
    # backfill, incremental: two versions, read from the catalog table's history
    assert [v for v, _ in read["versions"]] == [1, 0]
    assert read["versions"] == wrote["versions"] and read["diff"] == wrote["diff"]
    assert read["diff"]["added"] > 0
    assert read["statistics_rows"] == wrote["statistics_rows"] == read["txn_rows"]
    # the sync read the catalog table's change feed: every customer is served
    assert read["online"] == wrote["online"]
    assert all(n is not None for n in read["online"]["n_life"]), read["online"]
