"""Feature versions, feature set versions, MLflow lineage, reproduction, score_batch.

Everything runs against a real MLflow tracking store (SQLite in a temp folder, fixture
``mlflow_uri``) and real Delta tables.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fstore_spark import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureStore,
    FeatureStoreConfig,
    FeatureView,
    Field,
)
from fstore_spark.errors import (
    ConfigError,
    DefinitionError,
    LineageError,
    NotFoundError,
    PointInTimeError,
)
from fstore_spark.offline.training import dataframe_fingerprint

T0 = datetime(2024, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CUSTOMERS = [f"c{i:02d}" for i in range(12)]


def _store(spark, root: Path) -> FeatureStore:
    store = FeatureStore(config=FeatureStoreConfig.for_local(root, project="lin"), spark=spark)
    txns = DeltaSource(name="txns", path="raw/txns", timestamp_column="ts")
    profiles = DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts")
    store.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            FeatureView(
                name="txn",
                entities=["customer"],
                source=txns,
                ttl="30d",
                cadence="1d",
                aggregations=[
                    Aggregation(column="amount", function="sum", window="3d", name="amount_3d"),
                    Aggregation(column="*", function="count", name="n_life"),
                ],
            ),
            FeatureView(
                name="profile",
                entities=["customer"],
                source=profiles,
                ttl="60d",
                features=[Field(name="age", dtype="int64"), Field(name="city", dtype="string")],
            ),
        ]
    )
    return store


def _write(spark, store: FeatureStore, table: str, pdf: pd.DataFrame, schema: str) -> None:
    spark.createDataFrame(pdf, schema).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true"
    ).save(store.table_path(f"raw/{table}"))


def _txns(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 150
    return pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "ts": [T0 + timedelta(hours=int(h)) for h in rng.integers(0, 10 * 24, n)],
            "amount": rng.integers(1, 200, n).astype(float),
        }
    )


def _profiles(ages: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(ages),
            "ts": [T0] * len(ages),
            "age": list(ages.values()),
            "city": [f"city_{a % 3}" for a in ages.values()],
        }
    )


def _labels(seed: int = 7, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "event_timestamp": pd.to_datetime(
                [T0 + timedelta(hours=int(h)) for h in rng.integers(24, 10 * 24, n)], utc=True
            ),
            "y": rng.normal(size=n),
        }
    )


def _sorted(pdf: pd.DataFrame) -> pd.DataFrame:
    cols = list(pdf.columns)
    return pdf.sort_values(cols).reset_index(drop=True)[cols]


@pytest.fixture(scope="module")
def _template(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lakehouse every test starts from, built once per module (apply, sources, materialize).

    Each test gets its own copy (see ``store``): Delta tables hold relative file paths, so a
    copied lakehouse is an independent one, and ``copytree`` keeps the commit timestamps.
    """
    root = tmp_path_factory.mktemp("lineage_template") / "lakehouse"
    root.mkdir()
    st = _store(spark, root)
    _write(spark, st, "txns", _txns(1), "customer_id string, ts timestamp, amount double")
    ages = {c: 20 + i for i, c in enumerate(CUSTOMERS)}
    _write(
        spark,
        st,
        "profiles",
        _profiles(ages),
        "customer_id string, ts timestamp, age bigint, city string",
    )
    st.materialize("profile", T0 - DAY, T0 + 10 * DAY)
    return root


@pytest.fixture()
def store(spark, _template: Path, tmp_path: Path) -> FeatureStore:
    """A store on this test's own copy of the template lakehouse."""
    root = tmp_path / "lakehouse"
    shutil.copytree(_template, root)
    return FeatureStore(config=FeatureStoreConfig.for_local(root, project="lin"), spark=spark)


