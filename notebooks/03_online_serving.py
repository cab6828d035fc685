# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Online serving: Redis sync, online reads, the HTTP feature server
# MAGIC
# MAGIC Builds on `01_quickstart` (its feature tables) and needs the Redis of the config's
# MAGIC `online_store.url`.
# MAGIC
# MAGIC * `sync_online` pushes each entity's latest values from the Delta feature table to Redis:
# MAGIC   a full reload the first time (into a new namespace, switched atomically), then
# MAGIC   incremental syncs that read only the Delta change data feed since the last sync.
# MAGIC * `get_online_features` reads them in one round trip, by feature references (each
# MAGIC   view's ttl applies) or by feature set (its `cache_ttl` applies).
# MAGIC * `fstore serve` answers the same reads over HTTP; here the app runs in-process.

# COMMAND ----------

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyspark.sql import functions as F

from fstore_spark import FeatureStore, get_spark, load_config
from fstore_spark.errors import FstoreError
from fstore_spark.lakehouse.tables import is_delta_table

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
print(f"project {cfg.project!r}, Redis at {cfg.online_store.url}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## A full sync of both views

# COMMAND ----------

full = {view: store.sync_online(view, mode="full") for view in VIEWS}
for view, result in full.items():
    print(
        f"  {view}: {result.mode}, Delta version {result.version}, "
        f"{result.keys_written} keys written, namespace {result.namespace}"
    )

# COMMAND ----------

# MAGIC %md
# MAGIC ## Online reads by feature references
# MAGIC
# MAGIC One dict per entity (the join key, or the entity's name when it has one key). A value
# MAGIC older than its view's ttl comes back as null with the status `OUTSIDE_MAX_AGE`.

# COMMAND ----------

customers = [f"customer_{i}" for i in range(5)]
features = [
    "customer_transaction_features:total_spent_30d",
    "customer_transaction_features:transaction_count_30d",
    "customer_demographic_features:age",
]
before = store.get_online_features(features, [{"customer": c} for c in customers]).to_dict()
print(pd.DataFrame(before).to_string())

# COMMAND ----------

# MAGIC %md
# MAGIC ## New transactions, a new materialization, an incremental sync
# MAGIC
# MAGIC Yesterday's transactions of three of the five customers land in the raw table (the
# MAGIC view's cadence is one day: its values change at midnight, so today's values take in
# MAGIC yesterday's events). The incremental run adds a Delta version to the feature table;
# MAGIC the next sync writes only the entities whose latest values changed.

# COMMAND ----------

yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
yesterday -= timedelta(days=1)
new_events = spark.range(6).select(
    F.concat(F.lit("customer_"), (F.col("id") % 3)).alias("customer_id"),
    F.timestamp_seconds(
        F.lit(int((yesterday + timedelta(hours=12)).timestamp())) + F.col("id") * 600
    ).alias("event_timestamp"),
    (F.lit(250.0) + F.col("id")).alias("amount"),
)
new_events = new_events.withColumn(
    "created_at", F.col("event_timestamp") + F.expr("INTERVAL 5 MINUTES")
)
new_events.write.format("delta").mode("append").save(store.table_path("raw/customer_transactions"))
materialized = store.materialize_incremental("customer_transaction_features")
print(
    f"materialized: Delta version {materialized.table_version}, "
    f"{materialized.rows_written} rows written"
)
incremental = store.sync_online("customer_transaction_features")
print(
    f"synced: {incremental.mode}, Delta v{incremental.previous_version} -> "
    f"v{incremental.version}, {incremental.keys_written} keys written"
)
after = store.get_online_features(features, [{"customer": c} for c in customers]).to_dict()
print(
    pd.DataFrame(before)
    .merge(pd.DataFrame(after), on="customer_id", suffixes=("_before", "_after"))
    .to_string()
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Online reads by feature set, with a `cache_ttl`
# MAGIC
# MAGIC `configure_online_serving` records how a feature set is served: `update_frequency`
# MAGIC drives the scheduled sync (`fstore scheduler`), and `cache_ttl` caps the age of what a
# MAGIC read through the set serves. The profiles were captured 90 days ago, so with a one-day
# MAGIC `cache_ttl` their `age` is not served; spending features whose latest row is recent are.

# COMMAND ----------

serving_set = store.create_feature_set(
    "churn_online", features, metadata={"author": "quickstart", "purpose": "serving"}
)
serving = store.configure_online_serving(serving_set, update_frequency="1h", cache_ttl="1d")
print(f"{serving_set.id}: {serving}")
by_set = store.get_online_features(feature_set=serving_set.name, entity_keys=customers)
by_set_dict = by_set.to_dict(include_status=True, include_timestamps=True)
print(pd.DataFrame(by_set_dict).to_string())

# COMMAND ----------

# MAGIC %md
# MAGIC ## The HTTP feature server
# MAGIC
# MAGIC `fstore serve` runs this app (FastAPI) with uvicorn: `POST /get-online-features`,
# MAGIC `GET /health`, the API docs at `/docs`. Give it API keys (`server.api_keys` in the
# MAGIC config) before it listens beyond loopback. Here the app runs in-process.

# COMMAND ----------

from fastapi.testclient import TestClient

from fstore_spark.server import create_app

request = {"features": features, "entity_rows": [{"customer_id": c} for c in customers]}
with TestClient(create_app(store, refresh_seconds=None)) as client:
    health = client.get("/health").json()
    response = client.post("/get-online-features", json=request)
http_status = response.status_code
http_result = response.json()
names = http_result["metadata"]["feature_names"]
http_table = {
    name: result["values"] for name, result in zip(names, http_result["results"], strict=True)
}
print(f"GET /health: {health}")
print(f"POST /get-online-features: HTTP {http_status}")
print(pd.DataFrame(http_table).to_string())

# COMMAND ----------

print("03_online_serving done: next, 04_quality_and_monitoring.")
