"""Benchmark: windowed aggregation backfill and incremental vs a plain-PySpark baseline.

    .venv/bin/python bench/bench_aggregation.py --scale S     # 1M events, 10k entities, 180 d
    .venv/bin/python bench/bench_aggregation.py --scale M     # 10M events, 100k entities, 180 d
    .venv/bin/python bench/bench_aggregation.py --scale L --growth-only   # 30M events, 300k

fstore: one view with windows 7/30/90d x (sum, count, mean, min, max, stddev, last,
approx_count_distinct, recency) = 27 features, full backfill over 180 days, then an incremental
run after one more day of events is appended. Two plain-PySpark baselines in the same run, on
the same data, both written to Delta:

- *inexact* (:func:`baseline`, run first to warm the JVM up, and again later): daily
  pre-aggregation, then one ``Window.rangeBetween`` per window computing only sum, count and
  mean (9 features), with rows only on days with events (a 7 d count stays stale after a
  customer stops buying);
- *exact* (:mod:`exact_baseline`): the same 27 features at the same instants as the feature
  table (days with events and window exits), checked row by row against it; the bench exits
  non-zero when anything differs.

Then a training set over the 27 features for n/100 labels at random times, twice: as of the
last cadence instant (the as-of join over the feature table) and exact at each label's time
(``label_time_exact``: windows from the source events); for these rows "events_per_s" counts
labels. Prints seconds, events/s, rows out and the driver JVM's peak RSS during each run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import bench_spark, jvm_peak_rss_mb, report, reset_jvm_peak_rss, timed
from exact_baseline import REL_TOL, TOLERANCE, compare, exact_baseline, mismatch_examples

SCALES = {
    "XS": (100_000, 1_000),
    "S": (1_000_000, 10_000),
    "M": (10_000_000, 100_000),
    "L": (30_000_000, 300_000),
}
DAYS = 180
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def generate(
    spark, path: str, n: int, entities: int, day0: int, days: int, seed: int, hot: float = 0.0
) -> None:
    """Append ``n`` events over ``days`` days from ``day0`` to the Delta table at ``path``.

    ``hot``: the share of the events that goes to 1% of the entities (0: uniform).
    """
    from pyspark.sql import functions as F

    start = int(T0.timestamp()) + day0 * 86_400
    key = F.hash(F.col("id"), F.lit(seed))
    if hot:
        key = F.when(F.rand(seed + 3) < hot, key % max(entities // 100, 1)).otherwise(key)
    (
        spark.range(n, numPartitions=8)
        .select(
            F.concat(F.lit("c"), (key % entities).cast("string")).alias("customer_id"),
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


FUNCTIONS = [
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


def spend_view(
    name: str = "spend",
    windows: tuple[int | None, ...] = (7, 30, 90),
    path: str = "raw/events",
    ttl: str = "90d",
    source: str = "events",
):
    """The benchmarked view: windows (days; None: lifetime) x 9 functions, cadence 1 day."""
    from fstore_spark import Aggregation, DeltaSource, FeatureView

    aggs = [
        Aggregation(
            column=col,
            function=fn,
            window=None if w is None else f"{w}d",
            name=f"{fn}_{'life' if w is None else f'{w}d'}",
        )
        for w in windows
        for fn, col in FUNCTIONS
    ]
    return FeatureView(
        name=name,
        entities=["customer"],
        ttl=ttl,
        cadence="1d",
        aggregations=aggs,
        source=DeltaSource(
            name=source,
            path=path,
            timestamp_column="event_timestamp",
            created_timestamp_column="created_at",
        ),
    )


def run(spark, scale: str, name: str, events: int, job) -> tuple[dict[str, Any], Any]:
    """Time ``job()`` as one result row; it returns (rows out, result).

    Rows out may be a callable (a count of the written table), called after the timer stops.
    """
    reset_jvm_peak_rss(spark)
    with timed() as t:
        rows_out, result = job()
    peak = jvm_peak_rss_mb(spark)
    row = {
        "scale": scale,
        "run": name,
        "seconds": t["seconds"],
        "events_per_s": events / t["seconds"],
        "rows_out": rows_out() if callable(rows_out) else rows_out,
        "jvm_peak_rss_mb": peak,
    }
    return row, result


def check_exact(spark, store, exact_path: str) -> bool:
    """Compare the exact baseline's table with the feature table; print the outcome."""
    ours = store.read_view("spend")
    theirs = spark.read.format("delta").load(exact_path)
    rows, bad, loose = compare(ours, theirs)
    total = sum(bad.values())
    print(f"exact baseline vs fstore: {rows:,} rows (keys, feature_timestamp) compared, ", end="")
    print(f"{total} mismatches; tolerance: {TOLERANCE}")
    for check, k in bad.items():
        if k:
            print(f"  {check}: {k}")
            if not check.startswith("only in"):
                for r in mismatch_examples(ours, theirs, check):
                    print(f"    {r.asDict()}")
    within = {f: k for f, k in loose.items() if k}
    print(
        f"  floating-point values beyond a plain relative {REL_TOL:g} (within the tolerance): "
        + (", ".join(f"{f} {k}" for f, k in within.items()) or "none")
    )
    firsts = {f.rsplit("_", 1)[0]: f for f in reversed(within)}  # one per function
    for f in firsts.values():
        for r in mismatch_examples(ours, theirs, f, strict=True, limit=2):
            print(f"    {f}: {r.asDict()}")
    return total == 0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", choices=SCALES, default="S")
    p.add_argument("--driver-memory", default="8g")
    p.add_argument(
        "--growth-only",
        action="store_true",
        help="only the inexact baseline, the backfill and the incremental run (to compare scales)",
    )
    args = p.parse_args()
    n, entities = SCALES[args.scale]

    from fstore_spark import Entity, FeatureStore
    from fstore_spark.config import FeatureStoreConfig

    spark = bench_spark(args.driver_memory)
    root = Path(tempfile.mkdtemp(prefix="bench_agg_"))
    try:
        store = FeatureStore(
            config=FeatureStoreConfig.for_local(root, project="bench"), spark=spark
        )
        src_path = store.table_path("raw/events")
        with timed() as g:
            generate(spark, src_path, n, entities, 0, DAYS, seed=1)
        print(f"generated {n:,} events, {entities:,} entities, {DAYS} days: {g['seconds']:.1f}s")
        store.apply([Entity(name="customer", join_keys=["customer_id"]), spend_view()])
        ok = runs(spark, store, args.scale, n, entities, src_path, root, not args.growth_only)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    if not ok:
        sys.exit(1)


