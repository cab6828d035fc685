# Databricks notebook source
# MAGIC %md
# MAGIC # 5. An A/B test of two feature sets
# MAGIC
# MAGIC Builds on `01_quickstart` (its feature tables and the label table `labels/churn`).
# MAGIC
# MAGIC The control is a churn model on three features; the treatment a model on a feature set
# MAGIC with one more. Customers are split by a hash of their key (the same in Spark and
# MAGIC online); each request is scored with its variant's model and logged to a Delta table;
# MAGIC the outcomes then give per-variant metrics and their significance.

# COMMAND ----------

import os

import pandas as pd

from fstore_spark import FeatureStore, get_spark, load_config
from fstore_spark.errors import FstoreError
from fstore_spark.lakehouse.tables import is_delta_table, latest_version

cfg = load_config(os.environ.get("FSTORE_CONFIG", "conf/feature_store.yaml"))
spark = get_spark(cfg.spark)
store = FeatureStore(config=cfg, spark=spark)
VIEWS = ("customer_transaction_features", "customer_demographic_features")
TABLES = ("raw/customer_transactions", "raw/customer_demographics", "labels/churn")


def missing_from_quickstart() -> list[str]:
    """What 01_quickstart creates and this notebook needs, but is not there."""
    missing = [t for t in TABLES if not is_delta_table(spark, store.table_path(t))]
    for view in VIEWS:
        try:
            store.get_feature_view(view)
            store.list_versions(view)
        except FstoreError:
            missing.append(f"feature table {view}")
    return missing


missing = missing_from_quickstart()
if missing:
    raise RuntimeError(
        f"missing under {cfg.project_root}: {', '.join(missing)}. This notebook builds on "
        "the tables of 01_quickstart: run 01_quickstart first, with the same FSTORE_CONFIG."
    )
labels_path = store.table_path("labels/churn")
labels_version = latest_version(spark, labels_path)
labels = spark.read.format("delta").option("versionAsOf", labels_version).load(labels_path)
print(f"project {cfg.project!r}: {labels.count()} label rows (labels/churn v{labels_version})")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Two feature sets, a model for each (trained in MLflow runs)
# MAGIC
# MAGIC As in 02, each set's metadata names the label snapshot it is trained on.

# COMMAND ----------

import mlflow
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

mlflow.set_tracking_uri(cfg.tracking_uri)
if mlflow.get_experiment_by_name(cfg.mlflow.experiment) is None:
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=cfg.artifact_location)
mlflow.set_experiment(cfg.mlflow.experiment)

SPEND = "customer_transaction_features"
control_set = store.create_feature_set(
    "churn_ab_control",
    [
        f"{SPEND}:total_spent_30d",
        f"{SPEND}:transaction_count_30d",
        "customer_demographic_features:age",
    ],
    metadata={"author": "quickstart", "purpose": "churn", "labels": f"v{labels_version}"},
)
treatment_set = store.create_feature_set(
    "churn_ab_treatment",
    [
        f"{SPEND}:total_spent_30d",
        f"{SPEND}:transaction_count_30d",
        f"{SPEND}:avg_transaction_value_30d",
        "customer_demographic_features:age",
    ],
    metadata={"author": "quickstart", "purpose": "churn", "labels": f"v{labels_version}"},
)


def train(feature_set, run_name):
    """Train a churn model on a feature set inside an MLflow run; its ModelInfo."""
    with mlflow.start_run(run_name=run_name):
        ts = store.get_training_set(feature_set, labels)
        pdf = ts.to_pandas()
        model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
        model.fit(pdf[ts.feature_columns], pdf["churned"])
        return store.log_model(
            model,
            "model",
            flavor="sklearn",
            training_set=ts,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )


control_model = train(control_set, "churn_ab_control")
treatment_model = train(treatment_set, "churn_ab_treatment")
print(f"control:   {control_set.id} -> {control_model.model_uri}")
print(f"treatment: {treatment_set.id} -> {treatment_model.model_uri}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Start the test, score requests, read the results
# MAGIC
# MAGIC A started test keeps its definition, so each run of this notebook (with newly logged
# MAGIC models) starts a test of its own name.

# COMMAND ----------

from pyspark.sql import functions as F

from fstore_spark import ABTest

ab = store.start_ab_test(
    ABTest(
        name=f"churn_features_test_{treatment_model.run_id[:8]}",
        feature_sets={"control": control_set.name, "treatment": treatment_set.name},
        models={"control": control_model.model_uri, "treatment": treatment_model.model_uri},
        metrics=["auc", "precision", "recall"],
        duration="7d",
    )
)
print(f"A/B test {ab.name}: {ab.feature_sets}, ends {ab.ends_at:%Y-%m-%d %H:%M} UTC")

# requests: every customer once, at times spread over the labels' time range
first, last = labels.agg(
    F.min(F.unix_timestamp("event_timestamp")), F.max(F.unix_timestamp("event_timestamp"))
).first()
requests = pd.DataFrame(
    {
        "customer_id": [f"customer_{i}" for i in range(200)],
        "event_timestamp": pd.to_datetime(
            [first + (last - first) * (i * 37 % 200) // 200 for i in range(200)], unit="s", utc=True
        ),
        "churned": [int(i * 7 % 3 == 0) for i in range(200)],  # the outcomes, known later
    }
)
store.score_ab_test(ab.name, requests[["customer_id", "event_timestamp"]])
results = store.ab_test_results(ab.name, requests, label_column="churned")
results_table = results.to_pandas()
print(results_table[["variant", "metric", "value", "rows", "difference", "p_value"]].to_string())
print(
    f"winner: {results.winner} (None = no significant difference yet); "
    f"sample ratio mismatch: {results.sample_ratio_mismatch}"
)

# COMMAND ----------

print("05_ab_test done.")
print(f"  Delta tables under: {cfg.project_root}")
print(f"  MLflow tracking:    {cfg.tracking_uri}")
