"""Training sets exact at each label's own time, against a brute-force reference.

``get_historical_features(..., label_time_exact=True)`` evaluates every window of an aggregated
view at the label's timestamp from the source events. The reference loops over the raw events
with the documented convention ``t - window < event_ts <= t`` and the engine's value rules.
Labels are placed exactly at event times (ties), exactly ``window`` after an event (the event is
out), one microsecond before that (in), between cadence boundaries (13:37), before any event
(empty windows), on keys without events and on null keys.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import Aggregation, DeltaSource, Entity, FeatureView
from fstore_spark.errors import PointInTimeError
from fstore_spark.store import FeatureStore

DAY, HOUR, US = timedelta(days=1), timedelta(hours=1), timedelta(microseconds=1)
T0 = datetime(2024, 3, 1, tzinfo=UTC)
WINDOWS = [6 * HOUR, 2 * DAY]

AGGS = [
    Aggregation(column="amount", function="sum", window="6h", name="sum_6h"),
    Aggregation(column="amount", function="sum", window="2d", name="sum_2d"),
    Aggregation(column="amount", function="sum", name="sum_life"),
    Aggregation(column="*", function="count", window="6h", name="count_6h"),
    Aggregation(column="amount", function="count", window="2d", name="count_amount_2d"),
    Aggregation(column="amount", function="mean", window="2d", name="mean_2d"),
    Aggregation(column="amount", function="min", window="6h", name="min_6h"),
    Aggregation(column="amount", function="max", name="max_life"),
    Aggregation(column="amount", function="stddev", window="2d", name="std_2d"),
    Aggregation(column="amount", function="last", window="6h", name="last_6h"),
    Aggregation(column="category", function="last", name="last_cat"),
    Aggregation(column="category", function="count_distinct", window="2d", name="distinct_2d"),
    Aggregation(column="category", function="approx_count_distinct", name="approx_life"),
    Aggregation(column="*", function="recency", window="2d", name="recency_2d"),
    Aggregation(column="amount", function="recency", name="recency_amount"),
    Aggregation(column="amount", function="sum", window="2d", filter="amount > 50", name="big_2d"),
    Aggregation(
        column="category", function="count", window="6h", filter="category != 'x'", name="nx_6h"
    ),
]
# the filters above, in Python (SQL: a comparison with null is not true)
FILTERS = {
    "big_2d": lambda e: e["amount"] is not None and e["amount"] > 50,
    "nx_6h": lambda e: e["category"] is not None and e["category"] != "x",
}
FEATURES = [f"f:{a.name}" for a in AGGS]
EVENT_SCHEMA = (
    "customer_id string, region bigint, ts timestamp, created timestamp, "
    "amount double, category string"
)
LABEL_SCHEMA = "label_id bigint, customer_id string, region bigint, event_timestamp timestamp"


def make_store(spark, root: Path) -> FeatureStore:
    store = FeatureStore(config=FeatureStoreConfig.for_local(root, project="lt"), spark=spark)
    ent = Entity(name="customer", join_keys={"customer_id": "string", "region": "int64"})
    store.apply([ent, view_on("events", "raw/events")])
    return store


def view_on(source: str, path: str) -> FeatureView:
    """The view of every test, reading the Delta source ``source`` at ``path``."""
    src = DeltaSource(
        name=source,
        path=path,
        timestamp_column="ts",
        created_timestamp_column="created",
        schema={
            "customer_id": "string",
            "region": "int64",
            "amount": "float64",
            "category": "string",
        },
    )
    return FeatureView(
        name="f", entities=["customer"], source=src, ttl="30d", cadence="6h", aggregations=AGGS
    )


def one_event(ts: datetime, amount: float, category: str) -> dict:
    """An event of customer ("a", 1), created at its event time."""
    return {
        "customer_id": "a",
        "region": 1,
        "ts": ts,
        "created": ts,
        "amount": amount,
        "category": category,
    }


def write_events(spark, store: FeatureStore, events: list[dict], mode: str = "overwrite") -> None:
    cols = [c.split()[0] for c in EVENT_SCHEMA.split(", ")]
    df = spark.createDataFrame([tuple(e[c] for c in cols) for e in events], EVENT_SCHEMA)
    df.write.format("delta").mode(mode).save(store.table_path("raw/events"))


def label_frame(spark, labels: list[dict]):
    rows = [(i, lab["customer_id"], lab["region"], lab["t"]) for i, lab in enumerate(labels)]
    return spark.createDataFrame(rows, LABEL_SCHEMA)


def reference(events: list[dict], key: tuple, t: datetime) -> dict:
    """Brute force: every aggregation of one entity at instant t."""
    if key[0] is None or key[1] is None:
        return {a.name: None for a in AGGS}
    mine = [
        e
        for e in events
        if e["ts"] is not None and (e["customer_id"], e["region"]) == key and e["ts"] <= t
    ]
    out = {}
    for a in AGGS:
        es = [e for e in mine if a.window is None or e["ts"] > t - a.window]
        es = [e for e in es if FILTERS.get(a.name, lambda e: True)(e)]
        if a.column != "*":
            es = [e for e in es if e[a.column] is not None]
        vals = [1 if a.column == "*" else e[a.column] for e in es]
        out[a.name] = _apply(a, es, vals, t)
    return out


def _apply(a: Aggregation, es: list[dict], vals: list, t: datetime):
    fn = a.function
    if fn in ("count", "count_distinct", "approx_count_distinct"):
        return len(vals) if fn == "count" else len(set(vals))
    if not vals:
        return None
    if fn == "sum":
        return math.fsum(vals)
    if fn == "mean":
        return statistics.fmean(vals)
    if fn == "stddev":
        return statistics.stdev(vals) if len(vals) >= 2 else None
    if fn in ("min", "max"):
        return min(vals) if fn == "min" else max(vals)
    if fn == "last":
        return max(es, key=lambda e: (e["ts"], e["created"], e[a.column]))[a.column]
    assert fn == "recency"
    return (t - max(e["ts"] for e in es)) / DAY


def assert_matches(got: pd.DataFrame, labels: list[dict], events: list[dict]) -> int:
    """Every label row exactly once, each feature equal to the reference."""
    assert sorted(got["label_id"]) == list(range(len(labels)))
    checked = 0
    for row in got.to_dict("records"):
        lab = labels[row["label_id"]]
        want = reference(events, (lab["customer_id"], lab["region"]), lab["t"])
        for name, ref in want.items():
            have = row[name]
            have = None if have is None or (isinstance(have, float) and math.isnan(have)) else have
            ctx = f"{name} for {lab}: got {have!r}, reference {ref!r}"
            if ref is None:
                assert have is None, ctx
            elif isinstance(ref, float):
                assert have is not None and math.isclose(have, ref, rel_tol=1e-9, abs_tol=1e-6), ctx
            else:
                assert have == ref, ctx
            checked += 1
    return checked


OFFSETS = [timedelta(0), US, 6 * HOUR, 6 * HOUR - US, 13 * HOUR + 37 * 60 * 1_000_000 * US]
event_st = st.fixed_dictionaries(
    {
        "customer_id": st.one_of(st.sampled_from(["a", "b"]), st.just(None)),
        "region": st.sampled_from([1, 2]),
        "day": st.integers(0, 4),
        "offset": st.sampled_from(OFFSETS),
        "no_time": st.sampled_from([False] * 12 + [True]),
        "created_s": st.integers(0, 2),
        "amount": st.one_of(st.none(), st.sampled_from([0.0, 10.5, 60.0, 99.25, -3.0, 1e6])),
        "category": st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    }
)
# where a label goes: at an event (ties), window after it (the event is out), a microsecond
# less (in), anywhere on a 13:37-ish grid, on a key without events, or with a null key
label_st = st.tuples(
    st.sampled_from(["event", "edge", "inside", "free", "unknown", "null_key"]),
    st.integers(0, 10_000),
    st.sampled_from(WINDOWS),
    st.integers(-1, 6),
    st.sampled_from(OFFSETS + [12 * HOUR, 23 * HOUR + 59 * 60 * 1_000_000 * US]),
)


def realize(raw: list[dict]) -> list[dict]:
    out = []
    for r in raw:
        ts = T0 + r["day"] * DAY + r["offset"]
        out.append(
            {
                "customer_id": r["customer_id"],
                "region": r["region"],
                "ts": None if r["no_time"] else ts,
                "created": ts + timedelta(seconds=r["created_s"]),
                "amount": r["amount"],
                "category": r["category"],
            }
        )
    return out


def place_labels(events: list[dict], specs: list[tuple]) -> list[dict]:
    timed = [e for e in events if e["ts"] is not None and e["customer_id"] is not None]
    labels = []
    for kind, i, window, day, offset in specs:
        if kind in ("event", "edge", "inside", "null_key") and timed:
            e = timed[i % len(timed)]
            shift = {"event": timedelta(0), "edge": window, "inside": window - US}
            key = (None, e["region"]) if kind == "null_key" else (e["customer_id"], e["region"])
            t = e["ts"] + shift.get(kind, timedelta(0))
        else:
            key = ("zz", 1) if kind == "unknown" else (["a", "b"][i % 2], 1 + i % 2)
            t = T0 + day * DAY + offset
        labels.append({"customer_id": key[0], "region": key[1], "t": t})
    return labels


@pytest.fixture(scope="module")
def lt_store(spark, tmp_path_factory) -> FeatureStore:
    """One store and view for every example; each example overwrites the source events."""
    return make_store(spark, tmp_path_factory.mktemp("lt"))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.lists(event_st, min_size=1, max_size=30),
    specs=st.lists(label_st, min_size=1, max_size=40),
)
def test_label_time_windows_match_bruteforce(spark, lt_store, raw, specs) -> None:
    events = realize(raw)
    labels = place_labels(events, specs)
    labels += labels[: len(labels) // 4]  # duplicate label rows come out once each
    write_events(spark, lt_store, events)
    ts = lt_store.get_historical_features(
        label_frame(spark, labels), FEATURES, label_time_exact=True
    )
    assert ts.inputs[0].delta_version is None  # never materialized: the source as it is now
    got = ts.to_pandas()
    assert list(got.columns[:4]) == ["label_id", "customer_id", "region", "event_timestamp"]
    assert assert_matches(got, labels, events) == len(labels) * len(AGGS)


def random_events(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    raw = [
        {
            "customer_id": rng.choice(["a", "b", "c"]),
            "region": rng.choice([1, 2]),
            "day": rng.randint(0, 4),
            "offset": rng.choice(OFFSETS + [timedelta(seconds=rng.randint(0, 86_399))]),
            "no_time": False,
            "created_s": rng.randint(0, 2),
            "amount": rng.choice([None, 0.0, 10.5, 60.0, 99.25, -3.0, 1e6]),
            "category": rng.choice([None, "x", "y", "z"]),
        }
        for _ in range(n)
    ]
    return realize(raw)


def test_at_cadence_boundaries_both_modes_agree(spark, tmp_path: Path) -> None:
    """On cadence instants (within ttl), label-time windows equal the materialized rows."""
    store = make_store(spark, tmp_path)
    events = random_events(11, 120)
    write_events(spark, store, events)
    store.materialize("f", T0, T0 + 7 * DAY)
    keys = sorted({(e["customer_id"], e["region"]) for e in events})
    grid = [T0 + i * 6 * HOUR for i in range(29)]
    labels = [{"customer_id": k[0], "region": k[1], "t": t} for k in keys for t in grid]
    frame = label_frame(spark, labels)
    exact = store.get_historical_features(frame, FEATURES, label_time_exact=True).to_pandas()
    default = store.get_historical_features(frame, FEATURES).to_pandas()
    exact, default = exact.set_index("label_id").sort_index(), default.set_index("label_id")
    default = default.sort_index()
    found = default["count_6h"].notna()  # the as-of join found a feature row
    assert found.sum() > len(labels) // 2
    names = [a.name for a in AGGS]
    pd.testing.assert_frame_equal(
        exact.loc[found, names],
        default.loc[found, names],
        check_dtype=False,  # the default's missing rows make its counts floats
        check_exact=False,
        rtol=1e-9,
    )
    # before an entity's first event the default has no row (nulls), windows are empty: 0
    assert (exact.loc[~found, "count_6h"] == 0).all()
    assert assert_matches(exact.reset_index(), labels, events) == len(labels) * len(AGGS)


def test_as_of_pins_the_source_version_the_feature_table_was_built_from(
    spark, tmp_path: Path
) -> None:
    store = make_store(spark, tmp_path)
    first = [one_event(T0 + 13 * HOUR, 10.0, "x")]
    write_events(spark, store, first)
    r1 = store.materialize("f", T0, T0 + 3 * DAY)
    store.create_feature_set("s", ["f:sum_2d"])  # pinned to r1
    late = [{**first[0], "ts": T0 + DAY + 14 * HOUR, "amount": 5.0, "category": "y"}]
    write_events(spark, store, late, mode="append")
    r2 = store.materialize("f", T0, T0 + 3 * DAY)
    assert r2.table_version > r1.table_version
    labels = label_frame(spark, [{"customer_id": "a", "region": 1, "t": T0 + DAY + 15 * HOUR}])
    feats = ["f:sum_2d", "f:last_cat", "f:distinct_2d"]

    def read(as_of):
        ts = store.get_historical_features(labels, feats, as_of=as_of, label_time_exact=True)
        row = ts.to_pandas().iloc[0]
        return ts.inputs[0].delta_version, (row["sum_2d"], row["last_cat"], row["distinct_2d"])

    assert read({"f": r1.table_version}) == (r1.table_version, (10.0, "x", 1))
    assert read(None) == (r2.table_version, (15.0, "y", 2))
    assert read({"f": r2.table_version}) == (r2.table_version, (15.0, "y", 2))

    def from_set(**kw):
        return store.get_training_set("s", labels, **kw).to_pandas().iloc[0]["sum_2d"]

    # a feature set version pins the same way (the 14:00 event is after its version)
    assert from_set(label_time_exact=True) == 10.0
    assert from_set(latest=True, label_time_exact=True) == 15.0


def test_a_version_computed_from_another_source_is_refused(spark, tmp_path: Path) -> None:
    """Its recorded source version would be read from the view's new source table."""
    store = make_store(spark, tmp_path)
    write_events(spark, store, [one_event(T0 + 13 * HOUR, 10.0, "x")])
    r1 = store.materialize("f", T0, T0 + DAY)
    store.apply([view_on("events_v2", "raw/events_v2")])
    labels = label_frame(spark, [{"customer_id": "a", "region": 1, "t": T0 + 20 * HOUR}])
    for as_of in ({"f": r1.table_version}, None):
        with pytest.raises(PointInTimeError, match="computed from source 'events'"):
            store.get_historical_features(labels, ["f:sum_2d"], as_of=as_of, label_time_exact=True)
    # the feature table itself stays readable as it was computed
    kept = store.get_historical_features(labels, ["f:sum_2d"], as_of={"f": r1.table_version})
    assert kept.to_pandas().iloc[0]["sum_2d"] == 10.0


