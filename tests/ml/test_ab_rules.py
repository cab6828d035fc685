"""A/B test definitions: validation, deterministic assignment, comparisons (no Spark)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from fstore_spark.errors import ExperimentError
from fstore_spark.ml.ab_stats import compare_metric, decide_winner, srm_p_value
from fstore_spark.ml.ab_test import ABTest

FS = {"control": "fraud_v1", "treatment": "fraud_v2"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"feature_sets": {"a": "x"}}, "at least two variants"),
        ({"metrics": ["auc", "lift"]}, "unknown metric"),
        ({"metrics": []}, "unknown metric"),
        ({"metrics": ["auc", "auc"]}, "repeat"),
        ({"duration": "7x"}, "duration"),
        ({"traffic": {"control": 0.5, "treatment": 0.6}}, "sum to 1"),
        ({"traffic": {"control": 1.0}}, "traffic names"),
        ({"traffic": {"control": 1.0, "treatment": 0.0}}, "positive"),
        ({"models": {"control": "models:/m/1"}}, "one model per variant"),
        ({"control": "other"}, "not a variant"),
        ({"alpha": 1.5}, "alpha"),
        ({"name": "bad name"}, "invalid A/B test name"),
    ],
)
def test_invalid_tests_are_rejected(kwargs: dict, match: str) -> None:
    args = {"name": "t", "feature_sets": FS, **kwargs}
    with pytest.raises(ExperimentError, match=match):
        ABTest(**args)


def test_round_trip_and_defaults() -> None:
    t = ABTest(name="t", feature_sets=FS, duration="7d", started_at="2024-01-01T00:00:00")
    assert t.control == "control" and t.traffic == {"control": 0.5, "treatment": 0.5}
    assert t.ends_at == datetime(2024, 1, 8, tzinfo=UTC)
    assert ABTest.from_dict(t.to_dict()) == t
    assert t.is_complete(datetime(2024, 1, 8, tzinfo=UTC))
    assert not t.is_complete(datetime(2024, 1, 7, 23, tzinfo=UTC))
    assert t.definition() == {k: v for k, v in t.to_dict().items() if k != "started_at"}


def test_assignment_is_stable_follows_traffic_and_is_salted_by_the_name() -> None:
    keys = [f"c{i}" for i in range(20_000)]
    t = ABTest(
        name="t1",
        feature_sets={"a": "x", "b": "y", "c": "z"},
        traffic={"a": 0.2, "b": 0.3, "c": 0.5},
    )
    got = [t.assign(k) for k in keys]
    assert got == [t.assign(k) for k in keys]  # deterministic
    observed = [got.count(v) for v in "abc"]
    assert stats.chisquare(observed, [0.2 * 20_000, 0.3 * 20_000, 0.5 * 20_000]).pvalue > 1e-4
    # another test name assigns independently of the first
    u = ABTest(name="t2", feature_sets={"a": "x", "b": "y"})
    other = [u.assign(k) for k in keys]
    table = np.zeros((3, 2))
    for g, o in zip(got, other, strict=True):
        table["abc".index(g), "ab".index(o)] += 1
    assert stats.chi2_contingency(table).pvalue > 1e-4
    # integers hash as their decimal text; booleans and floats are refused
    assert t.assign(42) == t.assign("42")
    assert t.assign(("c1", 7)) == t.assign(["c1", 7])
    with pytest.raises(ExperimentError, match="strings or integers"):
        t.assign(1.5)
    with pytest.raises(ExperimentError, match="strings or integers"):
        t.assign(True)


def _stats(rows: int, npos: int, tp: int, fp: int, fn: int, **moments: float) -> dict:
    return {"rows": rows, "npos": npos, "tp": tp, "fp": fp, "fn": fn, "y_s": npos, **moments}


def test_proportion_p_values_equal_the_chi_square_test_of_the_2x2_table() -> None:
    s1 = _stats(1000, 400, 300, 60, 100)  # precision 300/360, recall 300/400
    s0 = _stats(1200, 450, 290, 120, 160)
    for metric, (x1, n1, x0, n0) in {
        "precision": (300, 360, 290, 410),
        "recall": (300, 400, 290, 450),
        "accuracy": (1000 - 160, 1000, 1200 - 280, 1200),
        "positive_rate": (400, 1000, 450, 1200),
    }.items():
        c = compare_metric(metric, "b", "a", s1, s0, {}, 0.05)
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        want = stats.chi2_contingency(table, correction=False).pvalue
        assert c.p_value == pytest.approx(want, rel=1e-9), metric
        assert c.difference == pytest.approx(x1 / n1 - x0 / n0)
        assert c.ci_low < c.difference < c.ci_high


def test_welch_p_values_equal_scipy_on_the_raw_values() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 0.2, 500), rng.gamma(2.1, 0.2, 700)

    def moments(x: np.ndarray) -> dict:
        return {"ll_s": x.sum(), "ll_ss": (x * x).sum()}

    s1 = _stats(len(a), 0, 0, 0, 0, **moments(a))
    s0 = _stats(len(b), 0, 0, 0, 0, **moments(b))
    c = compare_metric("log_loss", "b", "a", s1, s0, {}, 0.05)
    want = stats.ttest_ind(a, b, equal_var=False)
    assert c.p_value == pytest.approx(want.pvalue, rel=1e-6)
    assert c.difference == pytest.approx(a.mean() - b.mean())
    ci = want.confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-6)
    assert c.better is bool(a.mean() < b.mean())  # lower log loss is better


def test_auc_comparison_sample_ratio_and_winner() -> None:
    big = compare_metric(
        "auc",
        "b",
        "a",
        _stats(4000, 2000, 0, 0, 0),
        _stats(4000, 2000, 0, 0, 0),
        {"b": 0.80, "a": 0.70},
        0.05,
    )
    assert big.significant and big.better and big.p_value < 1e-6
    same = compare_metric(
        "auc",
        "b",
        "a",
        _stats(200, 100, 0, 0, 0),
        _stats(200, 100, 0, 0, 0),
        {"b": 0.71, "a": 0.70},
        0.05,
    )
    assert not same.significant and 0.5 < same.p_value <= 1.0
    assert decide_winner("auc", "a", [big]) == "b" and decide_winner("auc", "a", [same]) is None
    worse = compare_metric(
        "auc",
        "b",
        "a",
        _stats(4000, 2000, 0, 0, 0),
        _stats(4000, 2000, 0, 0, 0),
        {"b": 0.60, "a": 0.70},
        0.05,
    )
    assert decide_winner("auc", "a", [worse]) == "a"
    t = ABTest(name="t", feature_sets=FS)
    assert srm_p_value(t, {}, {"control": 1000, "treatment": 1300}) < 0.001
    assert srm_p_value(t, {}, {"control": 1000, "treatment": 1020}) > 0.5
    assert t.started_at is None and t.ends_at is None and timedelta(days=7) == t.duration
