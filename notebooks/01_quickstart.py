# Databricks notebook source
# MAGIC %md
# MAGIC # 1. Quickstart: raw data, definitions, feature tables, a training set
# MAGIC
# MAGIC The first of five notebooks, meant to run in order (as tasks of one job, or one after
# MAGIC the other on a cluster with `fstore_spark` and delta-spark installed). They also run as
# MAGIC plain Python: `make demo` runs all five.
# MAGIC
# MAGIC | notebook | what |
# MAGIC | --- | --- |
# MAGIC | **01_quickstart** | sample raw Delta tables, `plan`/`apply`, materialize, a point-in-time training set, time travel |
# MAGIC | 02_training_with_mlflow | a feature set version, a model trained in an MLflow run with lineage, batch scoring, reproducing a run |
# MAGIC | 03_online_serving | Redis sync (full, then incremental), online reads, the HTTP feature server |
# MAGIC | 04_quality_and_monitoring | expectations, statistics per version, drift, a monitoring plan with alerts |
# MAGIC | 05_ab_test | an A/B test of two feature sets |
# MAGIC
# MAGIC The configuration comes from `$FSTORE_CONFIG` (default `conf/feature_store.yaml`): the
# MAGIC project, the lakehouse root (where every Delta table goes), Redis and MLflow. This
# MAGIC notebook uses the demo feature repo (`feature_repo/customer_features.py`): a `customer`
# MAGIC entity, `customer_transaction_features` (30-day sums, counts and means of card
# MAGIC transactions, ttl 90 days) and `customer_demographic_features` (age, city, signup date).

# COMMAND ----------

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyspark.sql import functions as F

import fstore_spark
from fstore_spark import FeatureStore, get_spark, load_config, temporal_split
from fstore_spark.lakehouse.tables import latest_version

