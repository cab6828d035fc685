"""Encoders: one fitted state, the same numbers from Spark, pandas and single records.

Oracles: pandas group-bys for the fitted state, a brute-force loop over the rows of the other
folds for out-of-fold target encoding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from fstore_spark.errors import DefinitionError
from fstore_spark.ml.encoders import Encoder, FittedEncoder, apply_encoders

SCHEMA = "id long, cat string, code int, flag boolean, x double, y double"


def _rows(seed: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    cats = ["gold", "silver", "bronze", "tin", "a b/c"]
    out = []
    for i in range(n):
        c = None if rng.random() < 0.08 else str(rng.choice(cats, p=[0.4, 0.3, 0.15, 0.1, 0.05]))
        x = None if rng.random() < 0.05 else float(rng.normal(3, 2))
        y = float(rng.random() < (0.7 if c == "gold" else 0.3))
        out.append((i, c, int(rng.integers(0, 4)), bool(rng.random() < 0.5), x, y))
    return out


def test_fitted_state_matches_pandas(spark) -> None:
    rows = _rows(1, 400)
    df = spark.createDataFrame(rows, SCHEMA)
    pdf = pd.DataFrame(rows, columns=["id", "cat", "code", "flag", "x", "y"])
    te = Encoder("target_encoding", column="cat", target="y", smoothing=5).fit(df)
    prior = pdf["y"].mean()
    g = pdf.dropna(subset=["cat"]).groupby("cat")["y"].agg(["sum", "count"])
    want = {k: (r["sum"] + 5 * prior) / (r["count"] + 5) for k, r in g.iterrows()}
    assert te.prior == pytest.approx(prior, rel=1e-12)
    assert te.mapping.keys() == want.keys()
    for k, v in want.items():
        assert te.mapping[k] == pytest.approx(v, rel=1e-12)
    ordinal = Encoder("label", column="cat").fit(df)
    freq = pdf["cat"].value_counts()
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    assert ordinal.mapping == {k: float(i) for i, (k, _) in enumerate(ranked)}
    onehot = Encoder("one_hot", column="cat", max_categories=3).fit(df)
    assert onehot.outputs == [f"cat__{k}" for k, _ in ranked[:3]]
    std = Encoder("standardize", column="x").fit(df)
    assert (std.mean, std.stddev) == pytest.approx((pdf["x"].mean(), pdf["x"].std(ddof=1)))


@pytest.mark.parametrize(
    "encoder",
    [
        Encoder("target", column="cat", target="y"),
        Encoder("target", column="code", target="y", output="code_rate"),
        Encoder("target", column="flag", target="y"),
        Encoder("onehot", column="cat"),
        Encoder("ordinal", column="cat"),
        Encoder("standard", column="x"),
    ],
    ids=["target-str", "target-int", "target-bool", "onehot", "ordinal", "standard"],
)
def test_spark_pandas_and_records_give_the_same_values(spark, encoder: Encoder) -> None:
    train = spark.createDataFrame(_rows(2, 300), SCHEMA)
    test_rows = _rows(3, 120) + [(999, "platinum", 9, True, 1.5, 0.0)]  # an unseen category
    test = spark.createDataFrame(test_rows, SCHEMA)
    fitted = FittedEncoder.from_json(encoder.fit(train).to_json())  # as stored with a model
    outs = fitted.outputs
    got = fitted.transform(test).orderBy("id").select("id", *outs).toPandas()
    pdf = pd.DataFrame(test_rows, columns=["id", "cat", "code", "flag", "x", "y"])
    by_pandas = fitted.transform_pandas(pdf).sort_values("id")
    for col in outs:
        a = got[col].tolist()
        b = by_pandas[col].tolist()
        c = [
            fitted.transform_record(dict(zip(pdf.columns, r, strict=True)))[col] for r in test_rows
        ]
        assert [None if v is None or v != v else v for v in a] == [
            None if v is None or v != v else v for v in b
        ]
        assert [None if v is None or v != v else v for v in b] == c
    unseen = fitted.transform_record({"cat": "platinum", "code": 9, "flag": True, "x": 1.5})
    if encoder.method == "target" and encoder.column == "cat":
        assert unseen[outs[0]] == fitted.prior
    if encoder.method == "onehot":
        assert all(unseen[o] == 0 for o in outs)
    if encoder.method == "ordinal":
        assert unseen[outs[0]] == -1


def test_out_of_fold_target_encoding_never_sees_the_row_label(spark) -> None:
    rows = _rows(4, 250) + [(5000, "unique_cat", 1, False, 0.0, 1.0)]
    df = spark.createDataFrame(rows, SCHEMA)
    enc = Encoder("target", column="cat", target="y", smoothing=3)
    fitted, out = enc.fit_transform(df, folds=4, seed=11)
    fold = F.pmod(F.xxhash64(F.lit(11), *[F.col(c) for c in df.columns]), F.lit(4))
    got = (
        out.join(df.withColumn("fold", fold).select("id", "fold"), "id", "left")
        .toPandas()
        .set_index("id")
    )
    assert len(got) == len(rows)
    # brute force: each row from the rows of the other folds only
    for rid, r in got.iterrows():
        others = got[got["fold"] != r["fold"]]
        prior = others["y"].mean()
        same = others[others["cat"] == r["cat"]] if r["cat"] is not None else others.iloc[0:0]
        want = (same["y"].sum() + 3 * prior) / (len(same) + 3)
        assert r["cat_te"] == pytest.approx(want, rel=1e-9), rid
    # the only row of its category is encoded with the other folds' prior: no label leak
    lone = got.loc[5000]
    assert lone["cat_te"] == pytest.approx(got[got["fold"] != lone["fold"]]["y"].mean())
    # the state for other data is fitted on every row
    assert fitted.mapping["unique_cat"] == pytest.approx((1.0 + 3 * fitted.prior) / (1 + 3))
    two = apply_encoders(df, [fitted, Encoder("ordinal", column="cat").fit(df)])
    assert {"cat_te", "cat_ord"} <= set(two.columns) and two.count() == len(rows)


def test_bad_encoders_fail_before_fitting(spark) -> None:
    df = spark.createDataFrame(_rows(5, 20), SCHEMA)
    with pytest.raises(DefinitionError, match="needs target"):
        Encoder("target", column="cat")
    with pytest.raises(DefinitionError, match="unknown encoder method"):
        Encoder("hashing", column="cat")
    with pytest.raises(DefinitionError, match="categorical column"):
        Encoder("ordinal", column="x").fit(df)
    with pytest.raises(DefinitionError, match="not in the data"):
        Encoder("ordinal", column="colour").fit(df)
    with pytest.raises(DefinitionError, match="more than 2 categories"):
        Encoder("ordinal", column="cat", max_categories=2).fit(df)