def training(
    store, spark, labels_n: int, entities: int, exact: bool, view: str = "spend", days: int = DAYS
):
    """A timed training set over all 27 features for ``labels_n`` labels at random times in the
    last 90 days (noop sink): as of the last cadence instant, or exact at each label's time."""
    from pyspark.sql import functions as F

    def go() -> tuple[int, None]:
        start = int(T0.timestamp()) + (days - 90) * 86_400
        labels = spark.range(labels_n, numPartitions=4).select(
            F.concat(F.lit("c"), (F.hash(F.col("id"), F.lit(7)) % entities).cast("string")).alias(
                "customer_id"
            ),
            F.timestamp_seconds(F.lit(start) + (F.rand(7) * 90 * 86_400).cast("long")).alias(
                "event_timestamp"
            ),
        )
        hf = store.get_historical_features(
            labels, [f"{view}:*"], label_time_exact=exact, log_to_mlflow=False
        )
        hf.to_spark().write.format("noop").mode("overwrite").save()
        return labels_n, None

    return go


def runs(
    spark, store, scale: str, n: int, entities: int, src_path: str, root: Path, full: bool
) -> bool:
    """The timed runs in order, their report, and the exact baseline's check.

    ``full=False`` (``--growth-only``) runs only the inexact baseline, the backfill and the
    incremental run: enough to compare scales where the exact baseline would take too long.
    """
    end = T0 + timedelta(days=DAYS)
    inexact, exact = str(root / "baseline"), str(root / "exact_baseline")

    def count(path: str):
        return lambda: spark.read.format("delta").load(path).count()

    def inexact_run() -> tuple[Any, None]:
        baseline(spark, src_path, inexact)
        return count(inexact), None

    def backfill() -> tuple[int, Any]:
        res = store.materialize("spend", T0, end)
        return res.rows_written, res

    def exact_run() -> tuple[Any, None]:
        exact_baseline(spark, src_path, exact, T0, end)
        return count(exact), None

    rows = {"b1": run(spark, scale, "inexact baseline 3 windows x 3 fns", n, inexact_run)[0]}
    rows["f"], res = run(spark, scale, "fstore backfill 3 windows x 9 fns", n, backfill)
    steps = {"backfill": res.steps}
    if full:
        rows["x"] = run(spark, scale, "exact baseline 3 windows x 9 fns", n, exact_run)[0]
    rows["b2"] = run(spark, scale, "inexact baseline (2nd run)", n, inexact_run)[0]
    ok = check_exact(spark, store, exact) if full else True
    labels_n = n // 100
    for key, exact_at_label in (("t1", False), ("t2", True)) if full else ():
        name = "exact at label time" if exact_at_label else "as of cadence"
        job = training(store, spark, labels_n, entities, exact_at_label)
        rows[key] = run(spark, scale, f"training set, {name} (labels)", labels_n, job)[0]
    day_n = n // DAYS
    generate(spark, src_path, day_n, entities, DAYS, 1, seed=2)

    def incremental() -> tuple[int, Any]:
        res = store.materialize_incremental("spend", end=end + timedelta(days=1), lateness="1d")
        return res.rows_written, res

    rows["i"], res = run(spark, scale, "fstore incremental +1 day", day_n, incremental)
    steps["incremental"] = res.steps
    report("aggregation", list(rows.values()))
    print_ratios({k: r["seconds"] for k, r in rows.items()})
    for name, st in steps.items():
        print(f"{name} steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items()))
    return ok


def print_ratios(sec: dict[str, float]) -> None:
    """The ratios the acceptance of the engine is stated in (those whose runs ran)."""
    fs = sec["f"]
    if "x" in sec:
        print(f"ratio backfill/exact baseline: {fs / sec['x']:.2f}")
    mean_inexact = (sec["b1"] + sec["b2"]) / 2
    print(f"ratio backfill/inexact baseline (mean of its 2 runs): {fs / mean_inexact:.2f}")
    print(f"ratio incremental/backfill: {sec['i'] / fs:.3f}")
    if "t2" in sec:
        print(
            f"ratio training set exact at label time / as of cadence: {sec['t2'] / sec['t1']:.2f}"
        )


if __name__ == "__main__":
    main()
