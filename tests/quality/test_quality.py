"""Quality: expectations, statistics per version, drift tests, monitoring with alerts.

Oracles: pandas for validation counts and statistics, scipy on the same values for the KS and
chi-square tests, numpy for PSI; a real Delta feature table and a real HTTP webhook receiver
for the store-level checks.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from fstore_spark import DeltaSource, Entity, FeatureStore, FeatureStoreConfig, FeatureView, Field
from fstore_spark.errors import DefinitionError, ValidationError
from fstore_spark.quality import (
    MonitorRule,
    compute_statistics,
    detect_drift,
    expect_between,
    expect_in_set,
    expect_match,
    expect_not_null,
    expect_row_count_between,
    expect_unique,
    monitoring_table_path,
    split_valid,
    statistics_table_path,
    validate,
)

SCHEMA = "k string, x double, s string"

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", None]),
        st.one_of(
            st.none(),
            st.just(float("nan")),
            st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda v: round(v, 1)),
        ),
        st.sampled_from(["apple", "avocado", "banana", "cherry", None]),
    ),
    min_size=0,
    max_size=40,
)


def _oracle(pdf: pd.DataFrame, lo: float, hi: float, mostly: float) -> dict[str, tuple]:
    """(evaluated, unexpected, success) per rule, computed with pandas."""
    out = {}
    n = len(pdf)
    x_null = pdf["x"].isna() & ~pdf["x"].apply(lambda v: isinstance(v, float) and math.isnan(v))
    # pandas folds None into NaN for floats: keep the distinction from the raw objects
    x_null = pdf["x"].apply(lambda v: v is None)
    bad = int(x_null.sum())
    out["not_null"] = (n, bad, n == 0 or (n - bad) >= mostly * n - 1e-9)
    xs = pdf["x"][~x_null]
    in_range = xs.apply(lambda v: (not math.isnan(v)) and lo <= v <= hi)
    ev, bad = len(xs), int((~in_range).sum())
    out["between"] = (ev, bad, ev == 0 or (ev - bad) >= mostly * ev - 1e-9)
    ss = pdf["s"][pdf["s"].notna()]
    ev, bad = len(ss), int((~ss.isin(["apple", "banana"])).sum())
    out["in_set"] = (ev, bad, bad == 0)
    bad = int((~ss.str.contains("^a")).sum())
    out["match"] = (ev, bad, bad == 0)
    ks = pdf["k"][pdf["k"].notna()]
    counts = ks.value_counts()
    bad = int(counts[counts > 1].sum())
    out["unique"] = (len(ks), bad, bad == 0)
    return out


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=rows_strategy,
    bounds=st.tuples(st.integers(-5, 5), st.integers(0, 5)),
    mostly=st.sampled_from([1.0, 0.9, 0.5]),
)
def test_validate_matches_pandas(spark, rows, bounds, mostly) -> None:
    lo, hi = float(bounds[0]), float(bounds[0] + bounds[1])
    df = spark.createDataFrame(rows, SCHEMA)
    pdf = pd.DataFrame(rows, columns=["k", "x", "s"], dtype=object)
    rules = [
        expect_not_null("x", mostly=mostly),
        expect_between("x", lo, hi, mostly=mostly),
        expect_in_set("s", ["apple", "banana"]),
        expect_match("s", "^a"),
        expect_unique("k"),
        expect_row_count_between(1, 30),
    ]
    report = validate(df, rules, examples=3)
    want = _oracle(pdf, lo, hi, mostly)
    for r, kind in zip(report.results, want, strict=False):
        assert (r.evaluated, r.unexpected, r.success) == want[kind], (kind, r)
        assert len(r.examples) == min(3, r.unexpected if kind != "unique" else len(r.examples))
    count = report.results[-1]
    assert count.observed == len(rows) and count.success == (1 <= len(rows) <= 30)
    assert report.success == all(r.success for r in report.results)

    good, bad = split_valid(df, rules[:4])
    bad_rows = bad.collect()  # one job for both the count and the reasons of the rejected rows
    assert good.count() + len(bad_rows) == len(rows)
    got = sorted(len(r["_fs_reasons"]) for r in bad_rows)
    per_row = []
    for _k, x, s in rows:
        n = 0
        n += x is None
        n += x is not None and not (not math.isnan(x) and lo <= x <= hi)
        n += s is not None and s not in ("apple", "banana")
        n += s is not None and not s.startswith("a")
        if n:
            per_row.append(n)
    assert got == sorted(per_row)


def test_validation_errors_are_clear(spark) -> None:
    df = spark.createDataFrame([("a", 1.0, "x")], SCHEMA)
    with pytest.raises(DefinitionError, match="not in the data; columns: k, x, s"):
        validate(df, [expect_not_null("amount")])
    with pytest.raises(DefinitionError, match="mostly"):
        expect_not_null("x", mostly=0)
    with pytest.raises(DefinitionError, match="above max_value"):
        expect_between("x", 3, 1)
    with pytest.raises(DefinitionError, match="table-level"):
        split_valid(df, [expect_unique("k")])
    nan = spark.createDataFrame([("a", float("nan"), "x"), ("b", 5.0, None)], SCHEMA)
    lower_only = validate(nan, [expect_between("x", 0)]).results[0]
    assert (lower_only.evaluated, lower_only.unexpected) == (2, 1)  # NaN is outside [0, inf)
    report = validate(df, [expect_between("x", 2, 3)])
    with pytest.raises(ValidationError, match=r"between\(x, 2, 3\): 1 of 1 rows"):
        report.raise_on_failure()


def test_statistics_match_pandas(spark) -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.1] = np.nan
    rows = [
        (
            None if i % 17 == 0 else float(x[i]),
            int(rng.integers(0, 50)),
            ["red", "green", "blue", "blue"][i % 4] if i % 9 else None,
        )
        for i in range(n)
    ]
    df = spark.createDataFrame(rows, "x double, n long, c string")
    s = compute_statistics(df, quantiles=(0.1, 0.5, 0.9))
    xs = pd.Series([r[0] for r in rows], dtype="float64")
    finite = xs.dropna()
    nulls = sum(r[0] is None for r in rows)
    assert s.rows == n
    assert s["x"].nulls == nulls and s["x"].nans == int(xs.isna().sum()) - nulls
    assert s["x"].mean == pytest.approx(finite.mean(), rel=1e-9)
    assert s["x"].stddev == pytest.approx(finite.std(ddof=1), rel=1e-9)
    assert (s["x"].min, s["x"].max) == (finite.min(), finite.max())
    for q, v in s["x"].quantiles.items():  # rank error within 1/1000 of the rows
        rank = (finite <= v).mean()
        assert abs(rank - float(q)) <= 0.01, (q, v, rank)
    ns = pd.Series([r[1] for r in rows])
    assert s["n"].mean == pytest.approx(ns.mean())
    assert s["n"].distinct == pytest.approx(ns.nunique(), rel=0.03)  # HyperLogLog++, rsd 1%
    cs = pd.Series([r[2] for r in rows]).dropna().value_counts()
    assert s["c"].top_values == sorted(cs.items(), key=lambda kv: (-kv[1], kv[0]))
    assert s["c"].nulls == sum(r[2] is None for r in rows)
    assert s["c"].null_fraction == pytest.approx(s["c"].nulls / n)
    back = type(s["x"]).from_dict(json.loads(json.dumps(s["x"].to_dict())))
    assert back == s["x"]


def test_drift_tests_equal_scipy_on_the_same_values(spark) -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 3_000)
    same = rng.normal(0, 1, 2_500)
    moved = rng.normal(0.3, 1, 2_500)
    cats_ref = rng.choice(["a", "b", "c", "d"], 3_000, p=[0.4, 0.3, 0.2, 0.1])
    cats_moved = rng.choice(["a", "b", "c", "d", "e"], 2_500, p=[0.2, 0.3, 0.2, 0.2, 0.1])

    def frame(x, c):
        return spark.createDataFrame(
            [(float(a), str(b)) for a, b in zip(x, c, strict=True)], "x double, c string"
        )

    r_df = frame(ref, cats_ref)
    same_df = frame(same, cats_ref[:2_500])
    moved_df = frame(moved, cats_moved)

    stable = detect_drift(r_df, same_df)
    assert stable.drifted_columns == []
    report = detect_drift(r_df, moved_df, method="ks_test", threshold=0.05)
    assert report.drifted_columns == ["x", "c"]
    want = sst.ks_2samp(ref, moved)
    assert report["x"].statistic == pytest.approx(want.statistic, abs=1e-12)
    assert report["x"].p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert not report["x"].sampled
    # PSI over the reference's deciles, recomputed with numpy on the same cut points
    edges = sorted(set(r_df.approxQuantile("x", [i / 10 for i in range(1, 10)], 1e-3)))
    rc = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    cc = np.bincount(np.searchsorted(edges, moved, side="left"), minlength=len(edges) + 1)
    p, q = np.maximum(rc / rc.sum(), 1e-4), np.maximum(cc / cc.sum(), 1e-4)
    assert report["x"].psi == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-9)
    # chi-square on the category counts (top categories of the reference + the rest)
    cats = ["a", "b", "c", "d"]
    table = [
        [int((cats_ref == k).sum()) for k in cats] + [0],
        [int((cats_moved == k).sum()) for k in cats] + [int((cats_moved == "e").sum())],
    ]
    chi = sst.chi2_contingency(table)
    assert report["c"].statistic == pytest.approx(chi.statistic, rel=1e-9)
    assert report["c"].p_value == pytest.approx(chi.pvalue, rel=1e-9, abs=1e-300)
    # PSI method flags the large shift of the categories; the sample cap bounds the KS test
    psi = detect_drift(r_df, moved_df, method="psi", sample_size=500)
    assert psi["c"].drifted and psi["x"].sampled and psi.method == "psi"
    with pytest.raises(DefinitionError, match="unknown drift method"):
        detect_drift(r_df, moved_df, method="wasserstein")


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _open_store(spark, root: Path) -> FeatureStore:
    return FeatureStore(config=FeatureStoreConfig.for_local(root, project="q"), spark=spark)


def _profile_store(spark, root: Path) -> FeatureStore:
    store = _open_store(spark, root)
    src = DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts")
    store.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            FeatureView(
                name="profile",
                entities=["customer"],
                source=src,
                ttl="60d",
                features=[
                    Field(name="income", dtype="float64"),
                    Field(name="city", dtype="string"),
                ],
            ),
        ]
    )
    return store


@pytest.fixture(scope="module")
def _profile_template(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lakehouse as ``_profile_store`` leaves it (definitions applied), made once.

    ``apply`` costs seconds; each test copies it (Delta tables hold relative paths).
    """
    root = tmp_path_factory.mktemp("quality_template")
    _profile_store(spark, root)
    return root


