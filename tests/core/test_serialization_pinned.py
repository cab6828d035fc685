"""The dict form and hash of every definition class, pinned to fixed values.

``definition_hash`` over ``to_dict()`` is stored in existing registries and MLflow runs: if the
dict form of an unchanged definition ever changes (a key, its order, an encoding such as
``"14d"`` or the ordered ``{"name", "dtype"}`` pairs), stored hashes stop matching. The expected
values below were produced by the hand-written serialisation that the field-driven codec
replaced; they must never be regenerated from the current code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fstore_spark.core import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    Field,
    ParquetSource,
    definition_hash,
    from_dict,
)


def _examples() -> dict[str, Any]:
    """One fixed example per class and per notable option (names, table, lifetime...)."""
    customer = Entity(
        name="customer",
        join_keys={"customer_id": "string"},
        description="A customer",
        tags={"team": "risk", "area": "crm"},
    )
    age = Field(name="age", dtype="int", description="Age in years", default=-1)
    payments = DeltaSource(
        name="customer_transactions",
        path="data/delta/customer_transactions",
        timestamp_column="event_timestamp",
        created_timestamp_column="created_at",
        schema={"customer_id": "string", "amount": "double", "status": "str"},
        description="Payments",
    )
    clicks = ParquetSource(
        name="clicks",
        path="data/raw/clicks",
        timestamp_column="ts",
        schema={"ts": "timestamp", "page": "string"},
    )
    spent = Aggregation(
        column="amount",
        function="SUM",
        window="2w",
        filter="status == 'settled' and amount>0",
        description="Spent",
    )
    last_seen = Aggregation(column="*", function="recency", name="last_seen_days")
    return {
        "entity": customer,
        "entity_names": Entity(name="order_line", join_keys=["order_id", "line_no"]),
        "field": age,
        "delta_source_path": payments,
        "delta_source_table": DeltaSource(
            name="orders", table="main.sales.orders", timestamp_column="ts", partition_column="day"
        ),
        "parquet_source": clicks,
        "aggregation": spent,
        "aggregation_lifetime": last_seen,
        "feature_view_aggregated": FeatureView(
            name="customer_transaction_features",
            entities=[customer],
            source=payments,
            ttl="90d",
            aggregations=[
                spent,
                last_seen,
                Aggregation(column="*", function="count", window="30d", name="tx_count_30d"),
            ],
            cadence="1d",
            tags={"team": "risk"},
            owner="risk-team",
            description="Spend",
            online=False,
        ),
        "feature_view_projection": FeatureView(
            name="click_features",
            entities=["customer"],
            source=clicks,
            features=[Field(name="page", dtype="string", default="home"), age],
        ),
        "feature_set": FeatureSet(
            name="churn_inputs",
            features=["customer_transaction_features:*", "click_features:page"],
            metadata={"model": "churn", "version": 3, "ratio": 0.5, "live": True},
            description="Inputs",
        ),
    }


EXPECTED_DICTS: dict[str, Any] = {
    "entity": {
        "kind": "entity",
        "name": "customer",
        "join_keys": [{"name": "customer_id", "dtype": "string"}],
        "description": "A customer",
        "tags": {"area": "crm", "team": "risk"},
    },
    "entity_names": {
        "kind": "entity",
        "name": "order_line",
        "join_keys": [
            {"name": "order_id", "dtype": "string"},
            {"name": "line_no", "dtype": "string"},
        ],
        "description": "",
        "tags": {},
    },
    "field": {"name": "age", "dtype": "int64", "description": "Age in years", "default": -1},
    "delta_source_path": {
        "kind": "delta_source",
        "name": "customer_transactions",
        "path": "data/delta/customer_transactions",
        "table": None,
        "timestamp_column": "event_timestamp",
        "created_timestamp_column": "created_at",
        "partition_column": None,
        "schema": [
            {"name": "customer_id", "dtype": "string"},
            {"name": "amount", "dtype": "float64"},
            {"name": "status", "dtype": "string"},
        ],
        "description": "Payments",
    },
    "delta_source_table": {
        "kind": "delta_source",
        "name": "orders",
        "path": None,
        "table": "main.sales.orders",
        "timestamp_column": "ts",
        "created_timestamp_column": None,
        "partition_column": "day",
        "schema": None,
        "description": "",
    },
    "parquet_source": {
        "kind": "parquet_source",
        "name": "clicks",
        "path": "data/raw/clicks",
        "timestamp_column": "ts",
        "created_timestamp_column": None,
        "partition_column": None,
        "schema": [{"name": "ts", "dtype": "timestamp"}, {"name": "page", "dtype": "string"}],
        "description": "",
    },
    "aggregation": {
        "column": "amount",
        "function": "sum",
        "window": "14d",
        "name": "sum_amount_14d",
        "filter": "status = 'settled' AND amount > 0",
        "description": "Spent",
    },
    "aggregation_lifetime": {
        "column": "*",
        "function": "recency",
        "window": None,
        "name": "last_seen_days",
        "filter": None,
        "description": "",
    },
    "feature_view_aggregated": {
        "kind": "feature_view",
        "name": "customer_transaction_features",
        "entities": ["customer"],
        "source": {
            "kind": "delta_source",
            "name": "customer_transactions",
            "path": "data/delta/customer_transactions",
            "table": None,
            "timestamp_column": "event_timestamp",
            "created_timestamp_column": "created_at",
            "partition_column": None,
            "schema": [
                {"name": "customer_id", "dtype": "string"},
                {"name": "amount", "dtype": "float64"},
                {"name": "status", "dtype": "string"},
            ],
            "description": "Payments",
        },
        "ttl": "90d",
        "features": [],
        "aggregations": [
            {
                "column": "amount",
                "function": "sum",
                "window": "14d",
                "name": "sum_amount_14d",
                "filter": "status = 'settled' AND amount > 0",
                "description": "Spent",
            },
            {
                "column": "*",
                "function": "recency",
                "window": None,
                "name": "last_seen_days",
                "filter": None,
                "description": "",
            },
            {
                "column": "*",
                "function": "count",
                "window": "30d",
                "name": "tx_count_30d",
                "filter": None,
                "description": "",
            },
        ],
        "cadence": "1d",
        "tags": {"team": "risk"},
        "owner": "risk-team",
        "description": "Spend",
        "online": False,
    },
    "feature_view_projection": {
        "kind": "feature_view",
        "name": "click_features",
        "entities": ["customer"],
        "source": {
            "kind": "parquet_source",
            "name": "clicks",
            "path": "data/raw/clicks",
            "timestamp_column": "ts",
            "created_timestamp_column": None,
            "partition_column": None,
            "schema": [{"name": "ts", "dtype": "timestamp"}, {"name": "page", "dtype": "string"}],
            "description": "",
        },
        "ttl": None,
        "features": [
            {"name": "page", "dtype": "string", "description": "", "default": "home"},
            {"name": "age", "dtype": "int64", "description": "Age in years", "default": -1},
        ],
        "aggregations": [],
        "cadence": "1d",
        "tags": {},
        "owner": "",
        "description": "",
        "online": True,
    },
    "feature_set": {
        "kind": "feature_set",
        "name": "churn_inputs",
        "features": ["customer_transaction_features:*", "click_features:page"],
        "metadata": {"live": True, "model": "churn", "ratio": 0.5, "version": 3},
        "description": "Inputs",
    },
}

EXPECTED_HASHES = {
    "entity": "265880dd3929c304e2c8b9d7893805ed77974f274c72b05f92bb735add829dd0",
    "entity_names": "017a3c12ad4a4104821a01a6fb69b7c9beda22c056ab9975d9d106c2c984c816",
    "field": "dd19840e821e3334b354b755640ec6f116b569f5cd3bbfdc078c0bdaad668a2f",
    "delta_source_path": "1573c9d601725053a6da9bc7fc95dad70faf6a65265c8d1fe7be0bdbdb84b13c",
    "delta_source_table": "a240f3959e078653e1d328e36aef613be832bfe39e363a1e73e49fd02c10f738",
    "parquet_source": "a554000edfc4fe8b8fc479fb1a1aa8011c8c47edc9659ab514f75f74f5f848ca",
    "aggregation": "b61fdd4c0e3b9412b13e3385a8fd9fae6302549d747c6b73a7289685d37f9338",
    "aggregation_lifetime": "66a65e55e23b7c699cbd9115bb3fee83459ff69480a0c03a2c063098747f5ce4",
    "feature_view_aggregated": "1e378c23b9bdf7f72454d3143e1a2b1f6a9f70438364756e3ef8a88d9a62deac",
    "feature_view_projection": "6e003b79308309c7432f5258d67adbe962ccd252189fa3e89224f5a9ffea5561",
    "feature_set": "a275a3995c25d1c34ba93964f899112ab9464b6ff73bba477f268b14a7bcdc43",
}


@pytest.mark.parametrize("key", list(EXPECTED_DICTS))
def test_to_dict_is_pinned(key: str) -> None:
    data = _examples()[key].to_dict()
    assert data == EXPECTED_DICTS[key]
    # Key order is part of the contract for readers of the JSON, not only for the hash.
    assert json.dumps(data) == json.dumps(EXPECTED_DICTS[key])


@pytest.mark.parametrize("key", list(EXPECTED_HASHES))
def test_definition_hash_is_pinned(key: str) -> None:
    assert definition_hash(_examples()[key]) == EXPECTED_HASHES[key]


@pytest.mark.parametrize("key", list(EXPECTED_DICTS))
def test_pinned_dicts_rebuild_the_examples(key: str) -> None:
    obj = _examples()[key]
    data = json.loads(json.dumps(EXPECTED_DICTS[key]))
    assert type(obj).from_dict(data) == obj
    if "kind" in data:
        assert from_dict(data) == obj
