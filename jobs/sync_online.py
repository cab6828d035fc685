"""spark-submit entry point: sync feature views to the Redis online store.

    spark-submit jobs/sync_online.py --config conf/feature_store.yaml \
        --view customer_transaction_features            # incremental (full the first time)
    spark-submit jobs/sync_online.py --config conf/feature_store.yaml --full
    spark-submit jobs/sync_online.py --config conf/feature_store.yaml --due   # cron / scheduler

Without --view every online view is synced. The Redis writes run on the executors (one
pipelined connection per partition); the driver only sums per-partition counts. Prints one JSON
result per view and exits non-zero on error (a failed run leaves the sync state where it was,
so rerunning resumes).
"""

from __future__ import annotations

import argparse
import json
import sys

from fstore_spark import FeatureStore, FstoreError, get_spark, load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="path of feature_store.yaml")
    p.add_argument("--view", action="append", help="feature view (repeatable; default: all)")
    p.add_argument("--full", action="store_true", help="full reload into a new namespace")
    p.add_argument("--due", action="store_true", help="only views whose update_frequency elapsed")
    p.add_argument("--partitions", type=int, default=None, help="writer tasks (default: cores)")
    args = p.parse_args(argv)
    if args.due and (args.view or args.full):
        p.error("--due picks the views itself; do not combine it with --view or --full")
    try:
        cfg = load_config(args.config)
        store = FeatureStore(config=cfg, spark=get_spark(cfg.spark))
        mode = "full" if args.full else "incremental"
        if args.due:
            results = store.sync_online_due()
        elif args.view:
            results = [
                store.sync_online(v, mode=mode, partitions=args.partitions) for v in args.view
            ]
        else:
            results = store.sync_online(mode=mode, partitions=args.partitions)
        for result in results:
            print(json.dumps(result.to_dict()), flush=True)
    except FstoreError as exc:
        print(f"sync_online: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
