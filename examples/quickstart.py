"""The README's example as a program: the life of features from definitions to serving.

Run it from the repository root, with Redis answering at the configured URL::

    FSTORE_CONFIG=conf/feature_store.yaml .venv/bin/python examples/quickstart.py

It uses the demo feature repo (``feature_repo/``): first it writes small sample raw tables
(transactions, demographics) as Delta tables under the project's lakehouse root, then it
applies the definitions, materializes, builds training sets, trains and logs a model with
MLflow lineage, scores a batch, syncs Redis, reads online and checks quality. The part between
the ``readme`` markers is the README's example, kept equal to it by a test.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import mlflow
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from fstore_spark import FeatureStore, temporal_split
from fstore_spark.quality import MonitorRule, expect_between, expect_not_null

CUSTOMERS = 200
DAY = 86_400


def sample_data(store: FeatureStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the raw Delta tables the demo repo reads (the last 90 days); labels, scoring keys."""
    spark = store.spark
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=90)
    events: DataFrame = (
        spark.range(6_000)
        .withColumn("customer_id", F.concat(F.lit("customer_"), (F.col("id") % CUSTOMERS)))
        .withColumn(
            "event_timestamp",
            F.timestamp_seconds(F.lit(int(start.timestamp())) + (F.col("id") * 7919) % (90 * DAY)),
        )
        .withColumn("amount", F.round(F.rand(seed=7) * 200, 2))
        .withColumn("created_at", F.col("event_timestamp") + F.expr("INTERVAL 5 MINUTES"))
        .drop("id")
    )
    events.write.format("delta").mode("overwrite").save(
        store.table_path("raw/customer_transactions")
    )
    people = spark.range(CUSTOMERS).select(
        F.concat(F.lit("customer_"), F.col("id")).alias("customer_id"),
        (18 + F.col("id") % 60).alias("age"),
        F.element_at(
            F.array(F.lit("Recife"), F.lit("Lisboa")), (F.col("id") % 2 + 1).cast("int")
        ).alias("city"),
        F.lit("2020-01-01").cast("date").alias("signup_date"),
        # recorded on the second day: inside the range the example materializes (the last 90
        # days from now), so every label finds its customer's profile
        F.lit(start + timedelta(days=1)).cast("timestamp").alias("event_timestamp"),
    )
    people.write.format("delta").mode("overwrite").save(
        store.table_path("raw/customer_demographics")
    )
    labels = pd.DataFrame(
        {
            "customer_id": [f"customer_{i}" for i in range(0, CUSTOMERS, 2)],
            "event_timestamp": pd.to_datetime(
                [start + timedelta(days=30 + i % 55) for i in range(CUSTOMERS // 2)], utc=True
            ),
            "churned": [i % 2 for i in range(CUSTOMERS // 2)],
        }
    )
    return labels, labels[["customer_id", "event_timestamp"]]


def use_mlflow(store: FeatureStore) -> None:
    """Track to the store's MLflow (the config's URI; artifacts beside it), its experiment."""
    cfg = store.config
    mlflow.set_tracking_uri(cfg.tracking_uri)
    if mlflow.get_experiment_by_name(cfg.mlflow.experiment) is None:
        mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=cfg.artifact_location)
    mlflow.set_experiment(cfg.mlflow.experiment)


def fit(pdf: pd.DataFrame, columns: list[str]) -> object:
    """A small churn model (scikit-learn) on the training set's feature columns."""
    return make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200)).fit(
        pdf[columns], pdf["churned"]
    )


# --8<-- [start:readme]
store = FeatureStore(config=os.environ.get("FSTORE_CONFIG", "conf/feature_store.yaml"))
labels_df, keys_and_timestamps_df = sample_data(store)  # raw Delta tables + label rows
print(store.plan())  # what apply would change
store.apply()  # registry: a Delta table with history
end = datetime.now(UTC)
for view in ("customer_transaction_features", "customer_demographic_features"):
    store.materialize(view, end - timedelta(days=90), end)  # one Delta commit each
store.materialize("customer_transaction_features", end - timedelta(days=7), end)  # a rerun
store.materialize_incremental("customer_transaction_features")  # later: only new data

training = store.get_historical_features(labels_df, feature_set="churn_features_v1")
train, test = temporal_split(training.to_spark(), 0.2, "event_timestamp")
first = store.get_historical_features(  # the features as the first run wrote them
    labels_df,
    ["customer_transaction_features:*"],
    as_of={"customer_transaction_features": 0},  # a Delta version
)

fs = store.create_feature_set(
    "churn_v1",
    ["customer_transaction_features:*", "customer_demographic_features:age"],
    metadata={"author": "team_ml"},
)  # pins the views' Delta versions: churn_v1@v1
use_mlflow(store)  # the config's tracking URI and experiment
with mlflow.start_run() as run:  # lineage is logged: inputs, tags, feature_spec.yaml
    ts = store.get_training_set(fs, labels_df)
    model = fit(ts.to_pandas(), ts.feature_columns)
    info = store.log_model(
        model,
        "model",
        flavor="sklearn",
        training_set=ts,
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
scored = store.score_batch(info.model_uri, keys_and_timestamps_df)  # features looked up
again = store.reproduce_training_set(run.info.run_id)  # same rows, fingerprint checked
changes = store.diff_versions("customer_transaction_features", 0, 1)  # added/changed/removed

store.sync_online("customer_transaction_features")  # Delta -> Redis, incremental (CDF)
online = store.get_online_features(
    features=["customer_transaction_features:total_spent_30d"],
    entity_rows=[{"customer": "customer_12"}],
).to_dict()
# HTTP: `fstore serve` -> POST /get-online-features, GET /health, /docs

report = store.validate(  # one Spark pass: counts and examples per rule
    "customer_transaction_features",
    [
        expect_not_null("total_spent_30d", mostly=0.5),
        expect_between("transaction_count_30d", 0, 10_000),
    ],
)
stats = store.feature_statistics("customer_transaction_features")  # kept per Delta version
drift = store.detect_drift("customer_transaction_features", baseline_version=0)  # KS + PSI
check = store.monitor(
    "customer_transaction_features",
    [MonitorRule("missing_values", 0.05, severity="critical"), MonitorRule("drift_psi", 0.2)],
    baseline_version=0,
    channels=["log"],  # or "slack", "email", a webhook URL, a callable
)
# --8<-- [end:readme]

print(f"training set: {train.count()} train rows, {test.count()} test rows")
print(f"model {info.model_uri}: scored {scored.count()} rows; run {run.info.run_id} reproduced")
print(f"version 0 -> 1: {changes.to_dict()}")
print(f"online: {online}")
print(f"expectations hold: {report.success}; {len(check.alerts)} monitoring alert(s)")
