"""Registry and plan/apply: versions, time travel, validation before write, races."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from fstore_spark.cli import main as cli_main
from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    Field,
)
from fstore_spark.errors import DefinitionError, NotFoundError
from fstore_spark.store import FeatureStore

REPO = Path(__file__).resolve().parents[2] / "feature_repo"


@pytest.fixture()
def store(spark, lakehouse: Path) -> FeatureStore:
    cfg = FeatureStoreConfig.for_local(lakehouse, project="t", repo_path=str(REPO))
    return FeatureStore(config=cfg, spark=spark)


def _customer() -> Entity:
    return Entity(name="customer", join_keys={"customer_id": "string"})


def _src(name: str = "tx") -> DeltaSource:
    return DeltaSource(
        name=name,
        path=f"raw/{name}",
        timestamp_column="event_timestamp",
        schema={"customer_id": "string", "amount": "float64", "city": "string"},
    )


def _view(window: str = "30d", name: str = "spend") -> FeatureView:
    return FeatureView(
        name=name,
        entities=["customer"],
        source=_src(),
        ttl="90d",
        aggregations=[Aggregation(column="amount", function="sum", window=window, name="spent")],
    )


def test_seed_repo_applies_lists_and_describes(store: FeatureStore, capsys) -> None:
    plan = store.plan()
    assert {c.name for c in plan.of("add")} == {
        "customer",
        "customer_transactions",
        "customer_demographics",
        "customer_transaction_features",
        "customer_demographic_features",
        "churn_features_v1",
    }
    applied = store.apply()
    assert applied.has_changes
    assert store.registry.version() == 1  # version 0 created the empty table
    views = store.list_feature_views()
    assert [v.name for v in views] == [
        "customer_demographic_features",
        "customer_transaction_features",
    ]
    tx = store.get_feature_view("customer_transaction_features")
    assert tx.feature_names == (
        "total_spent_30d",
        "transaction_count_30d",
        "avg_transaction_value_30d",
        "last_transaction_days_ago",
    )
    demo = store.get_feature_view("customer_demographic_features")
    assert demo.feature_names == ("age", "city", "signup_date")
    d = store.describe("customer_transaction_features")
    assert d["version"] == 1 and d["category"] == "feature_view"
    assert len(d["definition_hash"]) == 64 and d["applied_by"]
    assert d["history"][0]["version"] == 1
    fs = store.get_feature_set("churn_features_v1")
    assert fs.metadata["purpose"] == "churn"
    # a second apply of the same repo changes nothing and writes no commit
    again = store.apply()
    assert not again.has_changes
    assert store.registry.version() == 1

    # the CLI does the same through the config's repo
    cfg_file = Path(store.config.config_dir) / "feature_store.yaml"
    cfg_file.write_text(
        f"project: t\nlakehouse:\n  root: {store.config.lakehouse.root}\nrepo_path: {REPO}\n"
    )
    assert cli_main(["--config", str(cfg_file), "plan"]) == 0
    assert "No changes" in capsys.readouterr().out
    assert cli_main(["--config", str(cfg_file), "list"]) == 0
    out = capsys.readouterr().out
    assert "customer_transaction_features" in out and "feature_set" in out
    assert cli_main(["--config", str(cfg_file), "describe", "customer"]) == 0
    assert '"customer_id"' in capsys.readouterr().out
    assert cli_main(["--config", str(cfg_file), "describe", "nope"]) == 1
    assert "nothing named 'nope'" in capsys.readouterr().err


def test_changing_a_window_bumps_version_and_time_travel_keeps_old(store: FeatureStore) -> None:
    store.apply([_customer(), _view("30d")])
    v_first = store.registry.version()
    assert store.registry.get("feature_view", "spend").version == 1

    plan = store.plan([_customer(), _view("60d")])
    (change,) = plan.of("change")
    assert change.name == "spend" and change.old_version == 1 and change.new_version == 2
    assert "aggregations" in change.changed_fields
    assert change.invalidates == ("spend",)
    assert "invalidates materialized data of: spend" in str(plan)

    store.apply([_customer(), _view("60d")])
    entry = store.registry.get("feature_view", "spend")
    assert entry.version == 2
    assert entry.created_at <= entry.updated_at
    new = store.get_feature_view("spend")
    assert new.aggregations[0].window.days == 60
    old = store.get_feature_view("spend", as_of_version=v_first)
    assert old.aggregations[0].window.days == 30
    assert store.registry.get("feature_view", "spend", as_of_version=v_first).version == 1
    # entity untouched: still version 1
    assert store.registry.get("entity", "customer").version == 1
    hist = store.registry.history("feature_view", "spend")
    assert [h["version"] for h in hist] == [1, 2]

    # a description-only change bumps the version but does not invalidate data
    described = FeatureView.from_dict({**_view("60d").to_dict(), "description": "money"})
    plan = store.plan([described])
    (change,) = plan.of("change")
    assert change.changed_fields == ("description",) and change.invalidates == ()


def test_prune_removes_objects_missing_from_the_repo(store: FeatureStore) -> None:
    store.apply([_customer(), _view("30d"), _view("7d", name="spend_7d")])
    plan = store.plan([_customer(), _view("30d")], prune=True)
    assert [c.name for c in plan.of("remove")] == ["spend_7d"]
    store.apply([_customer(), _view("30d")], prune=True)
    assert [v.name for v in store.list_feature_views()] == ["spend"]
    with pytest.raises(NotFoundError, match="Known: spend"):
        store.get_feature_view("spend_7d")


def test_prune_keeps_feature_sets_created_through_the_api(store: FeatureStore) -> None:
    """A pinned feature set is history: the repo's prune neither removes it nor its views."""
    store.apply([_customer(), _view("30d")])
    v1 = store.create_feature_set("api_fs", ["spend:spent"])
    assert store.plan([_customer(), _view("30d")], prune=True).of("remove") == []
    store.apply([_customer(), _view("30d")], prune=True)
    assert store.get_feature_set_version("api_fs@v1") == v1
    assert [fs.name for fs in store.list_feature_sets()] == ["api_fs"]
    with pytest.raises(DefinitionError, match="api_fs"):
        store.apply([_customer()], prune=True)  # would leave the set without its view
    assert store.get_feature_set_version("api_fs@v1") == v1