def _profile_store_copy(spark, template: Path, root: Path) -> FeatureStore:
    """``_profile_store(spark, root)`` from a copy of the template: a store of its own."""
    shutil.copytree(template, root, dirs_exist_ok=True)
    return _open_store(spark, root)


def _write_profiles(spark, store: FeatureStore, seed: int, shift: float, null_every: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [
        (
            f"c{i}",
            T0 + timedelta(hours=i),
            None if null_every and i % null_every == 0 else float(rng.normal(50 + shift, 5)),
            ["lisbon", "porto", "faro"][i % 3],
        )
        for i in range(600)
    ]
    spark.createDataFrame(
        rows, "customer_id string, ts timestamp, income double, city string"
    ).write.format("delta").mode("overwrite").save(store.table_path("raw/profiles"))


def test_statistics_per_version_and_monitoring_alerts(
    spark, lakehouse: Path, _profile_template: Path, webhook_receiver, smtp_receiver
) -> None:
    from pyspark.sql import functions as F

    store = _profile_store_copy(spark, _profile_template, lakehouse)
    _write_profiles(spark, store, seed=1, shift=0.0, null_every=0)
    end = T0 + timedelta(days=40)
    v1 = store.materialize("profile", T0, end).table_version
    _write_profiles(spark, store, seed=2, shift=8.0, null_every=10)
    v2 = store.materialize("profile", T0, end).table_version
    assert v1 is not None and v2 is not None and v2 > v1

    s1 = store.feature_statistics("profile", version=v1)
    s2 = store.feature_statistics("profile")  # latest = v2
    assert s1.table_version == v1 and s2.table_version == v2
    assert s1["income"].nulls == 0 and s2["income"].nulls == 60
    # the latest rows, read once: their mean income, and the rows above 55 (used further down)
    latest = (
        store.read_view("profile")
        .agg(F.avg("income"), F.count(F.when(F.col("income") > 55, 1)))
        .first()
    )
    assert s2["income"].mean == pytest.approx(latest[0])
    again = store.feature_statistics("profile", version=v1)  # read back, not recomputed
    assert again.computed_at == s1.computed_at and again["income"] == s1["income"]
    kept = spark.read.format("delta").load(
        statistics_table_path(store.config.project_root, "profile")
    )
    assert sorted(r[0] for r in kept.select("table_version").collect()) == [v1, v2]

    drift = store.detect_drift("profile", baseline_version=v1)
    assert drift.drifted_columns == ["income"]  # the city mix did not change

    seen = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        rules = [
            MonitorRule("missing_values", 0.05, severity="critical"),
            MonitorRule("drift_psi", 0.2),
            MonitorRule("row_count", 1_000),
            MonitorRule("freshness_hours", 24 * 365 * 10),
            MonitorRule("expectation", expectations=(expect_between("income", 0, 55),)),
        ]
        now = T0 + timedelta(days=41)
        result = store.monitor(
            "profile", rules, baseline_version=v1, channels=[seen.append, url], now=now
        )
    finally:
        server.shutdown()
    metrics = sorted((a.metric, a.column) for a in result.alerts)
    assert metrics == [
        ("drift_psi", "income"),
        ("expectation", "income"),
        ("missing_values", "income"),
        ("row_count", None),
    ]
    failed = next(a for a in result.alerts if a.metric == "expectation")
    want_bad = latest[1]  # store.read_view("profile").where("income > 55").count()
    assert f"{want_bad} of 540 rows unexpected" in failed.message
    crit = next(a for a in result.alerts if a.metric == "missing_values")
    assert crit.severity == "critical" and crit.value == pytest.approx(0.1)
    assert "view 'profile' version" in crit.message and "above the threshold" in crit.message
    assert seen == result.alerts
    assert sorted(h["metric"] for h in _Hook.received) == sorted(a.metric for a in result.alerts)
    assert all("text" in h for h in _Hook.received) and result.delivery_errors == []

    # channels by name, set up in the config: Slack's message format to a local webhook and
    # an email to a local SMTP server; a dead channel is reported, the others still get the
    # alerts, the check is recorded
    seen.clear()
    alerts = {
        "slack": {"webhook_url": f"{webhook_receiver.url}/services/T/B/x"},
        "email": {"host": smtp_receiver.host, "port": smtp_receiver.port, "recipients": ["a@b.c"]},
    }
    config = FeatureStoreConfig.for_local(lakehouse, project="q", alerts=alerts)
    result2 = FeatureStore(config=config, spark=spark).monitor(
        "profile",
        rules[:1],
        channels=["slack", "email", "http://127.0.0.1:9/none", seen.append],
        now=now,
    )
    assert len(seen) == 1 and len(result2.delivery_errors) == 1
    [slack] = webhook_receiver.received
    assert slack["body"]["text"].endswith(result2.alerts[0].message)
    assert slack["body"]["blocks"][0]["text"]["text"] == "fstore critical: missing_values on income"
    [mail] = smtp_receiver.messages
    assert mail["to"] == ["a@b.c"] and mail["body"].startswith(result2.alerts[0].message)
    assert mail["subject"].startswith("[fstore critical] missing_values: view 'profile' version")
    log = spark.read.format("delta").load(
        monitoring_table_path(store.config.project_root, "profile")
    )
    assert sorted(r["alert_count"] for r in log.collect()) == [1, 4]
    with pytest.raises(ValidationError, match="baseline"):
        store.monitor("profile", [MonitorRule("drift_psi", 0.2)])


def test_monitoring_job_and_plan_file(
    spark, lakehouse: Path, tmp_path: Path, capsys, _profile_template: Path
) -> None:
    import importlib.util

    store = _profile_store_copy(spark, _profile_template, lakehouse)
    _write_profiles(spark, store, seed=1, shift=0.0, null_every=4)
    store.materialize("profile", T0, T0 + timedelta(days=40))
    cfg = tmp_path / "feature_store.yaml"
    cfg.write_text(f"project: q\nlakehouse:\n  root: {lakehouse}\n")
    plan = tmp_path / "monitoring.yaml"
    plan.write_text(
        "views:\n"
        "  profile:\n"
        "    channels: [log]\n"
        "    expectations:\n"
        "      income: {min_value: 0, null_percentage: 0.1}\n"
        "    rules:\n"
        "      - {metric: missing_values, threshold: 0.2, severity: critical}\n"
    )
    spec = importlib.util.spec_from_file_location(
        "monitor_features", Path(__file__).parents[2] / "jobs" / "monitor_features.py"
    )
    assert spec is not None and spec.loader is not None
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(["--config", str(cfg), "--rules", str(plan)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # 25% nulls: the critical missing-values rule and the expectation (10% allowed) both fire
    assert code == 3 and len(out) == 1
    assert sorted(a["metric"] for a in out[0]["alerts"]) == ["expectation", "missing_values"]
    assert job.main(["--config", str(cfg), "--rules", str(plan), "--fail-on", "never"]) == 0
    capsys.readouterr()
    from fstore_spark.cli import main as fstore

    assert fstore(["--config", str(cfg), "monitor", "--rules", str(plan), "--view", "profile"]) == 3
    assert json.loads(capsys.readouterr().out)["view"] == "profile"
    assert fstore(["--config", str(cfg), "stats", "profile"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["columns"]["income"]["nulls"] == 150 and printed["rows"] == 600
    assert fstore(["--config", str(cfg), "monitor", "--rules", str(plan), "--view", "nope"]) == 1
    plan.write_text("views:\n  profile:\n    rules:\n      - {metric: nulls, threshold: 1}\n")
    assert job.main(["--config", str(cfg), "--rules", str(plan)]) == 1
    assert "unknown monitor metric 'nulls'" in capsys.readouterr().err
