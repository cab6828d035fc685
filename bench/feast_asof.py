"""Feast's Spark offline store on the same data as bench_asof.py (run in Feast's own venv).

Not imported by fstore_spark. ``bench/run_feast_asof.sh`` creates the virtualenv
(``feast[spark]==0.67.0``) beside ours and calls:

    <feast-venv>/bin/python bench/feast_asof.py FEATURES_PARQUET LABELS_PARQUET TTL_DAYS|none

It prints one JSON line: cold and warm seconds of ``get_historical_features`` forced with a
``noop`` write, the row count and the same order-free checksum bench_asof.py computes.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    feats_path, labels_path, ttl_arg = sys.argv[1], sys.argv[2], sys.argv[3]
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.read.parquet(labels_path).createOrReplaceTempView("fstore_bench_labels")

    from feast import Entity, FeatureStore, FeatureView, Field
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64
    from feast.value_type import ValueType

    repo = Path(tempfile.mkdtemp(prefix="feast_bench_"))
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: registry.db\nprovider: local\n"
        "offline_store:\n  type: spark\n  spark_conf:\n    spark.master: local[2]\n"
        "online_store:\n  type: sqlite\n  path: online.db\nentity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(repo))
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.STRING)
    source = SparkSource(
        name="feats",
        path=feats_path,
        file_format="parquet",
        timestamp_field="feature_timestamp",
        created_timestamp_column="created_timestamp",
    )
    ttl = None if ttl_arg == "none" else timedelta(days=int(ttl_arg))
    view = FeatureView(
        name="fv",
        entities=[entity],
        ttl=ttl if ttl is not None else timedelta(0),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(4)],
        source=source,
    )
    store.apply([entity, view])
    refs = [f"fv:f{i}" for i in range(4)]
    times = []
    checksum = None
    for _ in range(2):
        t0 = time.perf_counter()
        job = store.get_historical_features(
            entity_df="SELECT * FROM fstore_bench_labels", features=refs
        )
        df = job.to_spark_df()
        df.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - t0)
    cols = ["entity_id", "event_timestamp", "label", "f0", "f1", "f2", "f3"]
    row = df.select(F.count("*"), F.sum(F.xxhash64(*cols) % 1_000_003)).first()
    checksum = (int(row[0]), int(row[1] or 0))
    print(
        json.dumps(
            {"cold_s": times[0], "warm_s": times[1], "rows": checksum[0], "checksum": checksum}
        )
    )


if __name__ == "__main__":
    main()
