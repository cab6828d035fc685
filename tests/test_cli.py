"""The ``fstore`` command line: options anywhere, fast one-line errors, ``init`` to materialize."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fstore_spark import __version__
from fstore_spark.cli import main as fstore


def _run(*args: str, cwd: Path | None = None) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "fstore_spark.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0


def test_version() -> None:
    code, out, _, _ = _run("--version")
    assert code == 0 and out.strip() == f"fstore, version {__version__}"


def test_a_bad_date_fails_fast_in_one_line_naming_the_option(tmp_path: Path) -> None:
    code, out, err, seconds = _run(
        "materialize", "v", "--start", "2024-13-01", "--end", "2024-02-01", cwd=tmp_path
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "'--start'" in err and "2024-13-01" in err, err
    assert "Traceback" not in err
    assert seconds < 2.0, seconds
    code, _, err, _ = _run("materialize", "v", "--start", "2024-03-01", "--end", "2024-02-01")
    assert code == 2 and "'--start'" in err and "after --end" in err


def test_options_go_before_or_after_the_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    for args in (["--config", missing, "plan"], ["plan", "--config", missing]):
        code, _, err, _ = _run(*args)
        assert code == 1, err
        assert err.startswith("fstore: error: ConfigError:") and err.count("\n") == 1
        assert "nope.yaml" in err and "Traceback" not in err
    code, _, err, _ = _run("plan", "--config", missing, "--debug")
    assert code == 1 and "Traceback" in err  # --debug shows where it failed


def test_a_monitoring_file_typo_fails_before_spark_with_a_hint(tmp_path: Path) -> None:
    rules = tmp_path / "monitoring.yaml"
    rules.write_text("views:\n  v:\n    rules:\n      - {metric: missing_values, thresold: 0.1}\n")
    code, _, err, seconds = _run("monitor", "--rules", str(rules), "--config", "missing.yaml")
    assert code == 1 and seconds < 2.0
    assert "unknown key 'thresold' (did you mean 'threshold'?)" in err
    assert err.count("\n") == 1


def test_keys_hash_needs_no_config(tmp_path: Path) -> None:
    code, out, _, _ = _run("keys", "hash", "abc", cwd=tmp_path)
    assert code == 0
    assert out.strip() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_init_apply_materialize_on_the_scaffold(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shop"
    t0 = time.perf_counter()
    assert fstore(["init", str(folder)]) == 0
    assert time.perf_counter() - t0 < 10
    assert "created conf/feature_store.yaml" in capsys.readouterr().out
    assert fstore(["init", str(folder)]) == 2  # never overwrites
    assert "already has" in capsys.readouterr().err

    monkeypatch.chdir(folder)  # the scaffold's config is found from its folder
    assert fstore(["apply"]) == 0
    assert "customer_spending" in capsys.readouterr().out
    assert fstore(["materialize", "customer_spending", "--start", "2024-01-01",
                   "--end", "2024-03-01", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["rows_written"] > 0

    # the values are the windows of the sample events (a pandas brute force on a sample)
    from fstore_spark.store import FeatureStore

    store = FeatureStore(config=folder / "conf" / "feature_store.yaml", spark=spark)
    table = store.read_view("customer_spending").toPandas()
    events = pd.read_parquet(folder / "data" / "lakehouse" / "shop" / "raw" / "transactions")
    events["event_timestamp"] = pd.to_datetime(events["event_timestamp"], utc=True)
    sample = table.sample(40, random_state=1)
    for row in sample.itertuples():
        t = pd.Timestamp(row.feature_timestamp).tz_localize("UTC")
        mine = events[events["customer_id"] == row.customer_id]
        in7 = mine[(mine["event_timestamp"] > t - pd.Timedelta(days=7))
                   & (mine["event_timestamp"] <= t)]  # fmt: skip
        in30 = mine[(mine["event_timestamp"] > t - pd.Timedelta(days=30))
                    & (mine["event_timestamp"] <= t)]  # fmt: skip
        assert row.transactions_30d == len(in30)
        assert row.spent_7d == pytest.approx(in7["amount"].sum()) or (
            len(in7) == 0 and pd.isna(row.spent_7d)
        )

    # a materialization from the shell: its steps with counts, and little else
    code, out, err, _ = _run(
        "materialize", "customer_spending", "--start", "2024-01-01", "--end", "2024-03-01",
        cwd=folder,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["rows_written"] == result["rows_written"]
    ours = [line for line in err.splitlines() if line.startswith("fstore: ")]
    others = [line for line in err.splitlines() if line.strip() and not line.startswith("fstore: ")]
    print("\n".join(others))
    assert len(others) <= 5, others
    assert any("reading the source" in line for line in ours)
    assert any(
        f"{result['rows_written']:,} rows written" in line and "Delta version" in line
        for line in ours
    ), ours
