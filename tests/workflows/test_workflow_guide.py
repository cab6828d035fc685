"""The ML workflow guide (``ml_workflows_guide.md``) runs as written, and its results are right.

Every ``python`` block of the guide runs in order in one namespace, with only its imports
changed (``fstore`` -> ``fstore_spark``) and one more substitution: the guide exports to an
S3 bucket, which becomes a local folder here. The test makes the data the guide assumes (the
``transactions`` source, products, customer profiles, a second feature set for the A/B test)
and, after each block, checks what it produced against pandas / scipy computed independently.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fstore_spark import DeltaSource, Entity, FeatureStore, FeatureView, Field
from fstore_spark.workflows import binding

GUIDE = Path(__file__).with_name("ml_workflows_guide.md")
T0 = datetime(2023, 12, 1)
DAYS = 90
N_EVENTS = 4000
CUSTOMERS = [f"customer_{i:03d}" for i in range(200)]
PRODUCTS = [f"product_{i:02d}" for i in range(20)]
BUCKET = "s3://my-bucket/features/"


def guide_blocks() -> list[str]:
    """The guide's python blocks, imports pointed at fstore_spark."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [re.sub(r"\bfrom fstore\b", "from fstore_spark", b) for b in blocks]


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    level = dict(zip(CUSTOMERS, rng.uniform(0, 1, len(CUSTOMERS)), strict=True))
    cust = rng.choice(CUSTOMERS, N_EVENTS)
    lv = np.array([level[c] for c in cust])
    amount = rng.gamma(2.0, 20.0, N_EVENTS) * (1 + 4 * lv)
    amount[rng.uniform(0, 1, N_EVENTS) < 0.005] = np.nan  # a few missing amounts
    discount = np.where(rng.uniform(0, 1, N_EVENTS) < 0.85, np.nan, rng.uniform(0, 0.3, N_EVENTS))
    minutes = rng.integers(0, DAYS * 24 * 60, N_EVENTS)  # whole minutes: ties happen
    return pd.DataFrame(
        {
            "customer_id": cust,
            "product_id": rng.choice(PRODUCTS, N_EVENTS),
            "transaction_date": [T0 + timedelta(minutes=int(m)) for m in minutes],
            "purchase_amount": amount,
            "quantity": rng.integers(1, 6, N_EVENTS),
            "discount": discount,
            "conversion": rng.uniform(0, 1, N_EVENTS) < 0.1 + 0.8 * lv,
        }
    )


def _write(spark: Any, pdf: pd.DataFrame, schema: str, path: str) -> None:
    spark.createDataFrame(pdf, schema).write.format("delta").mode("overwrite").save(path)


@pytest.fixture()
def project(spark, tmp_path, redis_url, mlflow_uri, webhook_receiver, monkeypatch):  # type: ignore[no-untyped-def]
    """A project with the guide's data; ``FSTORE_CONFIG`` points at its config."""
    root = tmp_path / "lakehouse"
    conf = tmp_path / "feature_store.yaml"
    conf.write_text(
        json.dumps(
            {
                "project": "shop",
                "lakehouse": {"root": str(root)},
                "online_store": {"url": redis_url},
                "mlflow": {"tracking_uri": mlflow_uri},
                "alerts": {"slack": {"webhook_url": webhook_receiver.url + "/services/T/B/X"}},
            }
        )
    )
    monkeypatch.setenv("FSTORE_CONFIG", str(conf))
    monkeypatch.setattr(binding, "_DEFAULT", {})
    setup = FeatureStore(spark=spark)
    events = _events()
    _write(
        spark,
        events,
        "customer_id string, product_id string, transaction_date timestamp, "
        "purchase_amount double, quantity bigint, discount double, conversion boolean",
        setup.table_path("raw/transactions"),
    )
    rng = np.random.default_rng(5)
    products = pd.DataFrame(
        {
            "product_id": PRODUCTS,
            "ts": [T0 - timedelta(days=1)] * len(PRODUCTS),
            "price": rng.uniform(5, 500, len(PRODUCTS)).round(2),
            "category": rng.choice(["books", "games", "tools"], len(PRODUCTS)),
        }
    )
    _write(
        spark,
        products,
        "product_id string, ts timestamp, price double, category string",
        setup.table_path("raw/products"),
    )
    profiles = pd.DataFrame(
        {
            "customer_id": CUSTOMERS,
            "ts": [T0 - timedelta(days=1)] * len(CUSTOMERS),
            "customer_category": rng.choice(["gold", "silver", "bronze"], len(CUSTOMERS)),
        }
    )
    _write(
        spark,
        profiles,
        "customer_id string, ts timestamp, customer_category string",
        setup.table_path("raw/profiles"),
    )
    customer = Entity(name="customer", join_keys={"customer_id": "string"})
    product = Entity(name="product", join_keys={"product_id": "string"})
    setup.apply(
        [
            customer,
            product,
            DeltaSource(
                name="transactions", path="raw/transactions", timestamp_column="transaction_date"
            ),
            FeatureView(
                name="product_features",
                entities=[product],
                source=DeltaSource(name="products", path="raw/products", timestamp_column="ts"),
                features=[
                    Field(name="price", dtype="float64"),
                    Field(name="category", dtype="string"),
                ],
            ),
            FeatureView(
                name="customer_profile",
                entities=[customer],
                source=DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts"),
                features=[Field(name="customer_category", dtype="string")],
            ),
        ]
    )
    for view in ("product_features", "customer_profile"):
        setup.materialize(view, T0 - timedelta(days=1), T0 + timedelta(days=DAYS + 1))
    return {
        "setup": setup,
        "events": events,
        "products": products.set_index("product_id"),
        "export": tmp_path / "export",
        "slack": webhook_receiver,
        "transactions_df": spark.read.format("delta").load(setup.table_path("raw/transactions")),
    }


