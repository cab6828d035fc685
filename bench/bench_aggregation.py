"""Benchmark: windowed aggregation backfill and incremental vs a plain-PySpark baseline.

    .venv/bin/python bench/bench_aggregation.py --scale S     # 1M events, 10k entities, 180 d
    .venv/bin/python bench/bench_aggregation.py --scale M     # 10M events, 100k entities, 180 d

fstore: one view with windows 7/30/90d x (sum, count, mean, min, max, stddev, last,
approx_count_distinct, recency) = 27 features, full backfill over 180 days, then an incremental
run after one more day of events is appended. Baseline (same run, same data): daily
pre-aggregation, then one ``Window.rangeBetween`` per window computing only sum, count and mean
(9 features), written to Delta. Prints seconds, events/s and the driver JVM's peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import jvm_peak_rss_mb, report, timed

SCALES = {"XS": (100_000, 1_000), "S": (1_000_000, 10_000), "M": (10_000_000, 100_000)}
DAYS = 180
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def generate(spark, path: str, n: int, entities: int, day0: int, days: int, seed: int) -> None:
    from pyspark.sql import functions as F

    start = int(T0.timestamp()) + day0 * 86_400
    (
        spark.range(n, numPartitions=8)
        .select(
            F.concat(
                F.lit("c"), (F.hash(F.col("id"), F.lit(seed)) % entities).cast("string")
            ).alias("customer_id"),
            F.timestamp_seconds(F.lit(start) + (F.rand(seed) * days * 86_400).cast("long")).alias(
                "event_timestamp"
            ),
            F.round(F.rand(seed + 1) * 500, 2).alias("amount"),
            (F.rand(seed + 2) * 1000).cast("int").cast("string").alias("merchant"),
        )
        .withColumn("created_at", F.col("event_timestamp"))
        .write.format("delta")
        .option("delta.enableChangeDataFeed", "true")  # incremental reads only new rows
        .mode("append")
        .save(path)
    )


def baseline(spark, src: str, out: str) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    daily = (
        spark.read.format("delta")
        .load(src)
        .withColumn("day", F.to_date("event_timestamp"))
        .groupBy("customer_id", "day")
        .agg(F.sum("amount").alias("s"), F.count("*").alias("n"))
        .withColumn("d", F.unix_date("day"))
    )
    cols = []
    for w in (7, 30, 90):
        spec = Window.partitionBy("customer_id").orderBy("d").rangeBetween(-(w - 1), 0)
        cols += [
            F.sum("s").over(spec).alias(f"sum_{w}d"),
            F.sum("n").over(spec).alias(f"count_{w}d"),
            (F.sum("s").over(spec) / F.sum("n").over(spec)).alias(f"mean_{w}d"),
        ]
    daily.select("customer_id", "day", *cols).write.format("delta").mode("overwrite").save(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", choices=SCALES, default="S")
    p.add_argument("--driver-memory", default="8g")
    args = p.parse_args()
    n, entities = SCALES[args.scale]

    from fstore_spark import Aggregation, DeltaSource, Entity, FeatureStore, FeatureView
    from fstore_spark.config import FeatureStoreConfig, SparkConfig
    from fstore_spark.session import get_spark

    spark = get_spark(
        SparkConfig(
            master="local[2]",
            shuffle_partitions=8,
            driver_memory=args.driver_memory,
            options={"spark.ui.showConsoleProgress": "false"},
        )
    )
    root = Path(tempfile.mkdtemp(prefix="bench_agg_"))
    try:
        store = FeatureStore(
            config=FeatureStoreConfig.for_local(root, project="bench"), spark=spark
        )
        src_path = store.table_path("raw/events")
        with timed() as g:
            generate(spark, src_path, n, entities, 0, DAYS, seed=1)
        print(f"generated {n:,} events, {entities:,} entities, {DAYS} days: {g['seconds']:.1f}s")
        aggs = [
            Aggregation(column=col, function=fn, window=f"{w}d", name=f"{fn}_{w}d")
            for w in (7, 30, 90)
            for fn, col in [
                ("sum", "amount"),
                ("count", "*"),
                ("mean", "amount"),
                ("min", "amount"),
                ("max", "amount"),
                ("stddev", "amount"),
                ("last", "amount"),
                ("approx_count_distinct", "merchant"),
                ("recency", "*"),
            ]
        ]
        view = FeatureView(
            name="spend",
            entities=["customer"],
            ttl="90d",
            cadence="1d",
            aggregations=aggs,
            source=DeltaSource(
                name="events",
                path="raw/events",
                timestamp_column="event_timestamp",
                created_timestamp_column="created_at",
            ),
        )
        store.apply([Entity(name="customer", join_keys=["customer_id"]), view])
        end = T0 + timedelta(days=DAYS)
        rows = []
        with timed() as b:
            baseline(spark, src_path, str(root / "baseline"))
        rows.append(
            {
                "scale": args.scale,
                "run": "baseline 3 windows x 3 fns",
                "seconds": b["seconds"],
                "events_per_s": n / b["seconds"],
                "rows_out": spark.read.format("delta").load(str(root / "baseline")).count(),
            }
        )
        with timed() as f:
            res = store.materialize("spend", T0, end)
        steps = {"backfill": res.steps}
        rows.append(
            {
                "scale": args.scale,
                "run": "fstore backfill 3 windows x 9 fns",
                "seconds": f["seconds"],
                "events_per_s": n / f["seconds"],
                "rows_out": res.rows_written,
            }
        )
        with timed() as b2:
            baseline(spark, src_path, str(root / "baseline"))
        rows.append(
            {
                "scale": args.scale,
                "run": "baseline (2nd run)",
                "seconds": b2["seconds"],
                "events_per_s": n / b2["seconds"],
                "rows_out": rows[0]["rows_out"],
            }
        )
        day_n = n // DAYS
        generate(spark, src_path, day_n, entities, DAYS, 1, seed=2)
        with timed() as i:
            res = store.materialize_incremental("spend", end=end + timedelta(days=1), lateness="1d")
        steps["incremental"] = res.steps
        rows.append(
            {
                "scale": args.scale,
                "run": "fstore incremental +1 day",
                "seconds": i["seconds"],
                "events_per_s": day_n / i["seconds"],
                "rows_out": res.rows_written,
            }
        )
        for r in rows:
            r["jvm_peak_rss_mb"] = jvm_peak_rss_mb(spark)
        report("aggregation", rows)
        print(
            "ratio backfill/baseline (mean of 2 baseline runs): "
            f"{f['seconds'] / ((b['seconds'] + b2['seconds']) / 2):.2f}"
        )
        print(f"ratio incremental/backfill: {i['seconds'] / f['seconds']:.3f}")
        for run, st in steps.items():
            print(f"{run} steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items()))
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
