"""A/B tests of feature sets end to end: registry, MLflow models, Delta prediction log, Redis.

Two feature sets of the same entity, a model logged from each, a test started on them; requests
are scored with each variant's model and logged; the results equal scikit-learn's metrics on
the logged predictions joined to the labels; the online path assigns the same variants.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from fstore_spark import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureStore,
    FeatureStoreConfig,
    FeatureView,
    Field,
)
from fstore_spark.errors import ExperimentError, LineageError, NotFoundError
from fstore_spark.ml.ab_test import ABTest

T0 = datetime(2024, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CUSTOMERS = [f"c{i:03d}" for i in range(120)]


@pytest.fixture(scope="module")
def _template(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lakehouse every test starts from, built once per module (apply, sources, materialize).

    Each test gets its own copy (see ``store``): Delta tables hold relative file paths, so a
    copied lakehouse is an independent one, and ``copytree`` keeps the commit timestamps.
    """
    root = tmp_path_factory.mktemp("ab_template") / "lakehouse"
    root.mkdir()
    st = FeatureStore(config=FeatureStoreConfig.for_local(root, project="ab"), spark=spark)
    st.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            FeatureView(
                name="txn",
                entities=["customer"],
                source=DeltaSource(name="txns", path="raw/txns", timestamp_column="ts"),
                cadence="1d",
                aggregations=[
                    Aggregation(column="amount", function="sum", window="7d", name="amount_7d"),
                ],
            ),
            FeatureView(
                name="profile",
                entities=["customer"],
                source=DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts"),
                features=[Field(name="age", dtype="int64")],
            ),
        ]
    )
    rng = np.random.default_rng(11)
    n = 3000
    txns = pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "ts": [T0 + timedelta(hours=int(h)) for h in rng.integers(0, 20 * 24, n)],
            "amount": rng.gamma(2.0, 50.0, n),
        }
    )
    spark.createDataFrame(txns, "customer_id string, ts timestamp, amount double").write.format(
        "delta"
    ).save(st.table_path("raw/txns"))
    prof = pd.DataFrame(
        {"customer_id": CUSTOMERS, "ts": [T0] * len(CUSTOMERS), "age": rng.integers(18, 80, 120)}
    )
    spark.createDataFrame(prof, "customer_id string, ts timestamp, age bigint").write.format(
        "delta"
    ).save(st.table_path("raw/profiles"))
    st.materialize("txn", T0, T0 + 21 * DAY)
    st.materialize("profile", T0, T0 + 21 * DAY)
    return root


@pytest.fixture()
def store(spark, _template: Path, tmp_path: Path, redis_url: str, mlflow_uri: str) -> FeatureStore:
    """A store on this test's own copy of the template lakehouse, with Redis and MLflow."""
    root = tmp_path / "lakehouse"
    shutil.copytree(_template, root)
    return FeatureStore(
        config=FeatureStoreConfig.for_local(root, project="ab", online_store={"url": redis_url}),
        spark=spark,
    )


def _requests(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "event_timestamp": pd.to_datetime(
                [T0 + timedelta(hours=int(h)) for h in rng.integers(8 * 24, 20 * 24, n)], utc=True
            ),
        }
    ).drop_duplicates()


