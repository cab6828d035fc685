"""Redis sync and online reads against a real redis-server and Delta feature tables.

Full, then incremental touching exactly the changed entities (Redis == Delta); a run killed
mid-way then rerun (never older over newer); online == training set at "now". Timestamps are
relative to the real clock, because Redis expires keys by it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis
from pyspark.sql import functions as F

from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    Field,
)
from fstore_spark.errors import EntityRowError, NotFoundError
from fstore_spark.lakehouse.tables import read_feature_table
from fstore_spark.online.response import Status
from fstore_spark.online.sync import sync_view
from fstore_spark.online.writer import WRITE_SCRIPT
from fstore_spark.store import FeatureStore

DAY = timedelta(days=1)
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 10 * DAY
PROFILE_SCHEMA = (
    "customer_id string, ts timestamp, age bigint, city string, score double, active boolean, "
    "signup date"
)


def open_store(spark, root: Path, redis_url: str, project: str) -> FeatureStore:
    cfg = FeatureStoreConfig.for_local(
        root, project=project, online_store={"url": redis_url, "batch_size": 7}
    )
    return FeatureStore(config=cfg, spark=spark)


def make_store(spark, root: Path, redis_url: str, project: str = "onl") -> FeatureStore:
    store = open_store(spark, root, redis_url, project)
    customer = Entity(name="customer", join_keys=["customer_id"])
    place = Entity(name="place", join_keys={"city": "string", "region": "int64"})
    profile = FeatureView(
        name="profile",
        entities=[customer],
        source=DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts"),
        ttl="30d",
        features=[
            Field(name="age", dtype="int64"),
            Field(name="city", dtype="string"),
            Field(name="score", dtype="float64"),
            Field(name="active", dtype="bool"),
            Field(name="signup", dtype="date"),
        ],
    )
    spend = FeatureView(
        name="spend",
        entities=[customer],
        source=DeltaSource(
            name="tx",
            path="raw/tx",
            timestamp_column="ts",
            schema={"customer_id": "string", "amount": "float64"},
        ),
        ttl="90d",
        cadence="1d",
        aggregations=[
            Aggregation(column="amount", function="sum", window="7d", name="spent_7d"),
            Aggregation(column="*", function="count", window="7d", name="tx_7d"),
            Aggregation(column="*", function="recency", name="days_since_tx"),
        ],
    )
    weather = FeatureView(
        name="weather",
        entities=[place],
        source=DeltaSource(name="wx", path="raw/wx", timestamp_column="ts"),
        ttl="3d",
        features=[Field(name="temp", dtype="float64")],
    )
    store.apply(
        [
            customer,
            place,
            profile,
            spend,
            weather,
            FeatureSet(name="churn", features=["profile:age", "spend:*"]),
        ]
    )
    return store


TEMPLATE_PROJECT = "tpl"


@pytest.fixture(scope="module")
def applied_template(spark, redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lakehouse whose project has the definitions applied, made once for the module.

    ``apply`` costs seconds; each test copies the project folder (the registry's Delta tables
    hold relative paths and no project name) and opens its own store on the copy.
    """
    root = tmp_path_factory.mktemp("online_template")
    make_store(spark, root, redis_server, project=TEMPLATE_PROJECT)
    return root / TEMPLATE_PROJECT


@pytest.fixture()
def new_store(
    spark, lakehouse: Path, redis_url: str, applied_template: Path
) -> Callable[[str], FeatureStore]:
    """``new_store(project)``: a store of this test, as ``make_store`` leaves it, on a copy."""

    def build(project: str) -> FeatureStore:
        shutil.copytree(applied_template, lakehouse / project)
        return open_store(spark, lakehouse, redis_url, project)

    return build


