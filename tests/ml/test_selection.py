"""Feature selection against pandas (correlations) and scikit-learn (mutual information)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mutual_info_score

from fstore_spark.errors import DefinitionError
from fstore_spark.ml.selection import correlation_matrix, mutual_information, select_features


def _data(seed: int = 0, n: int = 1_500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=0.7, size=n) > 0).astype(int)
    pdf = pd.DataFrame(
        {
            "signal": signal,
            "signal_copy": signal * 2 + 1 + rng.normal(scale=0.01, size=n),  # redundant
            "weak": 0.3 * signal + rng.normal(size=n),
            "noise": rng.normal(size=n),
            "segment": np.where(y == 1, rng.choice(["a", "b"], n, p=[0.8, 0.2]), "c"),
            "y": y,
        }
    )
    pdf.loc[rng.random(n) < 0.05, "weak"] = np.nan  # nulls in one feature
    return pdf


def _spark(spark, pdf: pd.DataFrame):
    rows = [
        tuple(None if isinstance(v, float) and np.isnan(v) else v for v in r)
        for r in pdf.itertuples(index=False)
    ]
    schema = "signal double, signal_copy double, weak double, noise double, segment string, y int"
    return spark.createDataFrame([tuple(map(_plain, r)) for r in rows], schema)


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def test_correlations_equal_pandas_pairwise(spark) -> None:
    pdf = _data()
    df = _spark(spark, pdf)
    cols = ["signal", "signal_copy", "weak", "noise", "y"]
    got = correlation_matrix(df, cols)
    want = pdf[cols].astype(float).corr()  # pairwise-complete, like ours
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(DefinitionError, match="numeric"):
        correlation_matrix(df, ["segment", "y"])


def test_mutual_information_equals_sklearn_on_the_same_bins(spark) -> None:
    pdf = _data(1)
    df = _spark(spark, pdf)
    got = mutual_information(df, ["signal", "weak", "segment", "noise"], "y", bins=8)
    probs = [i / 8 for i in range(1, 8)]
    for f in ("signal", "weak", "noise"):
        edges = sorted(set(df.approxQuantile(f, probs, 1e-3)))
        x = pdf[f].to_numpy()
        bins = np.where(np.isnan(x), -1, np.searchsorted(edges, x, side="left"))
        assert got[f] == pytest.approx(mutual_info_score(bins, pdf["y"]), rel=1e-9), f
    assert got["segment"] == pytest.approx(mutual_info_score(pdf["segment"], pdf["y"]), rel=1e-9)
    assert got["signal"] > got["weak"] > got["noise"]


def test_select_features_ranks_and_drops_redundant(spark) -> None:
    df = _spark(spark, _data(2))
    top = select_features(df, "y", ["noise", "weak", "signal", "signal_copy"], top_k=2)
    assert set(top) == {"signal", "signal_copy"}  # the same information twice
    deduped = select_features(
        df, "y", ["noise", "weak", "signal", "signal_copy"], top_k=2, max_correlation=0.95
    )
    assert deduped[0] in ("signal", "signal_copy") and deduped[1] == "weak"
    by_corr = select_features(df, "y", method="correlation", top_k=3)
    assert by_corr[:2] in (["signal", "signal_copy"], ["signal_copy", "signal"])
    assert "segment" not in by_corr  # correlation ranks numeric features only
    with_segment = select_features(df, "y", top_k=5)
    assert "segment" in with_segment and with_segment[-1] == "noise"
    with pytest.raises(DefinitionError, match="unknown selection method"):
        select_features(df, "y", method="chi2")
    with pytest.raises(DefinitionError, match="not in the data"):
        select_features(df, "label")


def test_identifiers_are_never_selected(spark) -> None:
    """Keys and near-unique columns carry no signal a model can reuse: never candidates."""
    pdf = _data(3)
    n = len(pdf)
    pdf["customer_id"] = [f"c{i}" for i in range(n)]  # unique
    # an integer id whose values track the label exactly, as ids sorted by time often do
    order = pdf["y"].rank(method="first").astype(int)
    pdf["order_id"] = order
    rows = [
        tuple(None if isinstance(v, float) and np.isnan(v) else _plain(v) for v in r)
        for r in pdf.itertuples(index=False)
    ]
    schema = (
        "signal double, signal_copy double, weak double, noise double, segment string, y int, "
        "customer_id string, order_id bigint"
    )
    df = spark.createDataFrame(rows, schema)
    chosen = select_features(df, "y", top_k=20)
    assert "customer_id" not in chosen and "order_id" not in chosen
    assert {"signal", "signal_copy", "segment"} <= set(chosen[:3])
    assert "segment" not in select_features(df, "y", top_k=20, exclude=["segment"])
