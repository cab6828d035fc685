"""The end-to-end flow every deployment runs: the same calls, the same data, comparable results.

apply -> backfill -> the same backfill again (diff and fingerprints) -> append new and late
events -> incremental from the source's change feed -> training set in an MLflow run -> feature
set and its training set -> statistics and drift -> log_model and score_batch -> sync to Redis
-> online read -> a backfill of the incremental's range (it must not change the table).

Run in-process with :func:`run` (the local lane), or as a script (``python deploy_flow.py
<lakehouse> <redis_url> <mlflow_uri> <out_dir> <first day, ISO> full|backfill``), which takes its
session from :func:`fstore_spark.get_spark`: a Spark Connect session when ``SPARK_REMOTE`` is
set, the launcher's when started by ``spark-submit``. Results go to ``<out_dir>/result.json``
as plain JSON (rows sorted) so that lanes compare field by field.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DAY = timedelta(days=1)
CUSTOMERS = [f"c{i:02d}" for i in range(10)]
TXN_SCHEMA = "customer_id string, ts timestamp, amount double"


def first_day() -> datetime:
    """The first day of data: 14 days ago at midnight UTC (recent data is served online)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - 14 * DAY


def _txns(seed: int, t0: datetime, days: range, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "ts": [
                t0 + timedelta(days=int(d), minutes=int(m))
                for d, m in zip(rng.choice(list(days), n), rng.integers(0, 1440, n), strict=True)
            ],
            # cents with a fraction: float sums whose last bits depend on the order of addition
            "amount": rng.integers(1, 20_000, n) / 100 + 1 / 3,
        }
    )


def _labels(t0: datetime) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 30
    return pd.DataFrame(
        {
            "customer_id": rng.choice(CUSTOMERS, n),
            "event_timestamp": pd.to_datetime(
                [t0 + timedelta(hours=int(h)) for h in rng.integers(24, 12 * 24, n)], utc=True
            ),
            "label": rng.integers(0, 2, n).astype(float),
        }
    )


def _definitions() -> list[Any]:
    from fstore_spark import Aggregation, DeltaSource, Entity, FeatureView, Field

    txns = DeltaSource(name="txns", path="raw/txns", timestamp_column="ts")
    profiles = DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts")
    return [
        Entity(name="customer", join_keys=["customer_id"]),
        FeatureView(
            name="txn",
            entities=["customer"],
            source=txns,
            ttl="30d",
            cadence="1d",
            aggregations=[
                Aggregation(column="amount", function="sum", window="3d", name="amount_3d"),
                Aggregation(column="amount", function="mean", window="7d", name="mean_7d"),
                Aggregation(column="amount", function="stddev", window="7d", name="std_7d"),
                Aggregation(column="amount", function="max", window="3d", name="max_3d"),
                Aggregation(column="*", function="count", name="n_life"),
            ],
        ),
        FeatureView(
            name="profile",
            entities=["customer"],
            source=profiles,
            ttl="60d",
            features=[Field(name="age", dtype="int64"), Field(name="city", dtype="string")],
        ),
    ]