def test_mlflow_lineage_reproduce_and_score_batch(
    spark, store: FeatureStore, mlflow_uri: str
) -> None:
    """A real sklearn run logs inputs + spec; reproduce; score_batch."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    labels = _labels()
    store.materialize("txn", T0, T0 + 10 * DAY)
    fs = store.create_feature_set(
        "churn", ["txn:*", "profile:age"], metadata={"author": "team_ml", "purpose": "test"}
    )
    with mlflow.start_run() as run:
        ts = store.get_training_set(fs, labels)  # active run: lineage is logged
        pdf = ts.to_pandas()
        model = make_pipeline(SimpleImputer(), Ridge(alpha=0.5))
        model.fit(pdf[ts.feature_columns], pdf["y"])
        info = store.log_model(
            model,
            "model",
            flavor="sklearn",
            training_set=ts,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        )
    run_id = run.info.run_id
    assert ts.mlflow_run_id == run_id
    assert ts.feature_columns == ["amount_3d", "n_life", "age"]
    assert len(pdf) == len(labels) and pdf["n_life"].notna().any()

    # 1. the run shows one dataset input per view, a Delta source at the version read
    client = MlflowClient(mlflow_uri)
    got = client.get_run(run_id)
    versions = {i.view: i.delta_version for i in ts.inputs}
    assert versions == dict(fs.view_versions) and all(v is not None for v in versions.values())
    inputs = {d.dataset.name: d for d in got.inputs.dataset_inputs}
    for view, version in versions.items():
        d = inputs[view]
        assert d.dataset.source_type == "delta_table"
        src = __import__("json").loads(d.dataset.source)
        assert src["delta_table_version"] == version
        assert src["path"].endswith(f"/features/{view}")
        assert {t.key: t.value for t in d.tags}["mlflow.data.context"] == "training"
        assert got.data.tags[f"fstore.view.{view}"] == str(version)
        assert got.data.params[f"fstore.view.{view}.delta_version"] == str(version)
    assert "entity_df" in inputs  # the label rows, snapshotted as a Delta table
    assert got.data.params["fstore.feature_set.name"] == "churn"
    assert got.data.params["fstore.feature_set.version"] == "1"
    assert got.data.params["fstore.entity_rows"] == str(len(labels))
    assert got.data.params["fstore.entity_fingerprint"] == ts.entity_fingerprint
    assert got.data.params["fstore.view.profile.view_version"] == "1"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert "feature_spec.yaml" in artifacts
    spec_text = mlflow.artifacts.load_text(f"runs:/{run_id}/feature_spec.yaml")
    assert "amount_3d" in spec_text and f"delta_version: {versions['txn']}" in spec_text

    # 3. score_batch: only keys and timestamps in; same predictions as on the training features
    scored = (
        store.score_batch(info.model_uri, labels[["customer_id", "event_timestamp"]])
        .toPandas()
        .sort_values(["customer_id", "event_timestamp"])
        .reset_index(drop=True)
    )
    expected = pdf.assign(p=model.predict(pdf[ts.feature_columns])).sort_values(
        ["customer_id", "event_timestamp"]
    )
    assert len(scored) == len(labels)
    np.testing.assert_allclose(scored["prediction"].to_numpy(), expected["p"].to_numpy(), rtol=1e-9)

    # lineage queries
    txn_runs = store.runs_using("txn")
    assert [r["run_id"] for r in txn_runs] == [run_id]
    assert [r["run_id"] for r in store.runs_using("profile:age")] == [run_id]
    assert store.runs_using("profile:city") == []  # not in the feature set
    assert txn_runs[0]["delta_version"] == str(versions["txn"])

    # 2. new data -> new Delta version; reproduce gives the original rows, not the new ones
    _write(spark, store, "txns", _txns(2), "customer_id string, ts timestamp, amount double")
    r = store.materialize("txn", T0, T0 + 10 * DAY)
    assert r.table_version == versions["txn"] + 1
    latest = store.get_historical_features(labels, ["txn:*", "profile:age"]).to_pandas()
    cols = list(pdf.columns)
    assert not _sorted(latest[cols]).equals(_sorted(pdf))  # the data really changed
    again = store.reproduce_training_set(run_id)
    assert [i.delta_version for i in again.inputs] == [versions[i.view] for i in again.inputs]
    pd.testing.assert_frame_equal(_sorted(again.to_pandas()[cols]), _sorted(pdf))

    # the fingerprint check catches other labels
    other = _labels(seed=8)
    with pytest.raises(LineageError, match="label rows differ"):
        store.reproduce_training_set(run_id, entity_df=other)


def test_a_label_time_exact_training_set_is_reproduced_in_its_mode(
    spark, store: FeatureStore, mlflow_uri: str
) -> None:
    """The mode is lineage: after new source data, reproduce rebuilds the windows at the label
    times from the source version the logged feature table version recorded (fingerprint
    verified), not as of the cadence and not from the new data."""
    import mlflow

    labels = _labels()
    store.materialize("txn", T0, T0 + 10 * DAY)
    with mlflow.start_run() as run:
        ts = store.get_historical_features(
            labels, ["txn:*"], label_time_exact=True, log_to_mlflow=True
        )
        pdf = ts.to_pandas()
    cadence = store.get_historical_features(labels, ["txn:*"]).to_pandas()
    cols = list(pdf.columns)
    assert not _sorted(cadence[cols]).equals(_sorted(pdf))  # the two modes differ here
    _write(spark, store, "txns", _txns(2), "customer_id string, ts timestamp, amount double")
    store.materialize("txn", T0, T0 + 10 * DAY)
    again = store.reproduce_training_set(run.info.run_id)  # verifies the fingerprints
    assert again.label_time_exact
    pd.testing.assert_frame_equal(_sorted(again.to_pandas()[cols]), _sorted(pdf))


def test_score_batch_applies_the_encoders_logged_with_the_model(
    store: FeatureStore, mlflow_uri: str
) -> None:
    """Training/serving consistency: score_batch encodes with the state fitted in training."""
    import mlflow
    from sklearn.linear_model import Ridge

    from fstore_spark.ml.encoders import Encoder

    labels = _labels(seed=3)
    with mlflow.start_run():
        ts = store.get_historical_features(labels, ["profile:age", "profile:city"])
        enc = Encoder("target_encoding", column="city", target="y", smoothing=2)
        fitted, train = enc.fit_transform(ts.df, folds=3)  # out-of-fold on the training rows
        pdf = train.toPandas()
        cols = ["age", "city_te"]
        model = Ridge(alpha=0.1).fit(pdf[cols], pdf["y"])
        info = store.log_model(
            model,
            "model",
            flavor="sklearn",
            training_set=ts,
            feature_columns=cols,
            encoders=[fitted],
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
        with pytest.raises(LineageError, match="nor outputs of the encoders"):
            store.log_model(model, "m2", flavor="sklearn", training_set=ts, feature_columns=cols)
    keys = ["customer_id", "event_timestamp"]
    scored = store.score_batch(info.model_uri, labels[keys]).toPandas()
    scored = scored.sort_values(keys).reset_index(drop=True)
    feats = ts.to_pandas().sort_values(keys).reset_index(drop=True)
    served = fitted.transform_pandas(feats)  # the serving path, in Python
    want = model.predict(served[cols])
    np.testing.assert_allclose(scored["prediction"].to_numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(scored["city_te"].to_numpy(), served["city_te"].to_numpy())


def test_logging_without_active_run_leaves_mlflow_as_it_was(
    spark, _template: Path, tmp_path: Path, mlflow_uri: str, _mlflow_template: Path
) -> None:
    """No active run: the store logs to runs of its own that it finishes, at its own tracking
    URI, and the process-wide tracking URI, active run and active experiment stay as they were.
    """
    import mlflow
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import Ridge

    root = tmp_path / "lakehouse"
    shutil.copytree(_template, root)
    cfg = FeatureStoreConfig.for_local(root, project="lin", mlflow={"tracking_uri": mlflow_uri})
    store = FeatureStore(config=cfg, spark=spark)
    shutil.copyfile(_mlflow_template, tmp_path / "elsewhere.db")
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)  # the user's own; the fixture restores the previous one
    client = MlflowClient(mlflow_uri)

    def untouched() -> None:
        assert mlflow.active_run() is None
        assert mlflow.get_tracking_uri() == elsewhere == os.environ["MLFLOW_TRACKING_URI"]
        assert "MLFLOW_EXPERIMENT_ID" not in os.environ

    ts = store.get_historical_features(_labels(), ["profile:age"], log_to_mlflow=True)
    untouched()
    run = client.get_run(ts.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["fstore.views"] == ",profile,"
    assert client.get_experiment(run.info.experiment_id).name == "fstore_spark"

    pdf = ts.to_pandas()
    model = Ridge().fit(pdf[["age"]].fillna(0), pdf["y"])
    info = store.log_model(
        model, "m", flavor="sklearn", training_set=ts, pip_requirements=["scikit-learn"]
    )
    untouched()
    model_run = client.get_run(info.run_id)
    assert model_run.info.status == "FINISHED"
    assert model_run.data.tags["fstore.model"] == info.model_uri
    with mlflow.start_run() as mine:  # the user's next run: their URI, their experiment
        pass
    assert MlflowClient(elsewhere).get_run(mine.info.run_id).info.experiment_id == "0"


def test_no_run_no_flag_logs_nothing(store: FeatureStore, mlflow_uri: str) -> None:
    import mlflow

    # no run, no flag: nothing is logged
    ts2 = store.get_historical_features(_labels(), ["profile:age"])
    assert ts2.mlflow_run_id is None and mlflow.active_run() is None
    with pytest.raises(LineageError, match="no feature_spec.yaml|has no feature_spec"):
        with mlflow.start_run() as bare:
            pass
        store.reproduce_training_set(bare.info.run_id)


def test_as_of_an_instant_reads_the_version_live_then(store: FeatureStore) -> None:
    """After the last commit: the latest version. Before the first: a typed error."""
    now = datetime.now(UTC)
    latest = store.read_view("profile").drop("created_timestamp").collect()
    at_now = store.read_view("profile", as_of_timestamp=now).drop("created_timestamp").collect()
    assert sorted(map(tuple, at_now)) == sorted(map(tuple, latest))
    labels = _labels()
    got = store.get_historical_features(labels, ["profile:age"], as_of={"profile": now})
    assert got.to_pandas()["age"].notna().sum() > 0
    with pytest.raises(NotFoundError, match="first version was committed at"):
        store.read_view("profile", as_of_timestamp=datetime(2000, 1, 1, tzinfo=UTC))


def test_export_and_label_window_errors_are_typed(
    spark, store: FeatureStore, tmp_path: Path
) -> None:
    fs = store.create_feature_set("ex", ["profile:age"])
    out = store.export_feature_set(fs, format="csv", path=str(tmp_path / "csv"))
    exported = spark.read.option("header", "true").csv(f"{out}/profile")
    assert exported.count() == len(CUSTOMERS) and "age" in exported.columns
    with pytest.raises(ConfigError, match=r"cannot export .*Fix"):
        store.export_feature_set(fs, format="parquet", path="nosuchscheme://bucket/x")
    with pytest.raises(ConfigError, match="csv"):
        store.export_feature_set(fs, format="xlsx", path=str(tmp_path / "x"))
    with pytest.raises(PointInTimeError, match="before start_date"):
        store.get_training_features(
            ["profile:age"], _labels(), start_date=T0 + 5 * DAY, end_date=T0
        )


def test_validate_takes_a_feature_set_id(spark, store: FeatureStore) -> None:
    """A feature set's id validates its views at the version's pinned Delta versions, each rule
    on the views holding its columns; counts match pandas on the same rows."""
    from fstore_spark.quality import (
        expect_between,
        expect_not_null,
        expect_row_count_between,
        expect_unique,
    )

    store.materialize("txn", T0, T0 + 10 * DAY)
    v1 = store.create_feature_set("q", ["txn:amount_3d", "profile:age"])
    txn = store.read_view("txn").toPandas()
    profile = store.read_view("profile").toPandas()
    rules = [
        expect_not_null("amount_3d"),
        expect_between("age", 20, 25),
        expect_not_null("customer_id"),
        expect_unique("customer_id", "feature_timestamp"),
        expect_row_count_between(1, 10),
    ]
    report = store.validate(v1.id, rules)
    got = {r.expectation.name: r for r in report.results}
    assert report.rows == len(txn) + len(profile)
    amount = got[rules[0].name]
    assert (amount.evaluated, amount.unexpected) == (len(txn), int(txn["amount_3d"].isna().sum()))
    age = got[rules[1].name]
    outside = int((~profile["age"].between(20, 25)).sum())
    assert outside > 0 and (age.evaluated, age.unexpected) == (len(profile), outside)
    assert not age.success
    keys = got[rules[2].name]  # a join key: checked on both views
    assert keys.evaluated == len(txn) + len(profile) and keys.success
    assert got[rules[3].name].success
    count = got[rules[4].name]  # the row count of both views, over the bound
    assert count.observed == len(txn) + len(profile) and not count.success

    # the version validated is the pinned one, not what the view holds now
    _write(
        spark,
        store,
        "profiles",
        _profiles({c: 22 for c in CUSTOMERS}),
        "customer_id string, ts timestamp, age bigint, city string",
    )
    store.materialize("profile", T0 - DAY, T0 + 10 * DAY)
    assert store.validate("profile", [rules[1]]).success
    again = store.validate(v1.id, [rules[1]])
    assert again.results[0].unexpected == outside
    # a raw column of a view's source (not one of the set's features) is checked there
    source = spark.read.format("delta").load(store.table_path("raw/profiles")).toPandas()
    raw = store.validate(v1.id, [expect_not_null("city")]).results[0]
    assert (raw.evaluated, raw.unexpected) == (len(source), int(source["city"].isna().sum()))
    with pytest.raises(DefinitionError, match="in none of the tables"):
        store.validate(v1.id, [expect_not_null("no_such_column")])


def test_two_materializations_at_once_never_raise_a_raw_delta_error(
    store: FeatureStore,
) -> None:
    """Both finish, or the loser gets a typed error that says to rerun."""
    import threading

    from fstore_spark.errors import MaterializationError

    outcomes: list[str] = []
    gate = threading.Barrier(2)

    def run() -> None:
        gate.wait()
        try:
            store.materialize("profile", T0 - DAY, T0 + 10 * DAY)
            outcomes.append("ok")
        except MaterializationError as exc:
            assert "Fix: rerun" in str(exc)
            outcomes.append("typed")
        except Exception as exc:  # noqa: BLE001 - what the test rules out
            outcomes.append(f"raw {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) in (["ok", "ok"], ["ok", "typed"]), outcomes


def test_feature_set_versions_pin_delta_versions(
    spark, store: FeatureStore, tmp_path: Path
) -> None:
    labels = _labels()
    v1 = store.create_feature_set("fs", ["profile:*"], metadata={"author": "a"})
    assert v1.id == "fs@v1" and v1.view_versions == {"profile": 0}
    assert store.create_feature_set("fs", ["profile:*"], metadata={"author": "a"}) == v1
    before = store.get_training_set("fs", labels).to_pandas()

    ages = {c: 50 + i for i, c in enumerate(CUSTOMERS)}
    _write(
        spark,
        store,
        "profiles",
        _profiles(ages),
        "customer_id string, ts timestamp, age bigint, city string",
    )
    store.materialize("profile", T0 - DAY, T0 + 10 * DAY)
    v2 = store.create_feature_set("fs", ["profile:*"], metadata={"author": "b"})
    assert v2.version == 2 and v2.view_versions == {"profile": 1}
    assert [v.version for v in store.list_feature_set_versions("fs")] == [1, 2]

    pinned = store.get_training_set("fs@v1", labels).to_pandas()
    pd.testing.assert_frame_equal(_sorted(pinned), _sorted(before))
    assert set(pinned["age"].dropna()) <= {20 + i for i in range(12)}
    now = store.get_training_set("fs", labels).to_pandas()  # latest version = v2 pins
    assert set(now["age"].dropna()) <= {50 + i for i in range(12)}
    assert _sorted(store.get_training_set("fs", labels, version=1, latest=True).to_pandas()).equals(
        _sorted(now)
    )
    with pytest.raises(NotFoundError, match="no version 9"):
        store.get_feature_set_version("fs", 9)
    # a feature set applied from a repo (no pins written) reads the versions current when it
    # was applied
    from fstore_spark import FeatureSet

    store.apply([FeatureSet(name="repo_fs", features=["profile:age"])])
    assert store.get_feature_set_version("repo_fs").view_versions == {"profile": 1}
    store.materialize("profile", T0 - DAY, T0 + 10 * DAY)
    assert store.get_feature_set_version("repo_fs").view_versions == {"profile": 1}

    out = store.export_feature_set("fs@v1", format="parquet", path=str(tmp_path / "export"))
    exported = spark.read.parquet(f"{out}/profile").toPandas()
    assert set(exported.columns) == {"customer_id", "feature_timestamp", "age", "city"}
    assert sorted(exported["age"]) == sorted(20 + i for i in range(12))
    manifest = spark.read.text(f"{out}/_feature_set").first()["value"]
    assert '"id": "fs@v1"' in manifest and '"profile": 0' in manifest


@pytest.mark.parametrize("seed", [3, 4])
def test_diff_versions_matches_pandas_reference(
    spark, store: FeatureStore, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(seed)
    old = {c: 20 + i for i, c in enumerate(CUSTOMERS)}
    new = {c: (a + int(rng.integers(1, 3)) if rng.random() < 0.4 else a) for c, a in old.items()}
    for c in rng.choice(CUSTOMERS, 2, replace=False):
        new.pop(str(c))
    new["zz_new"] = 99
    _write(
        spark,
        store,
        "profiles",
        _profiles(new),
        "customer_id string, ts timestamp, age bigint, city string",
    )
    store.materialize("profile", T0 - DAY, T0 + 10 * DAY)
    versions = store.list_versions("profile")
    assert [v["version"] for v in versions] == [1, 0]
    assert versions[0]["fstore_run"] and versions[0]["mode"] == "backfill"
    assert versions[0]["view_version"] == 1 and versions[0]["run_id"]

    d = store.diff_versions("profile", 0, 1)
    # reference: plain pandas over the two versions' content
    a = store.read_view("profile", as_of_version=0).toPandas().set_index("customer_id")
    b = store.read_view("profile", as_of_version=1).toPandas().set_index("customer_id")
    both = a.index.intersection(b.index)
    changed_age = int((a.loc[both, "age"] != b.loc[both, "age"]).sum())
    changed_city = int((a.loc[both, "city"] != b.loc[both, "city"]).sum())
    changed = int(
        (
            (a.loc[both, "age"] != b.loc[both, "age"])
            | (a.loc[both, "city"] != b.loc[both, "city"])
        ).sum()
    )
    assert d.added == len(b.index.difference(a.index)) == 1
    assert d.removed == len(a.index.difference(b.index)) == 2
    assert d.changed == changed and d.unchanged == len(both) - changed
    assert d.changed_by_feature == {"age": changed_age, "city": changed_city}
    rows = d.rows("changed").toPandas().set_index("customer_id")
    assert set(rows.index) == set(both[(a.loc[both, "age"] != b.loc[both, "age"]).to_numpy()])
    assert (rows["age__old"] != rows["age__new"]).all()
    assert set(d.rows("removed").toPandas()["customer_id"]) == set(a.index.difference(b.index))

    # the CLI prints the same
    import json

    from fstore_spark.cli import main as cli_main

    cfg = Path(store.config.lakehouse.root).parent / f"fstore_{seed}.yaml"
    cfg.write_text(f"project: lin\nlakehouse:\n  root: {store.config.lakehouse.root}\n")
    capsys.readouterr()
    assert cli_main(["--config", str(cfg), "diff", "profile", "0", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == d.to_dict()
    assert cli_main(["--config", str(cfg), "versions", "profile"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1, 0]


def test_dataframe_fingerprint_is_order_free_and_sensitive(spark) -> None:
    rows = [("a", 1, None), ("b", 2, 3.0), ("c", None, 1.5)]
    schema = "k string, x bigint, z double"
    base = dataframe_fingerprint(spark.createDataFrame(rows, schema))
    shuffled = dataframe_fingerprint(
        spark.createDataFrame(rows[::-1], schema).select("z", "k", "x")
    )
    assert base == shuffled and base[0] == 3
    for changed in (
        [("a", 1, None), ("b", 2, 3.0), ("c", None, 1.25)],  # a value
        [("a", 1, None), ("b", 2, 3.0)],  # a row fewer
        [("a", 1, None), ("b", 2, 3.0), ("c", None, 1.5), ("c", None, 1.5)],  # a duplicate
        [("a", None, 1.0), ("b", 2, 3.0), ("c", None, 1.5)],  # null moved
    ):
        assert dataframe_fingerprint(spark.createDataFrame(changed, schema)) != base