def test_last_ties_go_to_the_latest_created_then_the_larger_value(spark, lt_store) -> None:
    """Random events rarely tie on event time: the tie rules of ``last`` on fixed ones."""
    at = T0 + 13 * HOUR + timedelta(minutes=37)

    def ev(cid, region, ts, created, amount, category):
        return dict(
            zip(
                ["customer_id", "region", "ts", "created", "amount", "category"],
                [cid, region, ts, created, amount, category],
                strict=True,
            )
        )

    events = [
        ev("a", 1, at, at + timedelta(seconds=2), 10.0, "x"),  # latest created wins...
        ev("a", 1, at, at, 99.25, "z"),  # ...over a larger value
        ev("b", 1, at, at, 10.5, "x"),
        ev("b", 1, at, at, 60.0, "y"),  # same time and created: the larger value
        ev("b", 2, at - HOUR, at - HOUR, 1.0, "x"),
        ev("b", 2, at, None, 5.0, "y"),  # no created time: never the last one (as the engine)
    ]
    write_events(spark, lt_store, events)
    labels = [{"customer_id": k, "region": r, "t": at} for k, r in [("a", 1), ("b", 1), ("b", 2)]]
    got = (
        lt_store.get_historical_features(
            label_frame(spark, labels),
            ["f:last_6h", "f:last_cat", "f:count_6h"],
            label_time_exact=True,
        )
        .to_pandas()
        .sort_values("label_id")
    )
    assert got["last_6h"].tolist() == [10.0, 60.0, 1.0]
    assert got["last_cat"].tolist() == ["x", "y", "x"]
    assert got["count_6h"].tolist() == [2, 2, 2]
