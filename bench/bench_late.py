"""Benchmark: an incremental run that takes one late event, with a keyed replace and without.

    .venv/bin/python bench/bench_late.py --scale M    # 10M events, 100k entities, 180 d

The view of ``bench_aggregation.py`` (27 features) is backfilled over 180 days. Then, three
times, one more day of events is appended together with one event of one entity in the
backfill's last day (late: its rows are in the feature table already, and the change feed
reports it), and an incremental run takes both. The first and third replace only the late
entity's rows of the late range (keyed replace); the second, with the keyed replace turned
off, rewrites every entity's rows of that range, as any run with late events on more than
``KEYED_MAX`` entities does. Prints seconds, rows written and the files the feature table's
commit removed and added.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import bench_spark, report
from bench_aggregation import DAYS, SCALES, T0, generate, run, spend_view


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", choices=SCALES, default="S")
    p.add_argument("--driver-memory", default="8g")
    args = p.parse_args()
    n, entities = SCALES[args.scale]

    from fstore_spark import Entity, FeatureStore
    from fstore_spark.config import FeatureStoreConfig
    from fstore_spark.offline import late as late_module

    spark = bench_spark(args.driver_memory)
    root = Path(tempfile.mkdtemp(prefix="bench_late_"))
    rows: list[dict[str, Any]] = []
    try:
        store = FeatureStore(
            config=FeatureStoreConfig.for_local(root, project="bench"), spark=spark
        )
        src = store.table_path("raw/events")
        generate(spark, src, n, entities, 0, DAYS, seed=1)
        store.apply([Entity(name="customer", join_keys=["customer_id"]), spend_view()])
        row, _ = run(spark, args.scale, "backfill", n, backfill(store))
        rows.append(row)
        keyed = late_module.KEYED_MAX
        for day, keyed_max in ((DAYS, keyed), (DAYS + 1, 0), (DAYS + 2, keyed)):
            late_module.KEYED_MAX = keyed_max
            name = "keyed replace" if keyed_max else "every entity's rows replaced"
            rows.append(late_day(spark, store, args.scale, src, n, entities, day, name))
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    report("late", [{"files_removed": "-", "files_added": "-", **r} for r in rows])


def backfill(store):  # type: ignore[no-untyped-def]
    return lambda: (store.materialize("spend", T0, T0 + timedelta(days=DAYS)).rows_written, None)


def late_day(spark, store, scale: str, src: str, n: int, entities: int, day: int, name: str):  # type: ignore[no-untyped-def]
    """Append day ``day`` and one event in the backfill's last day (late); time the incremental."""
    from pyspark.sql import functions as F

    generate(spark, src, n // DAYS, entities, day, 1, seed=day)
    edge = spark.createDataFrame(
        [(f"c{day}", T0 + timedelta(days=DAYS - 1, hours=12), 1.0, "m1")],
        "customer_id string, event_timestamp timestamp, amount double, merchant string",
    ).withColumn("created_at", F.col("event_timestamp"))
    edge.write.format("delta").mode("append").save(src)

    def go() -> tuple[int, None]:
        res = store.materialize_incremental("spend", end=T0 + timedelta(days=day + 1))
        return res.rows_written, None

    row, _ = run(spark, scale, f"incremental +1 day, 1 late event: {name}", n // DAYS, go)
    from fstore_spark.lakehouse.tables import feature_table_path

    path = feature_table_path(store.config.project_root, "spend")
    last = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1")
    metrics = last.first()["operationMetrics"]
    return {
        **row,
        "files_removed": metrics.get("numRemovedFiles"),
        "files_added": metrics.get("numFiles"),
    }


if __name__ == "__main__":
    main()
