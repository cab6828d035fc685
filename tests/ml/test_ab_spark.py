"""A/B test metrics and assignment in Spark, against scikit-learn and the Python assignment."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fstore_spark.errors import ExperimentError
from fstore_spark.ml.ab_metrics import evaluate_variants
from fstore_spark.ml.ab_test import ABTest, variant_column

TEST = ABTest(
    name="exp1",
    feature_sets={"a": "fs_a", "b": "fs_b", "c": "fs_c"},
    traffic={"a": 0.5, "b": 0.25, "c": 0.25},
    metrics=[
        "auc",
        "precision",
        "recall",
        "accuracy",
        "f1",
        "log_loss",
        "brier",
        "rmse",
        "mae",
        "positive_rate",
        "mean_prediction",
    ],
    threshold=0.5,
)


def test_spark_assignment_equals_python(spark) -> None:
    rng = np.random.default_rng(0)
    n = 3000
    pdf = pd.DataFrame(
        {
            "customer_id": [f"cust-{i}" if i % 97 else None for i in range(n)],
            "store_id": rng.integers(-5, 10**12, n),
        }
    )
    df = spark.createDataFrame(
        pdf.astype(object).where(pdf.notna(), None), "customer_id string, store_id bigint"
    )
    got = (
        df.withColumn("v1", variant_column(TEST, ["customer_id"]))
        .withColumn("v2", variant_column(TEST, ["customer_id", "store_id"]))
        .withColumn("v3", variant_column(TEST, ["store_id"]))
        .toPandas()
    )
    for row in got.itertuples():
        if row.customer_id is None:
            assert row.v1 is None and row.v2 is None
        else:
            assert row.v1 == TEST.assign(row.customer_id)
            assert row.v2 == TEST.assign((row.customer_id, int(row.store_id)))
        assert row.v3 == TEST.assign(int(row.store_id))
    shares = got["v3"].value_counts(normalize=True)
    assert abs(shares["a"] - 0.5) < 0.05 and abs(shares["b"] - 0.25) < 0.05


def _reference(pdf: pd.DataFrame, thr: float) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    ok = pdf.dropna(subset=["variant", "label", "score"])
    for v, g in ok.groupby("variant"):
        y, p = g["label"].to_numpy(), g["score"].to_numpy()
        hat = (p >= thr).astype(int)
        clip = np.clip(p, 1e-15, 1 - 1e-15)
        r: dict[str, float | None] = {
            "auc": skm.roc_auc_score(y, p) if 0 < y.sum() < len(y) else None,
            "precision": skm.precision_score(y, hat, zero_division=np.nan),
            "recall": skm.recall_score(y, hat, zero_division=np.nan),
            "accuracy": skm.accuracy_score(y, hat),
            "f1": skm.f1_score(y, hat, zero_division=np.nan),
            "log_loss": float(np.mean(-(y * np.log(clip) + (1 - y) * np.log(1 - clip)))),
            "brier": float(np.mean((p - y) ** 2)),
            "rmse": math.sqrt(float(np.mean((p - y) ** 2))),
            "mae": float(np.mean(np.abs(p - y))),
            "positive_rate": float(y.mean()),
            "mean_prediction": float(p.mean()),
        }
        out[str(v)] = {k: (None if x is None or np.isnan(x) else float(x)) for k, x in r.items()}
    return out


rows = st.tuples(
    st.sampled_from(["a", "b", "c", None]),
    st.one_of(st.none(), st.sampled_from([0, 1])),
    st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.lists(rows, min_size=1, max_size=60))
def test_metrics_equal_sklearn(spark, data) -> None:
    """Ties (repeated scores, the threshold itself), nulls, one-class and empty variants."""
    pdf = pd.DataFrame(data, columns=["variant", "label", "score"])
    df = spark.createDataFrame(
        pdf.astype(object).where(pdf.notna(), None), "variant string, label int, score double"
    )
    res = evaluate_variants(df, TEST, label_column="label", prediction_column="score")
    want = _reference(pdf, TEST.threshold)
    for v in TEST.variants:
        if v not in want:
            assert res.counts[v]["rows"] == 0
            assert all(x is None for x in res.metrics[v].values())
            continue
        for m, x in want[v].items():
            got = res.metrics[v][m]
            if x is None:
                assert got is None, (v, m)
            else:
                assert got == pytest.approx(x, rel=1e-9, abs=1e-12), (v, m)
        usable = pdf.dropna()
        assert res.counts[v]["rows"] == int((usable["variant"] == v).sum())
        assert res.counts[v]["dropped_rows"] == int(
            ((pdf["variant"] == v) & pdf[["label", "score"]].isna().any(axis=1)).sum()
        )
    assert {c.variant for c in res.comparisons} == {"b", "c"}
    for c in res.comparisons:
        assert c.p_value is None or 0.0 <= c.p_value <= 1.0


def test_binary_metrics_refuse_other_labels(spark) -> None:
    df = spark.createDataFrame(
        [("a", 2.0, 0.3), ("b", 1.0, 0.2)], "variant string, y double, p double"
    )
    with pytest.raises(ExperimentError, match="0/1 labels"):
        evaluate_variants(df, TEST, label_column="y", prediction_column="p")
    reg = ABTest(name="r", feature_sets={"a": "x", "b": "y"}, metrics=["rmse", "mae"])
    res = evaluate_variants(df, reg, label_column="y", prediction_column="p")
    assert res.metrics["a"]["rmse"] == pytest.approx(1.7)
    with pytest.raises(ExperimentError, match="not in the data"):
        evaluate_variants(df, reg, label_column="label", prediction_column="p")


def test_a_better_model_wins_and_srm_is_flagged(spark) -> None:
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n)
    good = np.clip(y * 0.6 + rng.normal(0.2, 0.25, n), 0, 1)
    weak = np.clip(y * 0.1 + rng.normal(0.45, 0.25, n), 0, 1)
    t = ABTest(name="w", feature_sets={"a": "x", "b": "y"}, metrics=["auc", "log_loss"])
    pdf = pd.DataFrame(
        {"variant": ["a"] * n + ["b"] * n, "label": np.r_[y, y], "prediction": np.r_[weak, good]}
    )
    res = evaluate_variants(spark.createDataFrame(pdf), t)
    auc = next(c for c in res.comparisons if c.metric == "auc")
    assert auc.significant and auc.better and res.winner == "b"
    assert auc.ci_low < auc.difference < auc.ci_high
    assert not res.sample_ratio_mismatch
    skewed = pdf.iloc[: n + n // 2]  # half of b's rows lost
    res2 = evaluate_variants(spark.createDataFrame(skewed), t)
    assert res2.sample_ratio_mismatch
    table = res.to_pandas()
    assert set(table["variant"]) == {"a", "b"} and len(table) == 4
