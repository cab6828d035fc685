# Databricks notebook source
# MAGIC %md
# MAGIC # 2. Training with MLflow: feature set versions, lineage, batch scoring
# MAGIC
# MAGIC Builds on `01_quickstart` (its feature tables and the label table `labels/churn`).
# MAGIC
# MAGIC * A **feature set version** pins the Delta version of each view it reads, so a training
# MAGIC   set built from it is the same tomorrow as today.
# MAGIC * Inside an MLflow run, `get_training_set` logs its lineage: one Delta dataset input per
# MAGIC   view (with the Delta version read), tags and `feature_spec.yaml`. `log_model` stores
# MAGIC   the spec with the model, so `score_batch` needs only keys (and timestamps).
# MAGIC * `reproduce_training_set` rebuilds a run's training set exactly; `runs_using` finds the
# MAGIC   runs that used a view or a feature.

# COMMAND ----------

import os

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
# MAGIC ## A feature set version
# MAGIC
# MAGIC Creating the same set (same features, metadata and description) again returns the
# MAGIC same version, with the same pins; a change makes a new one (`@v2`, ...). The metadata
# MAGIC names the label snapshot here, so new labels (a rerun of 01) make a new version pinned
# MAGIC to the feature tables of then, while a rerun of this notebook alone reuses the version.

# COMMAND ----------

fs = store.create_feature_set(
    "churn_model_inputs",
    [
        "customer_transaction_features:total_spent_30d",
        "customer_transaction_features:transaction_count_30d",
        "customer_demographic_features:age",
    ],
    metadata={"author": "quickstart", "purpose": "churn", "labels": f"v{labels_version}"},
)
print(f"feature set {fs.id} pins Delta versions {dict(fs.view_versions)}")
for v in store.list_feature_set_versions(fs.name):
    print(f"  {v.id}: {', '.join(v.features)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## A model trained in an MLflow run, with lineage
# MAGIC
# MAGIC MLflow tracks to the config's `mlflow.tracking_uri` and experiment (on Databricks, set
# MAGIC `tracking_uri: databricks` and an experiment path such as `/Shared/fstore_demo`).

# COMMAND ----------

import mlflow
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

mlflow.set_tracking_uri(cfg.tracking_uri)
if mlflow.get_experiment_by_name(cfg.mlflow.experiment) is None:
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=cfg.artifact_location)
mlflow.set_experiment(cfg.mlflow.experiment)

with mlflow.start_run(run_name="churn_model") as run:
    ts = store.get_training_set(fs, labels)  # logs the lineage to this run
    pdf = ts.to_pandas()
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
    model.fit(pdf[ts.feature_columns], pdf["churned"])
    mlflow.log_metric("train_accuracy", model.score(pdf[ts.feature_columns], pdf["churned"]))
    info = store.log_model(
        model,
        "model",
        flavor="sklearn",
        training_set=ts,
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
run_id = run.info.run_id
print(f"MLflow run {run_id}: {len(pdf)} training rows, features {ts.feature_columns}")
for inp in ts.inputs:
    print(f"  input {inp.view} @ Delta version {inp.delta_version}: {', '.join(inp.features)}")
print(f"model {info.model_uri}")
print(f"open the UI with: mlflow ui --backend-store-uri {cfg.tracking_uri}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Batch scoring
# MAGIC
# MAGIC Only keys and timestamps go in: the features are looked up point-in-time from the
# MAGIC model's feature spec, and the model runs on the executors.

# COMMAND ----------

scored = store.score_batch(info.model_uri, labels.select("customer_id", "event_timestamp"))
print(f"scored {scored.count()} rows")
scored.orderBy("customer_id").show(5, truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Reproduce a run's training set, and find the runs that used a feature
# MAGIC
# MAGIC The run's lineage names the label table (with its Delta version) and the feature
# MAGIC tables' versions; the rebuilt rows are checked against the fingerprint logged then.

# COMMAND ----------

again = store.reproduce_training_set(run_id)
print(f"reproduced the training set of run {run_id}: {again.entity_rows} rows, same fingerprint")
users = store.runs_using("customer_demographic_features:age")
print("runs that used customer_demographic_features:age:")
for r in users[:5]:
    print(f"  {r['run_id']}")

# COMMAND ----------

print("02_training_with_mlflow done: next, 03_online_serving.")
