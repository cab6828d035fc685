# Databricks notebook source
# MAGIC %md
# MAGIC # fstore_spark quickstart
# MAGIC
# MAGIC End-to-end tour, runnable on Databricks (attach to a cluster with delta-spark) or as plain
# MAGIC Python (`make demo`). Configuration comes from `$FSTORE_CONFIG`
# MAGIC (default `conf/feature_store.yaml`).

# COMMAND ----------

import os
from datetime import UTC, datetime

import fstore_spark
from fstore_spark import get_spark, load_config

cfg = load_config(os.environ.get("FSTORE_CONFIG", "conf/feature_store.yaml"))
spark = get_spark(cfg.spark)
print(f"fstore_spark {fstore_spark.__version__} on Spark {spark.version}, project {cfg.project!r}")

# COMMAND ----------

# MAGIC %md ## 1. Raw events as a Delta table, and time travel

# COMMAND ----------

from pyspark.sql import functions as F

events_path = f"{cfg.project_root}/raw/customer_transactions"
start = datetime(2024, 1, 1, tzinfo=UTC)
events = (
    spark.range(20_000)
    .withColumn("customer_id", F.concat(F.lit("customer_"), (F.col("id") % 500).cast("string")))
    .withColumn(
        "event_timestamp",
        F.timestamp_seconds(F.lit(int(start.timestamp())) + (F.col("id") * 7919) % (90 * 86400)),
    )
    .withColumn("amount", F.round(F.rand(seed=7) * 200, 2))
    .withColumn("created_at", F.col("event_timestamp") + F.expr("INTERVAL 5 MINUTES"))
    .drop("id")
)
events.write.format("delta").mode("overwrite").save(events_path)
# a second commit: one more day of events
more = events.limit(1000).withColumn(
    "event_timestamp", F.col("event_timestamp") + F.expr("INTERVAL 90 DAYS")
)
more.write.format("delta").mode("append").save(events_path)

v0 = spark.read.format("delta").option("versionAsOf", 0).load(events_path)
latest = spark.read.format("delta").load(events_path)
print(f"raw events Delta table: {events_path}")
print(f"  rows as of version 0: {v0.count():,}; rows now: {latest.count():,}")

# COMMAND ----------

# MAGIC %md ## 2. An MLflow run

# COMMAND ----------

import mlflow

mlflow.set_tracking_uri(cfg.tracking_uri)
if mlflow.get_experiment_by_name(cfg.mlflow.experiment) is None:
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=cfg.artifact_location)
mlflow.set_experiment(cfg.mlflow.experiment)
with mlflow.start_run(run_name="quickstart") as run:
    mlflow.log_param("events_path", events_path)
    mlflow.log_metric("events_v0", v0.count())
print(f"MLflow run {run.info.run_id} in experiment {cfg.mlflow.experiment!r} at {cfg.tracking_uri}")
print(f"  open the UI with: mlflow ui --backend-store-uri {cfg.tracking_uri}")

# COMMAND ----------

# MAGIC %md ## 3. Register the feature definitions (`fstore plan` / `fstore apply`)

# COMMAND ----------

from fstore_spark import FeatureStore

demographics_path = f"{cfg.project_root}/raw/customer_demographics"
(
    spark.range(500)
    .select(
        F.concat(F.lit("customer_"), F.col("id").cast("string")).alias("customer_id"),
        (18 + F.col("id") % 60).alias("age"),
        F.element_at(
            F.array(*[F.lit(c) for c in ["Recife", "Lisboa", "Porto"]]),
            (F.col("id") % 3 + 1).cast("int"),
        ).alias("city"),
        F.date_add(F.lit("2020-01-01").cast("date"), (F.col("id") * 3).cast("int")).alias(
            "signup_date"
        ),
        F.lit(start).cast("timestamp").alias("event_timestamp"),
    )
    .write.format("delta")
    .mode("overwrite")
    .save(demographics_path)
)