def _train(store: FeatureStore, feature_set: str, labels: pd.DataFrame) -> str:
    import mlflow
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    with mlflow.start_run():
        ts = store.get_training_set(feature_set, labels)
        pdf = ts.to_pandas()
        model = make_pipeline(SimpleImputer(), LogisticRegression())
        model.fit(pdf[ts.feature_columns], pdf["label"])
        info = store.log_model(
            model,
            "model",
            flavor="sklearn",
            training_set=ts,
            pyfunc_predict_fn="predict_proba",  # scored with score_index=1: P(label = 1)
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    return info.model_uri


def _label(store: FeatureStore, requests: pd.DataFrame) -> pd.DataFrame:
    """Label = spent over 850 (about the median) in the last 7 days: the txn feature predicts it."""
    got = store.get_historical_features(requests, ["txn:amount_7d"]).to_pandas()
    return got.assign(label=(got["amount_7d"].fillna(0) > 850).astype(int)).drop(
        columns=["amount_7d"]
    )


def test_ab_test_end_to_end(spark, store: FeatureStore) -> None:
    store.create_feature_set("fs_base", ["profile:age"])
    store.create_feature_set("fs_new", ["profile:age", "txn:amount_7d"])
    train = _label(store, _requests(1))
    models = {
        "control": _train(store, "fs_base", train),
        "treatment": _train(store, "fs_new", train),
    }
    test = ABTest(
        name="new_features_test",
        feature_sets={"control": "fs_base", "treatment": "fs_new"},
        models=models,
        metrics=["auc", "precision", "recall", "log_loss"],
        duration="7d",
    )
    with pytest.raises(NotFoundError):
        store.get_ab_test("new_features_test")
    with pytest.raises(ExperimentError, match="trained on feature set"):
        store.start_ab_test(
            ABTest(
                name="swapped",
                feature_sets=test.feature_sets,
                models={"control": models["treatment"], "treatment": models["control"]},
            )
        )
    started = store.start_ab_test(test)
    assert started.feature_sets == {"control": "fs_base@v1", "treatment": "fs_new@v1"}
    assert store.start_ab_test(test) == started  # starting again is a no-op
    with pytest.raises(ExperimentError, match="already started"):
        store.start_ab_test(ABTest(name="new_features_test", feature_sets=test.feature_sets))
    store.create_feature_set("fs_new", ["txn:amount_7d"])  # v2 does not change the running test
    assert store.get_ab_test("new_features_test").feature_sets["treatment"] == "fs_new@v1"

    requests = _requests(2)
    scored = store.score_ab_test("new_features_test", requests, score_index=1).toPandas()
    assert len(scored) == len(requests)
    for row in scored.itertuples():
        assert row.variant == started.assign(row.customer_id)
        assert row.feature_set == started.feature_sets[row.variant]
    # the same predictions as each model on its own features (score_batch)
    for variant, uri in models.items():
        mine = requests[[started.assign(c) == variant for c in requests["customer_id"]]]
        want = store.score_batch(uri, mine, result_type="array<double>").toPandas()
        want["prediction"] = [p[1] for p in want["prediction"]]  # P(label = 1)
        got = scored[scored["variant"] == variant]
        key = ["customer_id", "event_timestamp"]
        merged = got.merge(want, on=key, suffixes=("", "_want"))
        assert len(merged) == len(mine) > 50
        np.testing.assert_allclose(merged["prediction"], merged["prediction_want"], rtol=1e-9)

    # rescoring the same requests logs nothing twice
    log_path = store.table_path("_experiments/new_features_test/predictions")
    store.score_ab_test("new_features_test", requests, score_index=1)
    assert spark.read.format("delta").load(log_path).count() == len(requests)

    labels = _label(store, requests)
    res = store.ab_test_results("new_features_test", labels, log_to_mlflow=True)
    joined = scored.merge(labels, on=["customer_id", "event_timestamp"])
    for variant, g in joined.groupby("variant"):
        y, p = g["label"].to_numpy(), g["prediction"].to_numpy()
        assert res.metrics[variant]["auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-9)
        precision = skm.precision_score(y, p >= 0.5, zero_division=np.nan)
        got = res.metrics[variant]["precision"]  # undefined without predicted positives
        assert got is None if np.isnan(precision) else got == pytest.approx(precision)
        assert res.metrics[variant]["recall"] == pytest.approx(skm.recall_score(y, p >= 0.5))
        assert res.counts[variant]["rows"] == len(g)
    assert res.winner == "treatment"  # the spend feature predicts the spend label
    assert not res.complete and not res.sample_ratio_mismatch
    import mlflow

    assert mlflow.active_run() is None  # the store logged to a run of its own, finished
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("fstore_spark")
    (run,) = client.search_runs([exp.experiment_id], "tags.`fstore.ab_test` = 'new_features_test'")
    assert run.info.status == "FINISHED"
    assert run.data.metrics["treatment.auc"] == pytest.approx(res.metrics["treatment"]["auc"])
    assert run.data.tags["fstore.ab_test.winner"] == "treatment"
    with pytest.raises(LineageError, match="no active MLflow run"):
        res.log_to_mlflow()

    # predictions logged outside the test's time range do not count
    late = ABTest(name="late", feature_sets=test.feature_sets, models=models, duration="1d")
    store.start_ab_test(late, start=datetime.now(UTC) - 10 * DAY)
    store.score_ab_test("late", requests.head(20), score_index=1)
    res_late = store.ab_test_results("late", labels)
    assert res_late.complete and all(c["rows"] == 0 for c in res_late.counts.values())

    # a variant column that disagrees with the assignment is refused
    bad = scored.assign(variant=np.where(scored["variant"] == "control", "treatment", "control"))
    with pytest.raises(ExperimentError, match="carry a variant other"):
        store.log_ab_predictions("new_features_test", bad)


def test_online_requests_get_the_variant_and_its_features(store: FeatureStore) -> None:
    store.sync_online("profile")
    store.sync_online("txn")
    assert store.get_online_features(["profile:age"], [{"customer_id": "c000"}]).to_dict()["age"]
    # feature sets created after an online read are served (the serving cache is dropped)
    store.create_feature_set("fs_base", ["profile:age"])
    store.create_feature_set("fs_new", ["profile:age", "txn:amount_7d"])
    test = store.start_ab_test(
        ABTest(name="online", feature_sets={"control": "fs_base", "treatment": "fs_new"})
    )
    seen = set()
    for c in CUSTOMERS[:30]:
        r = store.get_ab_online_features("online", {"customer_id": c})
        assert r["variant"] == test.assign(c)
        want = {"age"} if r["variant"] == "control" else {"age", "amount_7d"}
        assert set(r["features"]) == want
        assert r["features"]["age"] is not None
        seen.add(r["variant"])
    assert seen == {"control", "treatment"}
    batch = store.assign_ab_variants("online", pd.DataFrame({"customer_id": CUSTOMERS})).toPandas()
    assert all(batch["variant"] == [test.assign(c) for c in batch["customer_id"]])
    with pytest.raises(ExperimentError, match="has no models"):
        store.score_ab_test("online", pd.DataFrame({"customer_id": CUSTOMERS[:3]}))
