"""Benchmark: hot entities and long windows in the windowed aggregation.

    .venv/bin/python bench/bench_aggregation_hot.py --scale S   # 1M events, 10k entities, 400 d

Two sources of the same size over 400 days: *uniform* (events spread over the entities) and
*hot* (half the events on 1% of the entities: at S, 100 entities hold ~5,000 events each). One
view on each: windows 7 d, 365 d and lifetime x the 9 functions of ``bench_aggregation.py`` =
27 features. For each view, in one process: backfill, training set for n/100 labels as of the
cadence and exact at each label's time, then one more day appended and an incremental run.

Besides seconds, rows and the driver JVM's peak RSS (local mode: the executors' memory too),
each run prints its longest task and the worst ratio of a stage's longest task to its median
task (Spark UI REST API): a hot entity that lands in one task shows there. The driver has 3 GB
(``--driver-memory``): the 365-day and lifetime windows must fit in it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import bench_spark, last_stage_id, report, task_skew
from bench_aggregation import SCALES, T0, generate, run, spend_view, training

DAYS = 400
WINDOWS = (7, 365, None)
VIEWS = {"uniform": 0.0, "hot": 0.5}  # view name: the share of events on 1% of the entities


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scale", choices=SCALES, default="S")
    p.add_argument("--driver-memory", default="3g")
    args = p.parse_args()
    n, entities = SCALES[args.scale]

    from fstore_spark import Entity, FeatureStore
    from fstore_spark.config import FeatureStoreConfig

    spark = bench_spark(args.driver_memory, ui=True)  # task summaries: the UI's REST API
    root = Path(tempfile.mkdtemp(prefix="bench_agg_hot_"))
    try:
        store = FeatureStore(
            config=FeatureStoreConfig.for_local(root, project="bench"), spark=spark
        )
        views = [Entity(name="customer", join_keys=["customer_id"])]
        for name, hot in VIEWS.items():
            path = f"raw/{name}"
            generate(spark, store.table_path(path), n, entities, 0, DAYS, seed=1, hot=hot)
            views.append(spend_view(name, WINDOWS, path, ttl=f"{DAYS}d", source=f"{name}_events"))
        print(f"generated 2 x {n:,} events, {entities:,} entities, {DAYS} days")
        store.apply(views)
        rows = runs(spark, store, args.scale, n, entities)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    report("aggregation_hot", rows)


def runs(spark, store, scale: str, n: int, entities: int) -> list[dict[str, Any]]:
    """The timed runs, each with its task skew: backfills, training sets, incremental runs."""
    end = T0 + timedelta(days=DAYS)
    out: list[dict[str, Any]] = []

    def timed_run(name: str, events: int, job) -> None:  # type: ignore[no-untyped-def]
        before = last_stage_id(spark)
        row, _ = run(spark, scale, name, events, job)
        out.append({**row, **task_skew(spark, before)})

    def backfill(view: str):  # type: ignore[no-untyped-def]
        return lambda: (store.materialize(view, T0, end).rows_written, None)

    def incremental(view: str):  # type: ignore[no-untyped-def]
        def go() -> tuple[int, None]:
            res = store.materialize_incremental(view, end=end + timedelta(days=1), lateness="1d")
            return res.rows_written, None

        return go

    for view in VIEWS:
        timed_run(f"{view}: backfill", n, backfill(view))
    labels = n // 100
    for view in VIEWS:
        for exact in (False, True):
            job = training(store, spark, labels, entities, exact, view=view, days=DAYS)
            timed_run(f"{view}: training set, {'label time' if exact else 'as of'}", labels, job)
    for view, hot in VIEWS.items():
        path = store.table_path(f"raw/{view}")
        generate(spark, path, n // DAYS, entities, DAYS, 1, seed=2, hot=hot)
        timed_run(f"{view}: incremental +1 day", n // DAYS, incremental(view))
    return out


if __name__ == "__main__":
    main()
