"""spark-submit entry point: materialize a feature view (backfill or incremental).

    spark-submit jobs/compute_features.py --config conf/feature_store.yaml \
        --view customer_transaction_features --start 2024-01-01 --end 2024-03-31
    spark-submit jobs/compute_features.py --config conf/feature_store.yaml \
        --view customer_transaction_features --incremental

On a cluster, pass Delta with the launcher (``--packages io.delta:delta-spark_4.2_2.13:4.4.0``
or the cluster's classpath); locally, the JARs fetched by ``make jars`` are used. Prints the
run result as JSON and exits non-zero on error.
"""

from __future__ import annotations

import argparse
import json
import sys

from fstore_spark import FeatureStore, FstoreError, get_spark, load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="path of feature_store.yaml")
    p.add_argument("--view", required=True, action="append", help="feature view (repeatable)")
    p.add_argument("--start", help="first feature timestamp, ISO 8601 UTC (backfill)")
    p.add_argument("--end", help="last feature timestamp, ISO 8601 UTC")
    p.add_argument("--incremental", action="store_true", help="continue from the last run")
    p.add_argument(
        "--lateness",
        default=None,
        help="incremental: cap on how old a late event may be (change feed: default none), "
        "or how far back to look for new events (watermark: default 2d)",
    )
    args = p.parse_args(argv)
    if not args.incremental and not (args.start and args.end):
        p.error("give --start and --end, or --incremental")
    try:
        cfg = load_config(args.config)
        spark = get_spark(cfg.spark)
        print(f"compute_features: Spark master {spark.conf.get('spark.master')}", file=sys.stderr)
        store = FeatureStore(config=cfg, spark=spark)
        for view in args.view:
            if args.incremental:
                result = store.materialize_incremental(view, end=args.end, lateness=args.lateness)
            else:
                result = store.materialize(view, args.start, args.end)
            print(json.dumps(result.to_dict()))
    except FstoreError as exc:
        print(f"compute_features: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