# ---- validation before any write: one test per rule -------------------------------------


def _assert_nothing_written(store: FeatureStore) -> None:
    assert store.registry.version() is None or store.registry.list() == []


def test_unknown_entity_rejected_before_write(store: FeatureStore) -> None:
    with pytest.raises(DefinitionError, match=r"spend.*unknown entity 'customer'"):
        store.apply([_view()])
    _assert_nothing_written(store)


def test_duplicate_names_rejected_before_write(store: FeatureStore) -> None:
    other = FeatureView(
        name="spend",
        entities=["customer"],
        source=_src(),
        features=[Field(name="city", dtype="string")],
    )
    with pytest.raises(DefinitionError, match=r"'spend'.*defined twice"):
        store.apply([_customer(), _view(), other])
    _assert_nothing_written(store)


def test_two_sources_same_name_rejected(store: FeatureStore) -> None:
    a = _src("tx")
    b = DeltaSource(name="tx", path="raw/other", timestamp_column="ts")
    view_b = FeatureView(
        name="other", entities=["customer"], source=b, features=[Field(name="x", dtype="int64")]
    )
    with pytest.raises(DefinitionError, match=r"'tx'"):
        store.apply([_customer(), a, _view(), view_b])
    _assert_nothing_written(store)


def test_feature_collision_in_feature_set_rejected(store: FeatureStore) -> None:
    v2 = FeatureView(
        name="spend2",
        entities=["customer"],
        source=_src(),
        aggregations=[Aggregation(column="amount", function="max", window="7d", name="spent")],
    )
    fs = FeatureSet(name="fs", features=["spend:*", "spend2:*"])
    with pytest.raises(DefinitionError, match=r"'spent' is selected from both"):
        store.apply([_customer(), _view(), v2, fs])
    _assert_nothing_written(store)


def test_feature_set_unknown_feature_rejected(store: FeatureStore) -> None:
    store.apply([_customer(), _view()])
    version = store.registry.version()
    with pytest.raises(DefinitionError, match=r"has no feature 'nope'.*spent"):
        store.apply([FeatureSet(name="fs", features=["spend:nope"])])
    assert store.registry.version() == version


def test_agg_function_type_mismatch_rejected(store: FeatureStore) -> None:
    bad = FeatureView(
        name="cities",
        entities=["customer"],
        source=_src(),
        aggregations=[Aggregation(column="city", function="mean", window="7d")],
    )
    with pytest.raises(DefinitionError, match=r"mean.*city"):
        store.apply([_customer(), bad])
    _assert_nothing_written(store)