def _records(pdf: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, sorted, timestamps as ISO strings."""
    pdf = pdf.copy()
    for c in pdf.columns:
        if pd.api.types.is_datetime64_any_dtype(pdf[c]):
            pdf[c] = pdf[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    pdf = pdf.sort_values(list(pdf.columns)).reset_index(drop=True)
    return json.loads(pdf.to_json(orient="records", double_precision=15))


def _session_facts(spark: Any) -> dict[str, Any]:
    """Which deployment this is: Connect or classic, and for classic its master and executors."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        return {"connect": True}
    jsc = spark.sparkContext._jsc.sc()  # test probe only (classic): executors need the JVM
    return {
        "connect": False,
        "master": spark.conf.get("spark.master"),
        "app_name": spark.sparkContext.appName,
        "executors": jsc.getExecutorMemoryStatus().size() - 1,  # minus the driver
    }


class _Steps:
    """Prints each step's seconds to stderr (where a slow lane spends its time)."""

    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        print(f"flow step {name}: {now - self.t:.1f}s", file=sys.stderr, flush=True)
        self.t = now


def _rematerialized(store: Any, v1: int, v2: int) -> dict[str, Any]:
    """What a second backfill of unchanged data changed: the diff and both fingerprints."""
    from fstore_spark.offline.training import dataframe_fingerprint

    diff = store.diff_versions("txn", v1, v2).to_dict()
    prints = [
        dataframe_fingerprint(store.read_view("txn", as_of_version=v).drop("created_timestamp"))
        for v in (v1, v2)
    ]
    kinds = {k: diff[k] for k in ("added", "removed", "changed", "unchanged")}
    return {**kinds, "same_fingerprint": prints[0] == prints[1]}


def run(
    spark: Any, root: Path, redis_url: str, mlflow_uri: str, t0: datetime, *, full: bool = True
) -> dict[str, Any]:
    """Run the flow on ``spark`` in the lakehouse ``root``; return what the lanes compare.

    ``t0``: the first day of data (recent: online reads are "now"). ``full=False`` stops after
    the second backfill (the multi-executor lane: what it proves is the launcher's settings
    and that a rematerialization of the same data changes nothing).
    """
    import mlflow

    from fstore_spark import FeatureStore, FeatureStoreConfig

    cfg = FeatureStoreConfig.for_local(
        root,
        project="flow",
        online_store={"url": redis_url, "key_prefix": "flow"},
        mlflow={"tracking_uri": mlflow_uri, "experiment": "flow"},
    )
    store = FeatureStore(config=cfg, spark=spark)
    step = _Steps()
    store.apply(_definitions())
    step("apply")
    raw = store.table_path("raw/txns")
    events = spark.createDataFrame(_txns(1, t0, range(0, 8), 120), TXN_SCHEMA)
    # the change data feed on: the incremental run below takes late events from it
    events.write.format("delta").option("delta.enableChangeDataFeed", "true").save(raw)
    profiles = pd.DataFrame(
        {"customer_id": CUSTOMERS, "ts": [t0] * len(CUSTOMERS), "age": range(20, 30)}
    ).assign(city=lambda d: [f"city_{a % 3}" for a in d["age"]])
    spark.createDataFrame(
        profiles, "customer_id string, ts timestamp, age bigint, city string"
    ).write.format("delta").save(store.table_path("raw/profiles"))
    step("sources")

    out: dict[str, Any] = {"session": _session_facts(spark)}
    first = store.materialize("txn", t0, t0 + 8 * DAY)
    store.materialize("profile", t0 - DAY, t0 + 12 * DAY)
    again = store.materialize("txn", t0, t0 + 8 * DAY)  # the same data, materialized again
    step("backfill twice")
    out["rematerialize"] = _rematerialized(store, first.table_version, again.table_version)
    out["backfilled"] = _records(store.read_view("txn").drop("created_timestamp").toPandas())
    step("diff+fingerprints")
    if not full:
        return out
    # new days and late events, days 2-6 far older than the default lateness (2 days before
    # the last run's end, day 8): the change feed reports them and the run takes every one
    more = _txns(2, t0, range(2, 12), 60)
    spark.createDataFrame(more, TXN_SCHEMA).write.format("delta").mode("append").save(raw)
    inc = store.materialize_incremental("txn", end=t0 + 12 * DAY)
    out["incremental"] = {
        "start": inc.start.isoformat(),
        "late_events_quarantined": inc.late_events_quarantined,
    }
    step("append+incremental")

    labels = _labels(t0)
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("flow")
    refs = ["txn:*", "profile:age", "profile:city"]
    with mlflow.start_run() as run_info:
        hist = store.get_historical_features(labels, refs)
        training = hist.to_pandas()
    assert not training.attrs, "to_pandas() returns a plain frame (Connect adds plan metrics)"
    out["training"] = _records(training)
    out["training_logged"] = hist.mlflow_run_id == run_info.info.run_id
    step("training set")

    fs = store.create_feature_set("churn", ["txn:amount_3d", "txn:n_life", "profile:age"])
    by_set = store.get_training_set(fs.id, labels).to_pandas()
    out["feature_set"] = {"id": fs.id, "rows": _records(by_set)}
    out["feature_tables"] = {
        v: _records(store.read_view(v).drop("created_timestamp").toPandas())
        for v in ("txn", "profile")
    }
    step("feature set+tables")
    _quality_and_model(store, out, labels, fs.id, first.table_version)
    step("statistics, drift, model, score")

    syncs = store.sync_online()
    out["sync"] = sorted((r.view, r.keys_written) for r in syncs)
    step("sync")
    online = store.get_online_features(
        ["txn:amount_3d", "txn:n_life", "profile:age", "profile:city"],
        [{"customer_id": c} for c in CUSTOMERS],
    )
    out["online"] = online.to_dict()
    step("online read")
    store.materialize("txn", t0, t0 + 12 * DAY)
    out["backfill_after_incremental"] = _records(
        store.read_view("txn").drop("created_timestamp").toPandas()
    )
    step("backfill after incremental")
    return out


def _quality_and_model(store: Any, out: dict[str, Any], labels: Any, fs_id: str, v: int) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    stats = store.feature_statistics("txn").to_dict()
    out["statistics"] = {"rows": stats["rows"], "columns": stats["columns"]}
    drift = store.detect_drift("txn", baseline_version=v).to_dict()
    out["drift"] = {k: drift[k] for k in sorted(drift) if k != "computed_at"}
    by_set = store.get_training_set(fs_id, labels).to_pandas()
    inputs = by_set[["amount_3d", "n_life", "age"]].fillna(0)
    model = LogisticRegression().fit(inputs, by_set["label"])
    with mlflow.start_run():
        info = store.log_model(model, "model", "sklearn", store.get_training_set(fs_id, labels))
    scored = store.score_batch(info.model_uri, labels[["customer_id", "event_timestamp"]])
    out["scores"] = _records(scored.toPandas())


def main(argv: list[str]) -> None:
    from fstore_spark import get_spark

    root, redis_url, mlflow_uri, out_dir, t0, full = argv
    spark = get_spark()
    start = datetime.fromisoformat(t0)
    result = run(spark, Path(root), redis_url, mlflow_uri, start, full=full == "full")
    Path(out_dir, "result.json").write_text(json.dumps(result, default=str, sort_keys=True))
    print("FLOW-OK", json.dumps(result["session"]))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
