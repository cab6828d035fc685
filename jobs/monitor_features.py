"""spark-submit entry point: check feature views against a monitoring plan, send alerts.

    spark-submit jobs/monitor_features.py --config conf/feature_store.yaml \
        --rules conf/monitoring.yaml [--view customer_transaction_features] [--fail-on critical]

Run it after each materialization, or on a schedule (cron, a Databricks job). For every view of
the plan (``conf/monitoring.yaml``, see :func:`fstore_spark.quality.load_monitoring`) it
computes the statistics of the latest Delta version (kept per version), validates the
expectations, tests drift against the baseline, sends the alerts to the plan's channels and
appends the check to ``_monitoring/<view>``. Prints one JSON line per view. Exit code: 0, or 3
when an alert at or above ``--fail-on`` was raised (``never`` to always exit 0), 1 on error.
"""

from __future__ import annotations

import argparse
import json
import sys

from fstore_spark import FeatureStore, FstoreError, get_spark, load_config
from fstore_spark.quality import load_monitoring

_LEVELS = {"warning": 1, "critical": 2, "never": 3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--config", required=True, help="path of feature_store.yaml")
    p.add_argument("--rules", required=True, help="path of the monitoring plan (YAML)")
    p.add_argument("--view", action="append", help="only these views of the plan (repeatable)")
    p.add_argument("--fail-on", choices=sorted(_LEVELS), default="critical")
    args = p.parse_args(argv)
    try:
        plans = load_monitoring(args.rules)  # validated before any Spark work
        cfg = load_config(args.config)
        store = FeatureStore(config=cfg, spark=get_spark(cfg.spark))
        worst = 0
        for result in store.run_monitoring(plans, views=args.view):
            worst = max([worst, *[_LEVELS[a.severity] for a in result.alerts]])
            print(json.dumps(result.to_dict()), flush=True)
    except FstoreError as exc:
        print(f"monitor_features: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 3 if worst >= _LEVELS[args.fail_on] else 0


if __name__ == "__main__":
    sys.exit(main())
