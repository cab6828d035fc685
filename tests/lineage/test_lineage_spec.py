"""Feature spec round trips, feature set ids and lineage search filters (no Spark)."""

from __future__ import annotations

import pytest

from fstore_spark import FeatureSpec, LineageError
from fstore_spark.core.feature_set_versions import parse_feature_set_id
from fstore_spark.lineage.tracking import runs_using_filter


def _spec() -> FeatureSpec:
    return FeatureSpec(
        project="p",
        features=["txn:amount_3d", "profile:age"],
        feature_columns=["amount_3d", "age"],
        views=[
            {
                "name": "txn",
                "features": ["amount_3d"],
                "join_keys": ["customer_id"],
                "delta_version": 0,  # version 0 is a real version and must survive
                "view_version": 1,
                "definition_hash": "ab" * 32,
                "path": "/lake/p/features/txn",
            },
            {
                "name": "profile",
                "features": ["age"],
                "join_keys": ["customer_id"],
                "delta_version": None,
                "view_version": 2,
                "definition_hash": "cd" * 32,
                "path": "/lake/p/features/profile",
            },
        ],
        timestamp_column="event_timestamp",
        registry_version=4,
        entity={"rows": 3, "fingerprint": "f" * 32, "columns": ["customer_id"], "source": None},
        feature_set={"name": "churn", "version": 2},
        output={"rows": 3, "fingerprint": "e" * 32},
        created_at="2026-11-23T00:00:00+00:00",
    )


def test_spec_yaml_round_trip_keeps_version_zero() -> None:
    spec = _spec()
    back = FeatureSpec.from_yaml(spec.to_yaml())
    assert back == spec
    assert back.as_of == {"txn": 0}  # None (not materialized then) is not pinned


def test_spec_rejects_garbage_and_newer_formats() -> None:
    with pytest.raises(LineageError, match="not an fstore feature spec"):
        FeatureSpec.from_yaml("a: 1")
    with pytest.raises(LineageError, match="newer"):
        FeatureSpec.from_dict({**_spec().to_dict(), "format_version": 99})
    with pytest.raises(LineageError, match="YAML"):
        FeatureSpec.from_yaml("a: [1,")


def test_feature_set_ids() -> None:
    assert parse_feature_set_id("churn") == ("churn", None)
    assert parse_feature_set_id("churn@v3") == ("churn", 3)
    assert parse_feature_set_id("churn@12") == ("churn", 12)
    for bad in ("churn@v0", "churn@vx", "churn@"):
        with pytest.raises(ValueError):
            parse_feature_set_id(bad)


def test_runs_using_filter_is_exact_and_safe() -> None:
    assert runs_using_filter("txn") == "tags.`fstore.view.txn` LIKE '%'"
    assert runs_using_filter("txn:amount") == "tags.`fstore.view.txn.features` LIKE '%,amount,%'"
    with pytest.raises(LineageError):
        runs_using_filter("txn:a' OR '1'='1")