cfg = load_config(os.environ.get("FSTORE_CONFIG", "conf/feature_store.yaml"))
spark = get_spark(cfg.spark)
store = FeatureStore(config=cfg, spark=spark)
print(f"fstore_spark {fstore_spark.__version__} on Spark {spark.version}")
print(f"project {cfg.project!r}, tables under {cfg.project_root}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Sample raw data as Delta tables
# MAGIC
# MAGIC 4,000 card transactions of 200 customers over the last 90 days, a profile per customer,
# MAGIC and churn labels. The dates are relative to today, so the online reads of notebook 03
# MAGIC find values within the views' ttl. The transactions of the last two days arrive late:
# MAGIC they are appended as a second Delta commit, and Delta time travel still reads the
# MAGIC table as it was before.

# COMMAND ----------

CUSTOMERS, EVENTS = 200, 4_000
now = datetime.now(UTC).replace(microsecond=0)
today = now.replace(hour=0, minute=0, second=0)
start = today - timedelta(days=90)
cutoff = today - timedelta(days=2)  # events before this are in the first commit
span = int((now - timedelta(hours=1) - start).total_seconds())

events = (
    spark.range(EVENTS)
    .withColumn("customer_id", F.concat(F.lit("customer_"), (F.col("id") % CUSTOMERS)))
    .withColumn(
        "event_timestamp",
        F.timestamp_seconds(F.lit(int(start.timestamp())) + (F.col("id") * 7919) % span),
    )
    .withColumn("amount", F.round(F.rand(seed=7) * 200, 2))
    .withColumn("created_at", F.col("event_timestamp") + F.expr("INTERVAL 5 MINUTES"))
    .drop("id")
)
events_path = store.table_path("raw/customer_transactions")
on_time = events.where(F.col("event_timestamp") < F.lit(cutoff))
on_time.write.format("delta").mode("overwrite").save(events_path)
raw_first_version = latest_version(spark, events_path)
late = events.where(F.col("event_timestamp") >= F.lit(cutoff))
late.write.format("delta").mode("append").save(events_path)

demographics_path = store.table_path("raw/customer_demographics")
(
    spark.range(CUSTOMERS)
    .select(
        F.concat(F.lit("customer_"), F.col("id")).alias("customer_id"),
        (18 + F.col("id") % 60).alias("age"),
        F.element_at(
            F.array(F.lit("Recife"), F.lit("Lisboa"), F.lit("Porto")),
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

labels_path = store.table_path("labels/churn")
labels_df = pd.DataFrame(
    {
        "customer_id": [f"customer_{i}" for i in range(0, CUSTOMERS, 2)],
        "event_timestamp": pd.to_datetime(
            [start + timedelta(days=30 + i % 55, hours=i % 24) for i in range(CUSTOMERS // 2)],
            utc=True,
        ),
        "churned": [i % 2 for i in range(CUSTOMERS // 2)],
    }
)
spark.createDataFrame(labels_df).write.format("delta").mode("overwrite").option(
    "overwriteSchema", "true"
).save(labels_path)

raw_first_count = (
    spark.read.format("delta").option("versionAsOf", raw_first_version).load(events_path).count()
)
raw_count = spark.read.format("delta").load(events_path).count()
print(f"transactions: {events_path}")
print(f"  Delta version {raw_first_version}: {raw_first_count:,} rows; now: {raw_count:,} rows")
print(f"profiles:     {demographics_path}")
print(f"labels:       {labels_path} ({len(labels_df)} rows)")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Register the definitions: `plan`, then `apply`
# MAGIC
# MAGIC `plan` shows what `apply` would change in the registry (`fstore plan` on the command
# MAGIC line); `apply` commits it. The registry is a Delta table, so its history is kept.

# COMMAND ----------

print(store.plan())
store.apply()
print(f"registry {cfg.registry_path}, version {store.registry.version()}")
for view in store.list_feature_views():
    print(f"  view {view.name} (ttl {view.ttl}): {', '.join(view.feature_names)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Materialize the features
# MAGIC
# MAGIC A backfill computes a view's feature table over a time range in one Delta commit; a
# MAGIC rerun of the same range gives the same rows. When the late transactions have landed,
# MAGIC `materialize_incremental` continues from the last run and recomputes only what the new
# MAGIC events touch: another Delta commit, so another feature version.

# COMMAND ----------

VIEWS = ("customer_transaction_features", "customer_demographic_features")
backfill = {
    "customer_transaction_features": store.materialize(
        "customer_transaction_features", start, cutoff
    ),
    "customer_demographic_features": store.materialize("customer_demographic_features", start, now),
}
for view, result in backfill.items():
    print(f"  {view}: {result.rows_written:,} rows written, Delta version {result.table_version}")
incremental = store.materialize_incremental("customer_transaction_features")
print(
    f"  customer_transaction_features, incremental: {incremental.rows_written:,} rows written "
    f"({incremental.rows_added} added, {incremental.rows_changed} changed), "
    f"Delta version {incremental.table_version}"
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## A point-in-time training set
# MAGIC
# MAGIC Each label row gets the features as they were at its own timestamp (no leakage from
# MAGIC the future). `temporal_split` keeps the latest 20% of timestamps for testing.

# COMMAND ----------

training = store.get_historical_features(labels_df, feature_set="churn_features_v1")
train, test = temporal_split(training.to_spark(), 0.2, "event_timestamp")
print(f"training set: {train.count()} train rows, {test.count()} test rows; inputs:")
for inp in training.inputs:
    print(f"  {inp.view} @ Delta version {inp.delta_version}: {', '.join(inp.features)}")
print(training.to_pandas().head(5).to_string())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Time travel: feature versions
# MAGIC
# MAGIC Every materialization is a Delta version of the feature table. `list_versions` shows
# MAGIC them with the run that wrote each one, `diff_versions` what changed, and `as_of` reads
# MAGIC features as an earlier version held them: here, the features of five customers now,
# MAGIC before and after the late transactions were taken in.

# COMMAND ----------

VIEW = "customer_transaction_features"
tx_versions = store.list_versions(VIEW)
for v in tx_versions[:3]:
    print(f"  {VIEW} Delta v{v['version']}: {v['mode']} up to {v['end']}, {v['rows']} rows")
changes = store.diff_versions(VIEW, backfill[VIEW].table_version, incremental.table_version)
print(f"v{backfill[VIEW].table_version} -> v{incremental.table_version}: {changes.to_dict()}")

keys_now = pd.DataFrame(
    {
        "customer_id": [f"customer_{i}" for i in range(5)],
        "event_timestamp": pd.to_datetime([now] * 5, utc=True),
    }
)
spend = [f"{VIEW}:total_spent_30d", f"{VIEW}:transaction_count_30d"]
as_first = store.get_historical_features(
    keys_now, spend, as_of={VIEW: backfill[VIEW].table_version}
).to_pandas()
as_latest = store.get_historical_features(keys_now, spend).to_pandas()
print(
    as_first.merge(as_latest, on=["customer_id", "event_timestamp"], suffixes=("_before", "_now"))
    .drop(columns="event_timestamp")
    .to_string()
)

# COMMAND ----------

print("01_quickstart done: next, 02_training_with_mlflow.")
