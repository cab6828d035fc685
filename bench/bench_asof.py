"""Benchmark: point-in-time join vs a plain join + row_number, same data, same run.

    .venv/bin/python bench/bench_asof.py --scale S    # 100k labels, ~0.9M feature rows, 10k keys
    .venv/bin/python bench/bench_asof.py --scale M    # 1M labels, ~9M feature rows, 100k keys

4 features, ttl 90d; variants: uniform, skewed (1% of keys hold half of the feature rows and
half of the labels) and ttl=None. Each is timed cold (first run) and warm (second run), forcing
full evaluation with the ``noop`` sink; the two results are checked equal by an order-free
checksum. The Spark driver runs with 4 GB (``--driver-memory``), executors in the same JVM.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import bench_spark, jvm_peak_rss_mb, report, timed

SCALES = {"XS": (10_000, 1_000), "S": (100_000, 10_000), "M": (1_000_000, 100_000)}
T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 90


def make_data(spark, root: Path, labels_n: int, keys: int, skewed: bool) -> tuple[str, str]:
    from pyspark.sql import functions as F

    feats_path, labels_path = str(root / "features"), str(root / "labels")
    start = int(T0.timestamp())
    hot = max(keys // 100, 1)

    def key_col(seed: int):
        u = F.rand(seed)
        if not skewed:
            return (u * keys).cast("long")
        # half of the rows on the 1% hot keys, the other half on the rest
        return F.when(u < 0.5, (F.rand(seed + 7) * hot).cast("long")).otherwise(
            (F.rand(seed + 9) * keys).cast("long")
        )

    n_feats = keys * DAYS
    (
        spark.range(n_feats, numPartitions=8)
        .select(
            F.concat(F.lit("k"), key_col(1).cast("string")).alias("entity_id"),
            # microsecond times: ties on (key, time) would make both methods pick arbitrarily
            F.timestamp_micros(
                F.lit(start * 1_000_000) + (F.rand(2) * DAYS * 86_400e6).cast("long")
            ).alias("feature_timestamp"),
            *[F.rand(10 + i).alias(f"f{i}") for i in range(4)],
        )
        .withColumn("created_timestamp", F.col("feature_timestamp"))
        .write.format("delta")
        .mode("overwrite")
        .save(feats_path)
    )
    (
        spark.range(labels_n, numPartitions=4)
        .select(
            F.concat(F.lit("k"), key_col(3).cast("string")).alias("entity_id"),
            F.timestamp_seconds(
                F.lit(start) + (F.rand(4) * (DAYS + 30) * 86_400).cast("long")
            ).alias("event_timestamp"),
            (F.rand(5) > 0.5).cast("int").alias("label"),
        )
        .write.format("delta")
        .mode("overwrite")
        .save(labels_path)
    )
    return feats_path, labels_path


def ours(spark, feats_path: str, labels_path: str, ttl):
    from fstore_spark.offline.asof import asof_join

    labels = spark.read.format("delta").load(labels_path)
    feats = spark.read.format("delta").load(feats_path)
    bounds = labels.selectExpr("min(event_timestamp)", "max(event_timestamp)").first()
    return asof_join(
        labels,
        feats,
        keys=["entity_id"],
        label_ts="event_timestamp",
        feature_ts="feature_timestamp",
        value_columns=["f0", "f1", "f2", "f3"],
        ttl=ttl,
        created_ts="created_timestamp",
        prune_bounds=(bounds[0], bounds[1]),
    )


def baseline(spark, feats_path: str, labels_path: str, ttl):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    labels = (
        spark.read.format("delta")
        .load(labels_path)
        .withColumn("_id", F.monotonically_increasing_id())
    )
    feats = spark.read.format("delta").load(feats_path).withColumnRenamed("entity_id", "_k")
    cond = (labels.entity_id == feats._k) & (feats.feature_timestamp <= labels.event_timestamp)
    if ttl is not None:
        cond = cond & (
            feats.feature_timestamp >= labels.event_timestamp - F.expr(f"INTERVAL {ttl.days} DAYS")
        )
    j = labels.join(feats, cond, "left")
    w = Window.partitionBy("_id").orderBy(
        F.col("feature_timestamp").desc_nulls_last(), F.col("created_timestamp").desc_nulls_last()
    )
    return (
        j.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select("entity_id", "event_timestamp", "label", "f0", "f1", "f2", "f3")
    )


def checksum(df) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = df.select(F.count("*"), F.sum(F.xxhash64(*df.columns) % 1_000_003)).first()
    return int(row[0]), int(row[1] or 0)


def run(df_fn, *args) -> float:
    with timed() as t:
        df_fn(*args).write.format("noop").mode("overwrite").save()
    return t["seconds"]


def run_feast(
    spark,
    args,
    root: Path,
    feats_path: str,
    labels_path: str,
    ttl,
    variant: str,
    labels_n: int,
    n_feats: int,
    our_checksum,
) -> dict:
    """Feast's Spark offline store on parquet copies of the same data, in its own venv."""
    import json
    import subprocess

    fp, lp = str(root / "feats.parquet"), str(root / "labels.parquet")
    spark.read.format("delta").load(feats_path).write.mode("overwrite").parquet(fp)
    spark.read.format("delta").load(labels_path).write.mode("overwrite").parquet(lp)
    script = Path(__file__).with_name("feast_asof.py")
    ttl_arg = "none" if ttl is None else str(ttl.days)
    out = subprocess.run(
        [args.feast_python, str(script), fp, lp, ttl_arg],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise SystemExit("feast run failed")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "scale": args.scale,
        "variant": variant,
        "method": "feast 0.67 spark offline store",
        "labels": labels_n,
        "feature_rows": n_feats,
        "cold_s": res["cold_s"],
        "warm_s": res["warm_s"],
        "labels_per_s_warm": labels_n / res["warm_s"],
        "identical": tuple(res["checksum"]) == tuple(our_checksum),
        "jvm_peak_rss_mb": float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", choices=SCALES, default="S")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--variants", default="uniform,skewed,ttl_none")
    p.add_argument(
        "--feast-python",
        help="python of a virtualenv with feast[spark] (bench/feast_asof.py runs there)",
    )
    p.add_argument(
        "--no-baseline-for",
        default="",
        help="variants whose baseline is not run (the skewed baseline is quadratic in hot keys)",
    )
    args = p.parse_args()
    labels_n, keys = SCALES[args.scale]

    spark = bench_spark(args.driver_memory)
    rows = []
    for variant in args.variants.split(","):
        root = Path(tempfile.mkdtemp(prefix="bench_asof_"))
        try:
            skewed = variant == "skewed"
            ttl = None if variant == "ttl_none" else timedelta(days=90)
            feats_path, labels_path = make_data(spark, root, labels_n, keys, skewed)
            n_feats = spark.read.format("delta").load(feats_path).count()
            skip = variant in args.no_baseline_for.split(",")
            same = (
                "n/a"
                if skip
                else checksum(ours(spark, feats_path, labels_path, ttl))
                == checksum(baseline(spark, feats_path, labels_path, ttl))
            )
            methods = [("fstore union+carry", ours)] + (
                [] if skip else [("join+row_number", baseline)]
            )
            for name, fn in methods:
                cold = run(fn, spark, feats_path, labels_path, ttl)
                warm = run(fn, spark, feats_path, labels_path, ttl)
                rows.append(
                    {
                        "scale": args.scale,
                        "variant": variant,
                        "method": name,
                        "labels": labels_n,
                        "feature_rows": n_feats,
                        "cold_s": cold,
                        "warm_s": warm,
                        "labels_per_s_warm": labels_n / warm,
                        "identical": same,
                        "jvm_peak_rss_mb": jvm_peak_rss_mb(spark),
                    }
                )
            if not skip:
                print(f"{variant}: speed-up warm {rows[-1]['warm_s'] / rows[-2]['warm_s']:.2f}x")
            if args.feast_python:
                rows.append(
                    run_feast(
                        spark,
                        args,
                        root,
                        feats_path,
                        labels_path,
                        ttl,
                        variant,
                        labels_n,
                        n_feats,
                        checksum(ours(spark, feats_path, labels_path, ttl)),
                    )
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    report("asof", rows)
    spark.stop()


if __name__ == "__main__":
    main()
