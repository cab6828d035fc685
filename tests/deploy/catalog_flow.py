"""Catalog tables across processes: ``python catalog_flow.py write|read <dir> <day> <redis>``.

Both steps use a store whose ``lakehouse.catalog``/``schema`` are set, on a Spark session with a
persistent Hive metastore (Derby, shipped with pyspark) under ``<dir>/metastore``:

* ``write`` applies the flow's definitions, writes its sources (paths), backfills both views,
  appends events and runs an incremental materialization, computes statistics, syncs to Redis
  and builds a training set;
* ``read`` runs in a new process (a new session on the same metastore), reads the registry,
  feature tables, history and kept statistics by name, and builds the same training set.

Each writes ``<dir>/<step>.json``: what it read, the tables of the schema and the folders under
the project root.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import deploy_flow as flow

SCHEMA = "features_db"


def config(d: Path, redis_url: str) -> Any:
    """A store config with a catalog schema, on a session with a persistent metastore."""
    from fstore_spark import FeatureStoreConfig

    meta = d / "metastore"
    return FeatureStoreConfig.for_local(
        d / "lake",
        project="flow",
        online_store={"url": redis_url, "key_prefix": "flow"},
        lakehouse={"root": str(d / "lake"), "catalog": "spark_catalog", "schema": SCHEMA},
        spark={
            "master": "local[1]",
            "app_name": "catalog_flow",
            "shuffle_partitions": 1,
            "ui_enabled": False,
            "options": {
                "spark.sql.catalogImplementation": "hive",
                "spark.sql.warehouse.dir": str(meta / "warehouse"),
                "spark.hadoop.javax.jdo.option.ConnectionURL": (
                    f"jdbc:derby:;databaseName={meta}/metastore_db;create=true"
                ),
                "spark.sql.adaptive.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            },
        },
    )


def main(step: str, d: Path, t0: datetime, redis_url: str) -> None:
    from fstore_spark import FeatureStore

    store = FeatureStore(config=config(d, redis_url))
    spark = store.spark
    if step == "write":
        store.apply(flow._definitions())
        events = flow._txns(1, t0, range(0, 8), 120)
        spark.createDataFrame(events, flow.TXN_SCHEMA).write.format("delta").save(
            store.table_path("raw/txns")
        )
        profiles = spark.createDataFrame(
            [(c, t0, 20 + i, f"city_{i % 3}") for i, c in enumerate(flow.CUSTOMERS)],
            "customer_id string, ts timestamp, age bigint, city string",
        )
        profiles.write.format("delta").save(store.table_path("raw/profiles"))
        store.materialize("txn", t0, t0 + 8 * flow.DAY)
        store.materialize("profile", t0 - flow.DAY, t0 + 12 * flow.DAY)
        more = flow._txns(2, t0, range(7, 12), 60)
        more = spark.createDataFrame(more, flow.TXN_SCHEMA)
        more.write.format("delta").mode("append").save(store.table_path("raw/txns"))
        store.materialize_incremental("txn", end=t0 + 12 * flow.DAY)
        store.feature_statistics("txn")
        store.sync_online()
    hist = store.get_historical_features(flow._labels(t0), ["txn:*", "profile:age"])
    tables = spark.sql(f"SHOW TABLES IN spark_catalog.{SCHEMA}").collect()
    refs = ["txn:amount_3d", "txn:n_life", "profile:age"]
    online = store.get_online_features(refs, [{"customer_id": c} for c in flow.CUSTOMERS])
    out = {
        "training": flow._records(hist.to_pandas()),
        "versions": [(v["version"], v["operation"]) for v in store.list_versions("txn")],
        "diff": store.diff_versions("txn", 0, 1).to_dict(),
        "statistics_rows": store.feature_statistics("txn").rows,
        "online": online.to_dict(),
        "tables": sorted(r["tableName"] for r in tables),
        "views": sorted(v.name for v in store.list_feature_views()),
        "txn_rows": spark.table(f"spark_catalog.{SCHEMA}.flow_features_txn").count(),
        "folders": sorted(p.name for p in Path(store.config.project_root).iterdir()),
    }
    (d / f"{step}.json").write_text(json.dumps(out, default=str, sort_keys=True))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4])