def profile_rows(n: int, version: int = 0) -> list[tuple]:
    rows = []
    for i in range(n):
        for d in range(i % 3 + 1):  # 1-3 rows per customer, the latest wins
            rows.append(
                (
                    f"c{i}",
                    T0 + d * DAY + timedelta(minutes=i),
                    20 + i + d + version,
                    None if i % 5 == 0 else f"city|{i % 4}\\",
                    i / 3 + d,
                    i % 2 == 0,
                    (T0 - 400 * DAY + i * DAY).date(),
                )
            )
    return rows


def write(spark, store: FeatureStore, name: str, rows: list[tuple], schema: str) -> None:
    (
        spark.createDataFrame(rows, schema)
        .write.format("delta")
        .mode("overwrite")
        .save(store.table_path(f"raw/{name}"))
    )


def delta_latest(spark, store: FeatureStore, view: str, keys: list[str], ttl: timedelta) -> dict:
    """Oracle: latest row per entity with now - ttl <= ts <= now, in pandas."""
    pdf = read_feature_table(spark, store.config.project_root, view).toPandas()
    now = pd.Timestamp(datetime.now(UTC)).tz_localize(None)
    pdf = pdf[(pdf.feature_timestamp <= now) & (pdf.feature_timestamp >= now - ttl)]
    pdf = pdf.sort_values(["feature_timestamp", "created_timestamp"])
    last = pdf.groupby(keys, sort=False).tail(1)
    return {tuple(r[k] for k in keys): r for _, r in last.iterrows()}


