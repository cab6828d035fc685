# Databricks notebook source
# MAGIC %md
# MAGIC # 4. Quality and monitoring: expectations, statistics, drift, alerts
# MAGIC
# MAGIC Builds on `01_quickstart` (its feature tables). Every check is a Spark aggregation: only
# MAGIC counts, quantiles and bounded samples reach the driver.

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
VIEW = "customer_transaction_features"
versions = store.list_versions(VIEW)  # newest first
latest_version = versions[0]["version"]
previous_version = versions[min(1, len(versions) - 1)]["version"]
print(f"{VIEW}: latest Delta version {latest_version}, previous {previous_version}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Expectations
# MAGIC
# MAGIC `validate` checks rules on a feature table in one pass and reports, per rule, how many
# MAGIC rows break it with example values. `mostly=0.5`: at least half the rows must hold.

# COMMAND ----------

from fstore_spark.quality import expect_between, expect_not_null

report = store.validate(
    VIEW,
    [
        expect_not_null("total_spent_30d", mostly=0.5),
        expect_between("transaction_count_30d", 0, None),
    ],
)
print(f"expectations {'hold' if report.success else 'FAIL'}:")
for r in report.results:
    print(f"  {r.expectation.name}: {r.unexpected} of {r.evaluated} rows unexpected")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Statistics per feature version
# MAGIC
# MAGIC Statistics are computed once per Delta version of the feature table and kept, so the
# MAGIC versions can be compared later at no cost: here the latest version and the one before.

# COMMAND ----------

stats = {v: store.feature_statistics(VIEW, version=v) for v in (previous_version, latest_version)}
stats_table = pd.DataFrame(
    [
        {
            "version": v,
            "feature": name,
            "count": s.count,
            "mean": s.mean,
            "median": s.quantiles["0.5"],
            "p99": s.quantiles["0.99"],
            "nulls": s.null_fraction,
        }
        for v, st in stats.items()
        for name, s in ((n, st[n]) for n in ("total_spent_30d", "transaction_count_30d"))
    ]
)
print(stats_table.to_string(index=False))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Drift
# MAGIC
# MAGIC The last 30 days of the feature table against the 30 days before: numbers with the
# MAGIC two-sample Kolmogorov-Smirnov test, categories with chi-square, plus the population
# MAGIC stability index (PSI). A column is flagged when its p-value is below the threshold.
# MAGIC (The first 30 days of the sample data are left out: their 30-day windows are not full
# MAGIC yet, so their sums and counts are low, which is not drift.)

# COMMAND ----------

hi_s = store.read_view(VIEW).agg(F.max(F.unix_timestamp("feature_timestamp"))).first()[0]
hi = datetime.fromtimestamp(hi_s + 1, UTC)
middle, lo = hi - timedelta(days=30), hi - timedelta(days=60)
drift = store.detect_drift(VIEW, baseline_window=(lo, middle), window=(middle, hi), threshold=0.05)
drift_table = drift.to_pandas()
print(
    f"drift of {VIEW}, [{middle:%Y-%m-%d}, {hi:%Y-%m-%d}) against [{lo:%Y-%m-%d}, {middle:%Y-%m-%d}):"
)
print(drift_table[["column", "test", "statistic", "p_value", "psi", "drifted"]].to_string())
print(f"drifted columns: {drift.drifted_columns}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## A monitoring plan, with alerts
# MAGIC
# MAGIC A plan names, per view, a baseline (here the previous feature version), expectations,
# MAGIC rules, and the channels alerts go to (`log` here; `slack`, `email`, a webhook URL or a
# MAGIC Python callable in production, set up under `alerts:` in the config). The same plan as
# MAGIC YAML is what `conf/monitoring.yaml` holds, for `store.run_monitoring(<path>)`,
# MAGIC `fstore monitor` and `jobs/monitor_features.py`. Each check is appended to the Delta
# MAGIC table `_monitoring/<view>`. The `row_count` rule is deliberately strict here, so that
# MAGIC you see an alert.

# COMMAND ----------

plan = {
    "views": {
        VIEW: {
            "baseline_version": previous_version,
            "channels": ["log"],
            "expectations": {
                "total_spent_30d": {"min_value": 0, "null_percentage": 0.5},
                "transaction_count_30d": {"min_value": 0},
            },
            "rules": [
                {"metric": "missing_values", "threshold": 0.5, "severity": "critical"},
                {"metric": "drift_psi", "threshold": 0.25},
                {"metric": "row_count", "threshold": 1_000_000},
            ],
        }
    }
}
checks = store.run_monitoring(plan)
for check in checks:
    print(f"monitoring {check.view} v{check.table_version}: {len(check.alerts)} alert(s)")
    for a in check.alerts:
        print(f"  [{a.severity}] {a.message}")
history = spark.read.format("delta").load(store.table_path(f"_monitoring/{VIEW}"))
print(f"checks recorded in _monitoring/{VIEW}: {history.count()}")

# COMMAND ----------

print("04_quality_and_monitoring done: next, 05_ab_test.")