def run(block: str, ns: dict[str, Any]) -> None:
    exec(compile(block, "ml_workflows_guide.md", "exec"), ns)  # noqa: S102 - the guide's code


def test_the_workflow_guide_runs_as_written(project) -> None:  # type: ignore[no-untyped-def]
    blocks = guide_blocks()
    assert len(blocks) == 9
    ns: dict[str, Any] = {"transactions_df": project["transactions_df"]}
    events: pd.DataFrame = project["events"]

    # 1. feature engineering: a real aggregated view, backfilled; an encoder attached
    run(blocks[0], ns)
    store: FeatureStore = ns["store"]
    check_feature_group(store, events)
    entry = store.registry.get("transformation", "customer_profile:customer_category")
    assert entry.definition["encoder"]["method"] == "target"

    # 2. feature selection over the group
    run(blocks[1], ns)
    corr = ns["corr_matrix"]
    numeric = {
        f"{f}_{c}_30d" for f in ("mean", "sum") for c in ("purchase_amount", "quantity", "discount")
    } | {"count_events_30d"}
    assert set(corr.columns) == set(corr.index) == numeric
    assert np.allclose(np.diag(corr.loc[sorted(numeric), sorted(numeric)]), 1.0)
    important = ns["important_features"]
    assert 1 <= len(important) <= 10
    assert all(f.startswith("customer_behavior:") for f in important)
    # conversion follows the customer's spending level: an amount feature ranks first
    assert "purchase_amount" in important[0]

    # 3. a point-in-time training set, split in time
    run(blocks[2], ns)
    check_training_set(ns, events, project["products"])

    # 4. a feature set version, exported (to a local folder instead of S3)
    run(blocks[3].replace(BUCKET, str(project["export"])), ns)
    fs = ns["feature_set"]
    assert fs.id == "fraud_detection_v1@v1"
    assert dict(fs.metadata)["author"] == "team_ml"
    exported = store.spark.read.parquet(str(project["export"] / "customer_behavior"))
    pinned = store.read_view(
        "customer_behavior", as_of_version=fs.view_versions["customer_behavior"]
    )
    assert exported.count() == pinned.count() > 0

    # 5. quality checks: a rule on the raw amount the set's features come from
    run(blocks[4], ns)
    report = ns["validation_results"]
    assert report.success
    assert [r.expectation.kind for r in report.results] == ["not_null", "between"]
    assert report.results[1].evaluated == int(events["purchase_amount"].notna().sum())
    assert report.results[0].unexpected == int(events["purchase_amount"].isna().sum())

    # 6. drift of the test split against January's feature rows, checked against scipy
    run(blocks[5], ns)
    check_drift(store, ns)

    # 7. online serving: values synced to Redis (as a deployment's sync would have done)
    store.sync_online()
    run(blocks[6], ns)
    check_online(store, ns)

    # 8. monitoring: missing values over 5% alert on Slack
    run(blocks[7], ns)
    check_monitoring(store, ns, project["slack"])

    # 9. an A/B test of two feature sets
    store.create_feature_set("fraud_detection_v2", important[:3])
    run(blocks[8], ns)
    results = ns["results"]
    assert results["feature_sets"] == {
        "control": "fraud_detection_v1@v1",
        "treatment": "fraud_detection_v2@v1",
    }
    assert results["predictions"] == {"control": 0, "treatment": 0}
    assert results["ends_at"] - results["started_at"] == timedelta(days=7)