def same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA
    if hasattr(b, "date") and not isinstance(a, datetime) and hasattr(a, "isoformat"):
        b = b.date() if isinstance(b, datetime | pd.Timestamp) else b
    if isinstance(a, float):
        return math.isclose(a, float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def assert_redis_equals_delta(spark, store: FeatureStore, n: int) -> int:
    want = delta_latest(spark, store, "profile", ["customer_id"], 30 * DAY)
    feats = ["age", "city", "score", "active", "signup"]
    rows = [{"customer_id": f"c{i}"} for i in range(n + 3)]
    got = store.get_online_features([f"profile:{f}" for f in feats], rows)
    d = got.to_dict()
    for i, row in enumerate(rows):
        w = want.get((row["customer_id"],))
        for f in feats:
            if w is None:
                assert got.statuses[f][i] == Status.NOT_FOUND, (row, f)
                assert d[f][i] is None
            else:
                assert same(d[f][i], w[f]), (row, f, d[f][i], w[f])
    return len(want)


def ns_keys(store: FeatureStore, view: str) -> list[bytes]:
    r = redis.Redis.from_url(store.config.online_store.url)
    ns = r.get(f"fstore:{store.project}:{view}:_ns".encode())
    return list(r.scan_iter(match=f"fstore:{store.project}:{view}:{ns.decode()}:*".encode()))


def test_a_namespace_left_by_a_killed_reload_is_removed_by_the_next_sync(
    spark, new_store, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the flip and the unlink: the next sync removes the old namespace."""
    from fstore_spark.online.sync_job import SyncJob

    store = new_store("left")
    write(spark, store, "profiles", profile_rows(6), PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    first = store.sync_online("profile")
    old = first.namespace

    def killed(self: SyncJob, ns: int) -> int:
        raise KeyboardInterrupt("killed before the old namespace was unlinked")

    monkeypatch.setattr(SyncJob, "unlink_ns", killed)
    with pytest.raises(KeyboardInterrupt):
        store.sync_online("profile", mode="full")
    monkeypatch.undo()
    r = redis.Redis.from_url(redis_url)
    pattern = f"fstore:left:profile:{old}:*".encode()
    assert len(list(r.scan_iter(match=pattern))) == 6  # left behind by the killed run
    after = store.sync_online("profile")
    assert after.keys_unlinked == 6
    assert list(r.scan_iter(match=pattern)) == []
    assert len(ns_keys(store, "profile")) == 6


def test_a_sync_never_takes_another_lakehouses_state(
    spark, new_store, redis_url: str, applied_template: Path, tmp_path: Path
) -> None:
    """Two lakehouses with the same project on one Redis: each sync is of its own table."""
    first = new_store("twin")
    write(spark, first, "profiles", profile_rows(4), PROFILE_SCHEMA)
    first.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    assert first.sync_online("profile").mode == "full"

    other_root = tmp_path / "other_lakehouse"
    shutil.copytree(applied_template, other_root / "twin")
    second = open_store(spark, other_root, redis_url, "twin")
    write(spark, second, "profiles", profile_rows(8, version=100), PROFILE_SCHEMA)
    second.materialize("profile", T0 - DAY, T0 + 20 * DAY)  # the same table version as first's
    result = second.sync_online("profile")
    assert result.mode == "full" and "another table" in result.reason, result
    assert result.keys_written == 8
    got = second.get_online_features(["profile:age"], entity_keys=["c0", "c7"]).to_dict()
    latest = {c: max(r[2] for r in profile_rows(8, 100) if r[0] == c) for c in ("c0", "c7")}
    assert got["age"] == [latest["c0"], latest["c7"]]


def test_full_then_incremental_writes_exactly_the_changed_entities(
    spark, new_store, redis_url: str
) -> None:
    store = new_store("onl")
    n = 40
    write(spark, store, "profiles", profile_rows(n), PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)

    first = store.sync_online("profile")
    assert first.mode == "full" and first.reason == "first sync of the view"
    assert first.keys_written == n and first.keys_deleted == 0
    assert len(ns_keys(store, "profile")) == n
    assert assert_redis_equals_delta(spark, store, n) == n

    again = store.sync_online("profile")
    assert again.mode == "noop" and again.keys_written == 0

    # new source data: 4 customers get a newer row, 2 a corrected value at the same instant,
    # c39 disappears, and a re-materialization rewrites every row (same values for the rest)
    rows = [r for r in profile_rows(n) if r[0] != "c39"]
    latest_ts: dict[str, datetime] = {}
    for r in rows:
        latest_ts[r[0]] = max(latest_ts.get(r[0], r[1]), r[1])
    for c in ("c1", "c2", "c3", "c4"):
        rows.append((c, latest_ts[c] + timedelta(hours=1), 99, "new", 1.5, False, T0.date()))
    rows = [
        (r[0], r[1], 1000, *r[3:]) if r[0] in ("c10", "c11") and r[1] == latest_ts[r[0]] else r
        for r in rows
    ]
    write(spark, store, "profiles", rows, PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)

    inc = store.sync_online("profile")
    assert inc.mode == "incremental", inc.reason
    assert inc.keys_written == 6  # exactly the entities whose served values changed
    assert inc.keys_deleted == 1  # c39
    assert inc.version == first.version + 1
    assert assert_redis_equals_delta(spark, store, n) == n - 1
    # Redis agrees: exactly the changed keys carry the new Delta version
    r = redis.Redis.from_url(redis_url)
    versions = [int(r.hget(k, "@v")) for k in ns_keys(store, "profile")]
    assert versions.count(inc.version) == 6 and len(versions) == n - 1

    # a full reload flips to a new namespace and unlinks the old one; reads follow the flip
    before = store.get_online_features(["profile:age"], [{"customer": "c1"}]).to_dict()
    full = store.sync_online("profile", mode="full")
    assert full.namespace == first.namespace + 1 and full.keys_unlinked == n - 1
    after = store.get_online_features(["profile:age"], [{"customer": "c1"}]).to_dict()
    assert before == after == {"customer_id": ["c1"], "age": [99]}


def test_killed_run_resumes_and_never_writes_older_over_newer(
    spark, new_store, redis_url: str
) -> None:
    store = new_store("crash")
    n = 30
    write(spark, store, "profiles", profile_rows(n), PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    cat = store._serving_catalog()
    view, keys = cat.view("profile"), cat.join_keys["profile"]

    with pytest.raises(Exception, match="injected failure"):
        sync_view(
            spark,
            store.config.project_root,
            view,
            keys,
            store.online_store,
            partitions=4,
            fail_after_partitions=2,
        )
    state = store.online_store.state("profile")
    assert state.pending_ns is not None and state.ns is None  # nothing flipped
    resumed = sync_view(spark, store.config.project_root, view, keys, store.online_store)
    assert resumed.resumed and resumed.mode == "full"
    assert resumed.keys_written + resumed.keys_skipped == n and resumed.keys_skipped > 0
    assert assert_redis_equals_delta(spark, store, n) == n

    # an incremental run killed half way, then rerun
    rows = profile_rows(n, version=100)
    write(spark, store, "profiles", rows, PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    with pytest.raises(Exception, match="injected failure"):
        sync_view(
            spark,
            store.config.project_root,
            view,
            keys,
            store.online_store,
            partitions=4,
            fail_after_partitions=1,
        )
    assert store.online_store.state("profile").version == resumed.version  # not advanced
    rerun = sync_view(spark, store.config.project_root, view, keys, store.online_store)
    assert rerun.mode == "incremental" and rerun.keys_written + rerun.keys_skipped == n
    assert assert_redis_equals_delta(spark, store, n) == n

    # the script itself: an older write attempted right after a newer one is refused
    r = redis.Redis.from_url(redis_url)
    script = r.register_script(WRITE_SCRIPT)
    key = b"test:entity"
    assert script(keys=[key], args=["U", 2_000, 5, 0, "age", "2"]) == 1
    assert script(keys=[key], args=["U", 1_000, 9, 0, "age", "1"]) == 0  # older timestamp
    assert script(keys=[key], args=["U", 2_000, 4, 0, "age", "1"]) == 0  # same ts, older version
    assert script(keys=[key], args=["U", 2_000, 6, 0, "age", "2"]) == 0  # same values
    assert r.hgetall(key) == {b"@ts": b"2000", b"@v": b"5", b"age": b"2"}
    assert script(keys=[key], args=["U", 2_000, 6, 0]) == 1  # newer version, age now null
    assert r.hgetall(key) == {b"@ts": b"2000", b"@v": b"6"}
    assert script(keys=[key], args=["D", 0, 5, 0]) == 0  # a delete from an older version
    assert script(keys=[key], args=["D", 0, 7, 0]) == 2 and not r.exists(key)
    assert script(keys=[key], args=["D", 0, 7, 0]) == 3


def test_online_read_equals_training_set_at_now(spark, new_store) -> None:
    store = new_store("cons")
    n = 12
    write(spark, store, "profiles", profile_rows(n), PROFILE_SCHEMA)
    tx = [
        (f"c{i % n}", T0 + timedelta(hours=5 * j + i), float(j % 7) + i / 10)
        for i in range(n)
        for j in range(i % 4 * 9)
    ]
    write(spark, store, "tx", tx, "customer_id string, ts timestamp, amount double")
    wx = [
        ("a|b", 1, T0 + 8 * DAY, 21.5),
        ("x\\y", 2, T0 + 9 * DAY, -3.0),
        ("a|b", 2, T0 + DAY, 10.0),  # older than the 3d ttl
    ]
    write(spark, store, "wx", wx, "city string, region bigint, ts timestamp, temp double")
    now = datetime.now(UTC)
    store.materialize("profile", T0 - DAY, now)
    store.materialize("spend", T0 - DAY, now)
    store.materialize("weather", T0 - DAY, now)
    results = store.sync_online()
    assert {r.view for r in results} == {"profile", "spend", "weather"}

    ids = [f"c{i}" for i in range(n)] + ["nobody"]
    refs = [
        "profile:age",
        "profile:city",
        "profile:score",
        "profile:active",
        "profile:signup",
        "spend:spent_7d",
        "spend:tx_7d",
        "spend:days_since_tx",
    ]
    online = store.get_online_features(refs, [{"customer_id": c} for c in ids])
    read_at = datetime.now(UTC)
    labels = pd.DataFrame({"customer_id": ids, "event_timestamp": [read_at] * len(ids)})
    training = (
        store.get_historical_features(labels, refs).to_pandas().set_index("customer_id").loc[ids]
    )
    od = online.to_dict()
    for f in [r.split(":")[1] for r in refs]:
        for i, c in enumerate(ids):
            want = training.loc[c, f]
            want = None if pd.isna(want) else want
            got = od[f][i]
            if f == "days_since_tx" and got is not None:  # exact at the read instant
                assert got == pytest.approx(want, abs=1e-3), (c, f)
            else:
                assert same(got, want), (c, f, got, want)
    assert online.statuses["age"][-1] == Status.NOT_FOUND

    # one request, two views with different keys; composite keys with | and \ in strings
    both = store.get_online_features(
        ["weather:temp", "profile:age"],
        [
            {"city": "a|b", "region": 1, "customer_id": "c1"},
            {"city": "x\\y", "region": 2, "customer_id": "c2"},
            {"city": "a|b", "region": 2, "customer_id": "zz"},
        ],
    )
    assert both.to_dict()["temp"] == [21.5, -3.0, None]
    assert both.statuses["temp"][2] == Status.NOT_FOUND  # out of ttl at sync: never written
    pdf = both.to_pandas(include_status=True)
    assert list(pdf.columns) == [
        *["city", "region", "customer_id", "temp", "temp__status", "age", "age__status"]
    ]
    assert str(pdf["age"].dtype) == "Int64" and pd.isna(pdf["age"][2])

    # ttl at read time: a value older than the view's ttl is not served
    plan = store._serving_catalog().plan(store.online_store, ["weather:temp"], None, False)
    late = store.online_store.read(plan, [{"city": "a|b", "region": 1}], now=now + 10 * DAY)
    assert late.to_dict()["temp"] == [None]
    assert late.statuses["temp"] == [Status.OUTSIDE_MAX_AGE]

    # serving settings in the registry drive expiry and max age
    store.configure_online_serving("churn", update_frequency="1h", cache_ttl="30m")
    assert store.get_online_serving("churn")["cache_ttl"] == "30m"
    # cache_ttl limits what reads of the set serve; the keys live by the view's ttl
    assert store._serving_catalog().expire_after("profile") == timedelta(days=30)
    assert store.sync_online("profile", mode="full").keys_written == n
    seed = store.get_online_features("churn", entity_keys=["c1"]).to_dict()
    assert seed["age"] == [None]  # the latest profile row is days old: beyond 30 minutes
    plain = store.get_online_features(["profile:age"], entity_keys=["c1"]).to_dict()
    assert plain["age"] == [training.loc["c1", "age"]]  # a plain read is not the set's
    assert seed["spent_7d"][0] is None or isinstance(seed["spent_7d"][0], float)
    due = store.sync_online_due()
    assert due == []  # synced moments ago: not due within the hour

    # a set's version id serves that version's features, its name the latest version's
    v1 = store.create_feature_set("pinned", ["profile:age"])
    store.create_feature_set("pinned", ["profile:age", "profile:city"])
    for ref in ("pinned@v1", v1):
        got = store.get_online_features(feature_set=ref, entity_keys=["c1"]).to_dict()
        assert set(got) == {"customer_id", "age"}, ref
    latest = store.get_online_features("pinned", entity_keys=["c1"]).to_dict()
    assert set(latest) == {"customer_id", "age", "city"}

    with pytest.raises(NotFoundError, match="Known: profile, spend, weather"):
        store.get_online_features(["nope:x"], [{"customer_id": "c1"}])
    with pytest.raises(NotFoundError, match="Known: age, city"):
        store.get_online_features(["profile:nope"], [{"customer_id": "c1"}])
    with pytest.raises(EntityRowError, match="customer_id"):
        store.get_online_features(["profile:age"], [{"user": "c1"}])
    with pytest.raises(EntityRowError, match="region"):
        store.get_online_features(["weather:temp"], [{"city": "a", "region": "north"}])


def test_incremental_after_appends_reads_only_the_feed(spark, new_store) -> None:
    """Commits that only insert rows take the feed-only path; the result is the same."""
    store = new_store("app")
    n = 12
    write(spark, store, "profiles", profile_rows(n), PROFILE_SCHEMA)
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    first = store.sync_online("profile")
    assert first.mode == "full"

    table = read_feature_table(spark, store.config.project_root, "profile")
    latest = {
        k[0]: r["feature_timestamp"].to_pydatetime()
        for k, r in delta_latest(spark, store, "profile", ["customer_id"], 30 * DAY).items()
    }
    now = datetime.now(UTC).replace(tzinfo=None)
    appended = [
        ("c1", latest["c1"] + timedelta(hours=1), 501),  # newer: served
        ("c2", latest["c2"] + timedelta(hours=2), 502),  # newer: served
        ("c3", latest["c3"] - timedelta(hours=1), 503),  # late, older than c3's latest: refused
        ("c40", now - timedelta(hours=1), 540),  # a new entity: served
        ("c4", now + timedelta(days=3), 504),  # in the future: not served yet
    ] + [(f"c{i}", latest[f"c{i}"] + timedelta(hours=3), 600 + i) for i in range(5, 12)]
    new = spark.createDataFrame(
        [(c, ts, age, "app", 0.5, True, T0.date(), ts) for c, ts, age in appended],
        "customer_id string, feature_timestamp timestamp, age bigint, city string, "
        "score double, active boolean, signup date, created_timestamp timestamp",
    ).select(*table.columns)
    new.write.format("delta").mode("append").save(f"{store.config.project_root}/features/profile")

    # killed after one batch of 7 (test hook), then rerun: the state did not advance
    cat = store._serving_catalog()
    with pytest.raises(Exception, match="injected failure"):
        sync_view(
            spark,
            store.config.project_root,
            cat.view("profile"),
            cat.join_keys["profile"],
            store.online_store,
            fail_after_partitions=0,
        )
    assert store.online_store.state("profile").version == first.version
    inc = store.sync_online("profile")
    assert inc.mode == "incremental" and inc.reason.startswith("rows inserted"), inc.reason
    assert inc.reason.endswith("read from their data files"), inc.reason
    # c1, c2, c40 and c5..c11 are served (some already by the killed run: rewritten or skipped)
    assert inc.keys_written + inc.keys_skipped >= 10 and inc.keys_deleted == 0
    assert assert_redis_equals_delta(spark, store, 41) == n + 1
    got = store.get_online_features(["profile:age"], [{"customer": c} for c in ("c1", "c3", "c4")])
    assert got.to_dict()["age"][0] == 501 and got.to_dict()["age"][1] != 503
    assert got.to_dict()["age"][2] != 504

    # a rewrite that replaces rows (materialization) takes the general path again; it drops
    # the appended rows, which moves c1/c2 back in time: only a full reload serves that
    store.materialize("profile", T0 - DAY, T0 + 20 * DAY)
    general = store.sync_online("profile")
    assert general.reason.startswith("changes of Delta versions"), general.reason
    assert general.keys_deleted == 1  # c40 has no row any more
    store.sync_online("profile", mode="full")
    assert assert_redis_equals_delta(spark, store, 41) == n

    # with column mapping the data files' columns are not the table's: inserts come from the
    # change data feed instead of the files
    path = f"{store.config.project_root}/features/profile"
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
        "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')"
    )
    assert store.sync_online("profile").reason.startswith("changes of Delta versions")
    new.where("customer_id = 'c1'").withColumn("age", F.lit(777).cast("bigint")).write.format(
        "delta"
    ).mode("append").save(path)
    feed = store.sync_online("profile")
    assert feed.reason.endswith("read from the change data feed"), feed.reason
    assert feed.keys_written == 1
    assert assert_redis_equals_delta(spark, store, 41) == n
    assert store.get_online_features(["profile:age"], [{"customer": "c1"}]).to_dict()["age"] == [
        777
    ]