def test_definitions_are_checked_against_existing_tables(spark, store: FeatureStore) -> None:
    """A source's declared columns and types, its timestamp column, and what its views read
    are checked against the table when it exists; every problem is listed; nothing written."""
    spark.createDataFrame(
        [("c1", "2024-01-01 00:00:00", 1.5, 3)],
        "customer_id string, event_timestamp string, amount double, n int",
    ).withColumn("event_timestamp", F.to_timestamp("event_timestamp")).write.format("delta").save(
        store.table_path("raw/tx")
    )
    bad_src = DeltaSource(
        name="tx",
        path="raw/tx",
        timestamp_column="event_ts",
        schema={"customer_id": "string", "amount": "int64", "city": "string"},
    )
    account = Entity(name="account", join_keys={"account_id": "string"})
    bad_view = FeatureView(
        name="spend",
        entities=["customer", "account"],
        source=bad_src,
        ttl="90d",
        aggregations=[
            Aggregation(column="amout", function="sum", window="7d", name="spent"),
            Aggregation(column="*", function="count", window="7d", filter="n > 1", name="k"),
        ],
    )
    for call in (store.plan, store.apply):
        with pytest.raises(DefinitionError) as err:
            call([_customer(), account, bad_view])
        msg = str(err.value)
        for want in (
            "timestamp_column 'event_ts' is not a column",
            "column 'amount' is declared int64 but the table has double",
            "declared column 'city' is not a column",
            "join key 'account_id' is not a column",
            "aggregation 'spent' reads column 'amout'",
        ):
            assert want in msg, (want, msg)
        assert "'k' reads" not in msg  # the filter's column exists
    _assert_nothing_written(store)

    good = DeltaSource(
        name="tx",
        path="raw/tx",
        timestamp_column="event_timestamp",
        schema={"customer_id": "string", "amount": "float64", "n": "int64"},  # int32 reads
    )
    projected = FeatureView(
        name="counts",
        entities=["customer"],
        source=good,
        features=[Field(name="n", dtype="float64"), Field(name="amount", dtype="string")],
    )
    with pytest.raises(DefinitionError, match=r"feature 'amount' is declared string.*float64"):
        store.apply([_customer(), projected])
    _assert_nothing_written(store)
    ok = FeatureView(
        name="counts", entities=["customer"], source=good, features=[Field(name="n", dtype="int64")]
    )
    store.apply([_customer(), ok])  # a compatible table applies
    elsewhere = DeltaSource(name="later", path="raw/not_yet", timestamp_column="whatever")
    store.apply([elsewhere])  # a table that does not exist yet is not checked
    assert {e.name for e in store.registry.list()} >= {"counts", "later"}


def test_bad_repo_file_rejected_naming_the_file(spark, lakehouse: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "bad.py").write_text(
        "from fstore_spark.core import Aggregation\n"
        "a = Aggregation(column='amount', function='sum', window='30x')\n"
    )
    cfg = FeatureStoreConfig.for_local(lakehouse, project="t", repo_path=str(repo))
    store = FeatureStore(config=cfg, spark=spark)
    with pytest.raises(DefinitionError, match=r"bad\.py.*'30x'"):
        store.plan()
    assert store.registry.version() is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: Aggregation(column="amount", function="sum", window="0d"),
        lambda: Aggregation(column="amount", function="sum", window="-5d"),
        lambda: Entity(name="cust omer", join_keys=["id"]),
        lambda: Entity(name="customer", join_keys=["feature_timestamp"]),
        lambda: Aggregation(
            column="amount", function="sum", window="7d", filter="1=1; DROP TABLE t"
        ),
        lambda: Aggregation(column="amount", function="sum", window="7d", name="x'--"),
    ],
    ids=[
        "zero-window",
        "negative-window",
        "unsafe-name",
        "reserved-key",
        "filter-injection",
        "quote-name",
    ],
)
def test_invalid_constructions_never_reach_the_registry(make) -> None:
    with pytest.raises(DefinitionError):
        make()


# ---- concurrency ----------------------------------------------------------------------


def test_racing_applies_lose_nothing(store: FeatureStore) -> None:
    store.apply([_customer()])  # create the table first, so both threads merge into it
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(objs: list) -> None:
        try:
            barrier.wait()
            store.registry.apply(objs)
        except BaseException as exc:  # noqa: BLE001 - surface in the main thread
            errors.append(exc)

    a = [_customer(), _view("30d", name="view_a")]
    b = [_customer(), _view("7d", name="view_b"), FeatureSet(name="set_b", features=["view_b:*"])]
    threads = [threading.Thread(target=worker, args=(objs,)) for objs in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = {(e.category, e.name): e.version for e in store.registry.list()}
    assert names == {
        ("entity", "customer"): 1,
        ("data_source", "tx"): 1,
        ("feature_view", "view_a"): 1,
        ("feature_view", "view_b"): 1,
        ("feature_set", "set_b"): 1,
    }
    # both applies committed: create + customer + two applies
    assert store.registry.version() == 3