def check_feature_group(store: FeatureStore, events: pd.DataFrame) -> None:
    """The group's windows equal a brute-force sum over ``(t - 30d, t]``."""
    view = store.get_feature_view("customer_behavior")
    assert view.is_aggregated and view.entities == ("customer",)
    table = store.read_view("customer_behavior").toPandas()
    assert len(table) > 0
    sample = table.sample(40, random_state=1)
    by_customer = {c: g for c, g in events.groupby("customer_id")}
    for row in sample.itertuples():
        t = pd.Timestamp(row.feature_timestamp).tz_localize(None)
        g = by_customer[row.customer_id]
        inside = g[(g.transaction_date > t - timedelta(days=30)) & (g.transaction_date <= t)]
        assert row.count_events_30d == len(inside)
        amounts = inside["purchase_amount"].dropna()
        if len(amounts):
            assert row.sum_purchase_amount_30d == pytest.approx(amounts.sum(), rel=1e-9)
            assert row.mean_purchase_amount_30d == pytest.approx(amounts.mean(), rel=1e-9)
        else:
            assert pd.isna(row.mean_purchase_amount_30d)


def check_training_set(ns: dict[str, Any], events: pd.DataFrame, products: pd.DataFrame) -> None:
    training = ns["training_data"].toPandas()
    jan = events[
        (events.transaction_date >= "2024-01-01") & (events.transaction_date < "2024-02-01")
    ]
    assert len(training) == len(jan)
    assert {"sum_purchase_amount_30d", "price", "category", "conversion"} <= set(training.columns)
    expected_price = training["product_id"].map(products["price"])
    assert (training["price"] == expected_price).all()
    train, test = ns["train_df"].toPandas(), ns["test_df"].toPandas()
    assert len(train) + len(test) == len(training)
    assert train["transaction_date"].max() < test["transaction_date"].min()
    assert 0.15 < len(test) / len(training) < 0.25


def check_drift(store: FeatureStore, ns: dict[str, Any]) -> None:
    drift = ns["drift_report"]
    fs = ns["feature_set"]
    features = {f.split(":")[1] for f in fs.features}
    assert set(drift.columns) == features & set(ns["test_df"].columns)
    base = store.read_view(
        "customer_behavior", as_of_version=fs.view_versions["customer_behavior"]
    ).toPandas()
    ts = base["feature_timestamp"].dt.tz_localize(None)
    jan = base[(ts >= "2024-01-01") & (ts < "2024-01-31")]
    cur = ns["test_df"].toPandas()
    for col in sorted(drift.columns):
        ref = stats.ks_2samp(jan[col].dropna(), cur[col].dropna())
        assert drift[col].p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12), col
        assert drift[col].drifted == (ref.pvalue < 0.05)


def check_online(store: FeatureStore, ns: dict[str, Any]) -> None:
    online = ns["online_features"].to_dict(include_status=True)
    assert online["customer_id"] == ["customer_123"]
    names = [f.split(":")[1] for f in ns["feature_set"].features]
    # the newest values are from 2024, older than the set's 30-minute cache_ttl
    assert all(online[f"{n}__status"] == ["OUTSIDE_MAX_AGE"] for n in names)
    fresh = store.get_online_features(
        list(ns["feature_set"].features), [{"customer": "customer_123"}]
    ).to_dict()
    table = store.read_view("customer_behavior").toPandas()
    latest = table[table.customer_id == "customer_123"].sort_values("feature_timestamp").iloc[-1]
    for n in names:
        if pd.isna(latest[n]):
            assert fresh[n] == [None]
        else:
            assert fresh[n][0] == pytest.approx(latest[n], rel=1e-9)
    assert store.get_online_serving("fraud_detection_v1")["cache_ttl"] == "30m"


def check_monitoring(store: FeatureStore, ns: dict[str, Any], slack: Any) -> None:
    table = store.read_view("customer_behavior").toPandas()
    names = [f.split(":")[1] for f in ns["feature_set"].features]
    expected = {n for n in names if table[n].isna().mean() > 0.05}
    assert expected, "the data has a mostly-missing feature (discount)"
    alerted = {
        c
        for m in slack.received
        for c in names
        if f"missing_values on {c}:" in m["body"]["text"]
        or f"null_fraction on {c}:" in m["body"]["text"]
    }
    assert alerted == expected
    assert all(set(m["body"]) == {"text", "blocks"} for m in slack.received)
    entry = store.registry.get("schedule", "monitor:fraud_detection_v1@v1").definition
    assert entry["frequency"] == "1h" and entry["rules"][0]["channel"] == "slack"