store = FeatureStore(config=cfg, spark=spark)
print(store.plan())
store.apply()
print(
    f"registry (a Delta table with history): {cfg.registry_path}, version {store.registry.version()}"
)
for view in store.list_feature_views():
    print(f"  view {view.name}: {', '.join(view.feature_names)}")

# COMMAND ----------

# MAGIC %md ## 4. Materialize the features (every run is a Delta commit) and build a training set

# COMMAND ----------

from datetime import timedelta

import pandas as pd

from fstore_spark import temporal_split

end = start + timedelta(days=91)
for view in ("customer_transaction_features", "customer_demographic_features"):
    result = store.materialize(view, start, end)
    print(
        f"  {view}: {result.rows_written:,} rows written ({result.rows_added} added, "
        f"{result.rows_changed} changed, {result.rows_removed} removed), "
        f"Delta version {result.table_version}"
    )

labels = pd.DataFrame(
    {
        "customer_id": [f"customer_{i}" for i in range(0, 500, 5)],
        "event_timestamp": pd.to_datetime(
            [start + timedelta(days=30 + i % 60) for i in range(100)], utc=True
        ),
        "churned": [i % 2 for i in range(100)],
    }
)
training = store.get_historical_features(labels, feature_set="churn_features_v1")
train, test = temporal_split(training.to_spark(), 0.2, "event_timestamp")
print(f"training set: {train.count()} train rows, {test.count()} test rows; inputs:")
for inp in training.inputs:
    print(
        f"  {inp.view} v{inp.view_version} @ Delta version {inp.delta_version}: {', '.join(inp.features)}"
    )
print(training.to_pandas().head(3).to_string())

# COMMAND ----------

# MAGIC %md ## 5. A feature set version, a model trained in MLflow with lineage, batch scoring
# MAGIC
# MAGIC Inside an MLflow run the training set logs itself: one Delta dataset input per view
# MAGIC (with the Delta version read), tags/params, and `feature_spec.yaml`. The model keeps the
# MAGIC spec, so `score_batch` needs only keys and timestamps, and the run can be rebuilt exactly.

# COMMAND ----------

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

