"""Who changed what: the identity of a store in registry history, commits and ``fstore history``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fstore_spark.cli import main as cli_main
from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import Aggregation, DeltaSource, Entity, FeatureView
from fstore_spark.registry.registry import current_identity
from fstore_spark.store import FeatureStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _defs(window: str) -> list[object]:
    customer = Entity(name="customer", join_keys={"customer_id": "string"})
    src = DeltaSource(
        name="tx",
        path="raw/tx",
        timestamp_column="event_timestamp",
        schema={"customer_id": "string", "amount": "float64"},
    )
    view = FeatureView(
        name="spend",
        entities=["customer"],
        source=src,
        aggregations=[Aggregation(column="amount", function="sum", window=window, name="spent")],
    )
    return [customer, src, view]


def test_identity_is_resolved_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSTORE_USER", "from-env")
    assert current_identity("from-config") == "from-config"
    assert current_identity(None) == "from-env"
    monkeypatch.delenv("FSTORE_USER")
    assert current_identity(None) not in ("", "from-env")  # the OS user


def test_history_names_who_changed_and_who_materialized(
    spark, lakehouse: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FSTORE_USER", raising=False)
    alice = FeatureStore(
        config=FeatureStoreConfig.for_local(lakehouse, project="t", identity="alice"), spark=spark
    )
    assert alice.identity == "alice"
    rows = [(f"c{i % 3}", T0 + timedelta(hours=i), float(i)) for i in range(12)]
    spark.createDataFrame(
        rows, "customer_id string, event_timestamp timestamp, amount double"
    ).write.format("delta").save(alice.table_path("raw/tx"))
    alice.apply(_defs("7d"))
    alice.materialize("spend", T0, T0 + timedelta(days=1))

    monkeypatch.setenv("FSTORE_USER", "bob")
    bob = FeatureStore(config=FeatureStoreConfig.for_local(lakehouse, project="t"), spark=spark)
    assert bob.identity == "bob"
    bob.apply(_defs("30d"))  # the window changes: view version 2
    bob.create_feature_set("spend_set", ["spend:spent"])

    history = bob.registry.history("feature_view", "spend")
    assert [(h["version"], h["applied_by"]) for h in history] == [(1, "alice"), (2, "bob")]
    fs_history = bob.registry.history("feature_set", "spend_set")
    assert [h["applied_by"] for h in fs_history] == ["bob"]

    # the registry's Delta commits say who changed which object from which version to which
    commits = spark.sql(f"DESCRIBE HISTORY delta.`{bob.config.registry_path}`").collect()
    audits = [json.loads(c["userMetadata"]) for c in commits if c["userMetadata"]]
    change = next(
        a for a in audits if a["by"] == "bob" and any(c["name"] == "spend" for c in a["changes"])
    )
    spend = next(c for c in change["changes"] if c["name"] == "spend")
    assert (spend["action"], spend["from_version"], spend["to_version"]) == ("change", 1, 2)
    assert any(a["by"] == "alice" for a in audits)

    # the feature table's commit says who materialized it
    assert bob.list_versions("spend")[0]["by"] == "alice"

    cfg = lakehouse / "feature_store.yaml"
    cfg.write_text(f"project: t\nlakehouse:\n  root: {lakehouse}\n")
    assert cli_main(["--config", str(cfg), "history", "spend"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert ["1", "1", "upsert"] == lines[2][:3] and lines[2][-1] == "alice"
    assert ["2", "upsert"] == lines[3][1:3] and lines[3][-1] == "bob"
    assert "feature table commits" in out
    assert out.splitlines()[-1].split()[-1] == "alice"
    assert cli_main(["--config", str(cfg), "history", "spend", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["applied_by"] for c in doc["changes"]] == ["alice", "bob"]


def test_access_policies_are_enforced_by_store_and_server(
    spark, lakehouse: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from fstore_spark.config import hash_key
    from fstore_spark.errors import AccessDeniedError
    from fstore_spark.server import create_app

    monkeypatch.delenv("FSTORE_USER", raising=False)

    def as_(who: str) -> FeatureStore:
        keys = [
            {"name": name, "sha256": hash_key(f"key-of-{name}"), "views": ["*"]}
            for name in ("carol", "dave")
        ]
        cfg = FeatureStoreConfig.for_local(
            lakehouse,
            project="t",
            identity=who,
            online_store={"url": redis_url},
            server={"api_keys": keys},
        )
        return FeatureStore(config=cfg, spark=spark)

    alice, bob, carol = as_("alice"), as_("bob"), as_("carol")
    rows = [(f"c{i % 3}", T0 + timedelta(hours=i), float(i)) for i in range(12)]
    spark.createDataFrame(
        rows, "customer_id string, event_timestamp timestamp, amount double"
    ).write.format("delta").save(alice.table_path("raw/tx"))
    alice.apply(_defs("7d"))
    alice.materialize("spend", T0, T0 + timedelta(days=1))
    alice.sync_online()
    assert alice.online_store.state("spend").synced_by == "alice"
    labels = spark.createDataFrame(
        [("c1", T0 + timedelta(days=1))], "customer_id string, event_timestamp timestamp"
    )
    assert bob.read_view("spend").count() > 0  # no policy yet: open to everyone

    alice.registry.set_access_policy("spend", owners=["alice"], readers=["carol"])

    # bob neither owns nor reads it: every write and read through the store is refused
    with pytest.raises(AccessDeniedError, match="only their owners \\(alice\\)"):
        bob.apply(_defs("30d"))
    assert bob.get_feature_view("spend").aggregations[0].window == timedelta(days=7)
    with pytest.raises(AccessDeniedError, match="materialize"):
        bob.materialize("spend", T0, T0 + timedelta(days=1))
    with pytest.raises(AccessDeniedError, match="sync"):
        bob.sync_online("spend")
    with pytest.raises(AccessDeniedError, match="'bob' may not read"):
        bob.get_historical_features(labels, ["spend:spent"])
    with pytest.raises(AccessDeniedError):
        bob.read_view("spend")
    with pytest.raises(AccessDeniedError):
        bob.get_online_features(["spend:spent"], entity_keys=["c1"])
    with pytest.raises(AccessDeniedError):
        bob.registry.set_access_policy("spend", owners=["bob"])

    # carol reads (not writes); alice, the owner, does both
    assert carol.get_historical_features(labels, ["spend:spent"]).to_pandas()["spent"].notna().all()
    assert carol.get_online_features(["spend:spent"], entity_keys=["c1"]).to_dict()["spent"][0]
    with pytest.raises(AccessDeniedError):
        carol.materialize("spend", T0, T0 + timedelta(days=1))
    alice.apply(_defs("30d"))
    assert alice.get_feature_view("spend").aggregations[0].window == timedelta(days=30)

    # the server checks a view's readers against the key's name
    with TestClient(create_app(alice, refresh_seconds=None)) as client:
        body = {"features": ["spend:spent"], "entity_rows": [{"customer_id": "c1"}]}
        ok = client.post("/get-online-features", json=body, headers={"X-API-Key": "key-of-carol"})
        assert ok.status_code == 200, ok.text
        no = client.post("/get-online-features", json=body, headers={"X-API-Key": "key-of-dave"})
        assert no.status_code == 403 and no.json()["error"] == "AccessDeniedError", no.text