fs = store.create_feature_set(
    "churn_model_inputs",
    [
        "customer_transaction_features:total_spent_30d",
        "customer_transaction_features:transaction_count_30d",
        "customer_demographic_features:age",
    ],
    metadata={"author": "quickstart", "purpose": "churn"},
)
print(f"feature set {fs.id} pins Delta versions {dict(fs.view_versions)}")
with mlflow.start_run(run_name="churn_model") as run:
    ts = store.get_training_set(fs, labels)
    pdf = ts.to_pandas()
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
    model.fit(pdf[ts.feature_columns], pdf["churned"])
    info = store.log_model(
        model,
        "model",
        flavor="sklearn",
        training_set=ts,
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
scored = store.score_batch(info.model_uri, labels[["customer_id", "event_timestamp"]])
print(f"scored {scored.count()} rows; model {info.model_uri}; run {run.info.run_id}")
again = store.reproduce_training_set(run.info.run_id)  # time travel + fingerprint check
print(
    f"reproduced the training set of run {run.info.run_id}: {again.entity_rows} rows, same fingerprint"
)
print(
    f"runs that used customer_demographic_features:age: {[r['run_id'] for r in store.runs_using('customer_demographic_features:age')]}"
)
for v in store.list_versions("customer_transaction_features")[:2]:
    print(f"  customer_transaction_features Delta v{v['version']}: {v['mode']} run {v['run_id']}")

# COMMAND ----------

# MAGIC %md ## 6. Quality: expectations, statistics per version, drift, monitoring with alerts
# MAGIC
# MAGIC Every check is a Spark aggregation; only counts, quantiles and bounded samples reach the
# MAGIC driver. Statistics are kept per Delta version of the feature table; each monitoring
# MAGIC check (the plan in `conf/monitoring.yaml`, as `jobs/monitor_features.py` runs it) is
# MAGIC appended to `_monitoring/<view>`, and its alerts go to the plan's channels.

# COMMAND ----------

from fstore_spark.quality import expect_between, expect_not_null

view = "customer_transaction_features"
report = store.validate(
    view,
    [
        expect_not_null("total_spent_30d", mostly=0.5),
        expect_between("transaction_count_30d", 0, None),
    ],
)
print(f"expectations {'hold' if report.success else 'FAIL'}:")
for r in report.results:
    print(f"  {r.expectation.name}: {r.unexpected} of {r.evaluated} rows unexpected")
stats = store.feature_statistics(view)
s = stats["total_spent_30d"]
print(
    f"statistics of Delta v{stats.table_version}: total_spent_30d mean {s.mean:.2f}, "
    f"median {s.quantiles['0.5']:.2f}, p99 {s.quantiles['0.99']:.2f}, nulls {s.null_fraction:.1%}"
)
middle = start + timedelta(days=45)
drift = store.detect_drift(view, baseline_window=(start, middle), window=(middle, end))
print("drift, second half of the range against the first:")
print(drift.to_pandas()[["column", "test", "statistic", "p_value", "psi", "drifted"]].to_string())
for check in store.run_monitoring(os.path.join(cfg.config_dir, "monitoring.yaml")):
    print(f"monitoring {check.view} v{check.table_version}: {len(check.alerts)} alert(s)")
    for a in check.alerts:
        print(f"  [{a.severity}] {a.message}")

# COMMAND ----------

# MAGIC %md ## 7. An A/B test of two feature sets
# MAGIC
# MAGIC The control is the model of section 5; the treatment a model trained on a feature set
# MAGIC with more features. Customers are split by a hash of their key (the same in Spark and
# MAGIC online); each request is scored with its variant's model and logged to a Delta table;
# MAGIC the labels then give per-variant metrics and their significance.

# COMMAND ----------

from fstore_spark import ABTest

fs2 = store.create_feature_set(
    "churn_model_inputs_v2",
    [
        "customer_transaction_features:total_spent_30d",
        "customer_transaction_features:transaction_count_30d",
        "customer_transaction_features:avg_transaction_value_30d",
        "customer_demographic_features:age",
    ],
    metadata={"author": "quickstart", "purpose": "churn"},
)
with mlflow.start_run(run_name="churn_model_v2"):
    ts2 = store.get_training_set(fs2, labels)
    pdf2 = ts2.to_pandas()
    model2 = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
    model2.fit(pdf2[ts2.feature_columns], pdf2["churned"])
    info2 = store.log_model(
        model2,
        "model",
        flavor="sklearn",
        training_set=ts2,
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
# a started test keeps its definition: a rerun of this notebook, with newly logged models,
# starts a test of its own
ab = store.start_ab_test(
    ABTest(
        name=f"churn_features_test_{info2.run_id[:8]}",
        feature_sets={"control": fs.name, "treatment": fs2.name},
        models={"control": info.model_uri, "treatment": info2.model_uri},
        metrics=["auc", "precision", "recall"],
        duration="7d",
    )
)
print(f"A/B test {ab.name}: {ab.feature_sets}, ends {ab.ends_at:%Y-%m-%d %H:%M} UTC")
requests = pd.DataFrame(
    {
        "customer_id": [f"customer_{i}" for i in range(1, 500, 2)],
        "event_timestamp": pd.to_datetime(
            [start + timedelta(days=40 + i % 45) for i in range(250)], utc=True
        ),
    }
)
store.score_ab_test(ab.name, requests)  # assign, score with each variant's model, log
outcomes = requests.assign(churned=[(i * 7) % 3 == 0 for i in range(250)]).astype({"churned": int})
results = store.ab_test_results(ab.name, outcomes, label_column="churned")
print(results.to_pandas()[["variant", "metric", "value", "rows", "difference", "p_value"]].to_string())
print(
    f"winner: {results.winner} (None = no significant difference yet); "
    f"sample ratio mismatch: {results.sample_ratio_mismatch}"
)

# COMMAND ----------

print("quickstart done.")
print(f"  Delta tables under: {cfg.project_root}")
print(f"  MLflow tracking:    {cfg.tracking_uri}")
