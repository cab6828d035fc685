"""As-of join against pandas ``merge_asof`` on randomized data, plus time travel."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import DeltaSource, Entity, FeatureSet, FeatureView, Field
from fstore_spark.errors import PointInTimeError
from fstore_spark.offline.asof import asof_join
from fstore_spark.offline.training import export_training_set, temporal_split
from fstore_spark.store import FeatureStore

T0 = datetime(2024, 1, 1)
TTL = timedelta(hours=10)


def reference(labels: pd.DataFrame, feats: pd.DataFrame, keys: list[str], value: str, ttl) -> list:
    """pandas merge_asof(backward, tolerance=ttl) per key, ties on ts broken by created."""
    f = feats.sort_values(["ts", "created"]).drop_duplicates(keys + ["ts"], keep="last")
    f = f.rename(columns={"ts": "fts"})[keys + ["fts", value]]
    lab = labels.reset_index().rename(columns={"index": "_row"})
    ok = lab[keys].notna().all(axis=1)
    out = pd.Series([None] * len(lab), dtype=object)
    if ok.any() and len(f):
        left = lab[ok].sort_values("label_ts")
        merged = pd.merge_asof(
            left,
            f.sort_values("fts"),
            left_on="label_ts",
            right_on="fts",
            by=keys,
            direction="backward",
            tolerance=ttl if ttl is not None else None,
            allow_exact_matches=True,
        )
        for row, v in zip(merged["_row"], merged[value], strict=True):
            out[row] = None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
    return list(out)


hours = st.integers(0, 30).map(lambda h: T0 + timedelta(hours=h))
label_st = st.fixed_dictionaries(
    {
        "customer_id": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
        "region": st.sampled_from([1, 2]),
        "label_ts": hours,
        "y": st.integers(0, 1),
    }
)
feat_st = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["a", "b", "c"]),
        "region": st.sampled_from([1, 2]),
        "ts": hours,
        "created": st.integers(0, 3).map(lambda s: T0 + timedelta(seconds=s)),
        "value": st.one_of(st.none(), st.integers(-5, 100).map(float)),
    }
)

LABEL_SCHEMA = "customer_id string, region bigint, label_ts timestamp, y bigint"
FEAT_SCHEMA = "customer_id string, region bigint, ts timestamp, created timestamp, value double"


def sdf(spark, rows: list[dict], schema: str):
    cols = [c.split()[0] for c in schema.split(", ")]
    return spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], schema)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    labels=st.lists(label_st, min_size=1, max_size=20),
    feats=st.lists(feat_st, min_size=0, max_size=25),
    composite=st.booleans(),
    use_ttl=st.booleans(),
)
def test_asof_matches_merge_asof(spark, labels, feats, composite, use_ttl) -> None:
    keys = ["customer_id", "region"] if composite else ["customer_id"]
    ttl = TTL if use_ttl else None
    labels = labels + labels[:2]  # duplicate label rows must each come out once
    ldf = sdf(spark, labels, LABEL_SCHEMA)
    fdf = sdf(spark, feats, FEAT_SCHEMA)
    out = asof_join(
        ldf,
        fdf,
        keys=keys,
        label_ts="label_ts",
        feature_ts="ts",
        value_columns=["value"],
        ttl=ttl,
        created_ts="created",
        prune_bounds=(min(r["label_ts"] for r in labels), max(r["label_ts"] for r in labels)),
    )
    got = out.toPandas()
    assert len(got) == len(labels)  # every label row exactly once
    assert list(got.columns) == ["customer_id", "region", "label_ts", "y", "value"]
    lab = pd.DataFrame(labels)
    fpd = pd.DataFrame(feats, columns=["customer_id", "region", "ts", "created", "value"])
    want = reference(lab, fpd, keys, "value", ttl)

    # compare as multisets of (label columns, value): row order is not part of the contract
    def norm(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    got_rows = sorted(
        (str(r.customer_id), r.region, str(pd.Timestamp(r.label_ts)), r.y, str(norm(r.value)))
        for r in got.itertuples()
    )
    want_rows = sorted(
        (str(r["customer_id"]), r["region"], str(pd.Timestamp(r["label_ts"])), r["y"], str(norm(w)))
        for r, w in zip(labels, want, strict=True)
    )
    assert got_rows == want_rows


def test_ttl_boundary_ties_and_null_values(spark) -> None:
    labels = [
        {"customer_id": "a", "region": 1, "label_ts": T0 + TTL, "y": 1},  # exactly one ttl old
        {"customer_id": "a", "region": 1, "label_ts": T0 + TTL + timedelta(microseconds=1), "y": 0},
        {"customer_id": "b", "region": 1, "label_ts": T0 + timedelta(hours=1), "y": 1},
        {
            "customer_id": "b",
            "region": 1,
            "label_ts": T0 - timedelta(hours=1),
            "y": 1,
        },  # before any
        {"customer_id": None, "region": 1, "label_ts": T0 + timedelta(hours=1), "y": 1},
    ]
    feats = [
        {"customer_id": "a", "region": 1, "ts": T0, "created": T0, "value": 1.0},
        {"customer_id": "b", "region": 1, "ts": T0, "created": T0, "value": 5.0},
        {
            "customer_id": "b",
            "region": 1,
            "ts": T0,
            "created": T0 + timedelta(seconds=1),
            "value": 6.0,
        },
        {
            "customer_id": "b",
            "region": 1,
            "ts": T0 + timedelta(hours=1),
            "created": T0,
            "value": None,
        },
    ]
    out = asof_join(
        sdf(spark, labels, LABEL_SCHEMA),
        sdf(spark, feats, FEAT_SCHEMA),
        keys=["customer_id"],
        label_ts="label_ts",
        feature_ts="ts",
        value_columns=["value"],
        ttl=TTL,
        created_ts="created",
    ).toPandas()
    got = {(r.customer_id, pd.Timestamp(r.label_ts)): r.value for r in out.itertuples()}
    assert got[("a", pd.Timestamp(T0 + TTL))] == 1.0
    assert math.isnan(got[("a", pd.Timestamp(T0 + TTL + timedelta(microseconds=1)))])
    # the latest row at T0+1h has a null value: it is not filled from the older row
    assert math.isnan(got[("b", pd.Timestamp(T0 + timedelta(hours=1)))])
    assert math.isnan(got[("b", pd.Timestamp(T0 - timedelta(hours=1)))])
    assert math.isnan(got[(None, pd.Timestamp(T0 + timedelta(hours=1)))])
    with pytest.raises(PointInTimeError, match="clash"):
        asof_join(
            sdf(spark, labels, LABEL_SCHEMA),
            sdf(spark, feats, FEAT_SCHEMA).withColumnRenamed("value", "y"),
            keys=["customer_id"],
            label_ts="label_ts",
            feature_ts="ts",
            value_columns=["y"],
        )


def _store(spark, root: Path) -> FeatureStore:
    store = FeatureStore(config=FeatureStoreConfig.for_local(root, project="pit"), spark=spark)
    src = DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts")
    view = FeatureView(
        name="profile",
        entities=["customer"],
        source=src,
        ttl="30d",
        features=[
            Field(name="age", dtype="int64"),
            Field(name="city", dtype="string", default="unknown"),
        ],
    )
    store.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            view,
            FeatureSet(name="fs", features=["profile:*"]),
        ]
    )
    return store


def _write_profiles(spark, store: FeatureStore, rows, mode="overwrite") -> None:
    (
        spark.createDataFrame(rows, "customer_id string, ts timestamp, age bigint, city string")
        .write.format("delta")
        .mode(mode)
        .save(store.table_path("raw/profiles"))
    )


def test_time_travel_rebuilds_old_training_set(spark, lakehouse: Path) -> None:
    store = _store(spark, lakehouse)
    day = timedelta(days=1)
    _write_profiles(spark, store, [("a", T0, 30, "Recife"), ("b", T0, 40, None)])
    r1 = store.materialize("profile", T0 - day, T0 + 10 * day)
    # the source is corrected; a new materialization is a new Delta version
    _write_profiles(spark, store, [("a", T0, 31, "Lisboa"), ("b", T0, 41, "Porto")])
    r2 = store.materialize("profile", T0 - day, T0 + 10 * day)
    assert r2.table_version == r1.table_version + 1
    labels = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "event_timestamp": pd.to_datetime([T0 + day] * 3, utc=True),
        }
    )
    now = (
        store.get_historical_features(labels, feature_set="fs").to_pandas().set_index("customer_id")
    )
    old = store.get_historical_features(
        labels, ["profile:age", "profile:city"], as_of={"profile": r1.table_version}
    )
    assert old.inputs[0].delta_version == r1.table_version
    assert old.inputs[0].view_version == 1 and old.inputs[0].definition_hash
    old_pd = old.to_pandas().set_index("customer_id")
    assert now.loc["a", "age"] == 31 and old_pd.loc["a", "age"] == 30
    assert old_pd.loc["b", "city"] == "unknown"  # null value -> the feature's default
    assert old_pd.loc["c", "city"] == "unknown" and pd.isna(old_pd.loc["c", "age"])
    # get_training_features: start/end filter the labels
    seed = store.get_training_features(
        ["profile:age"], labels, "event_timestamp", start_date=T0, end_date=T0 + 2 * day
    )
    assert seed.count() == 3


def test_temporal_split_and_export(spark, tmp_path: Path) -> None:
    pdf = pd.DataFrame(
        {"ts": pd.to_datetime([T0 + timedelta(hours=h % 10) for h in range(100)]), "x": range(100)}
    )
    train, test = temporal_split(pdf, 0.2, "ts")
    assert len(train) + len(test) == 100 and train.ts.max() < test.ts.min()
    sdf_ = spark.createDataFrame(pdf)
    strain, stest = temporal_split(sdf_, 0.2, "ts")
    assert strain.count() + stest.count() == 100
    assert strain.agg({"ts": "max"}).first()[0] < stest.agg({"ts": "min"}).first()[0]
    path = export_training_set(stest, tmp_path / "out", format="parquet")
    assert spark.read.parquet(path).count() == stest.count()
    with pytest.raises(PointInTimeError):
        temporal_split(pdf, 1.5, "ts")


def test_two_views_with_different_keys_match_merge_asof(spark, lakehouse: Path) -> None:
    """One request, two views: one keyed by customer, one by a composite (city, region) key."""
    import random

    rnd = random.Random(7)
    store = FeatureStore(config=FeatureStoreConfig.for_local(lakehouse, project="two"), spark=spark)
    cust = Entity(name="customer", join_keys=["customer_id"])
    place = Entity(name="place", join_keys={"city": "string", "region": "int64"})
    v1 = FeatureView(
        name="spend",
        entities=["customer"],
        ttl="5h",
        source=DeltaSource(name="s1", path="raw/s1", timestamp_column="ts"),
        features=[Field(name="amount", dtype="float64")],
    )
    v2 = FeatureView(
        name="weather",
        entities=["place"],
        ttl=None,
        source=DeltaSource(name="s2", path="raw/s2", timestamp_column="ts"),
        features=[Field(name="temp", dtype="float64")],
    )
    store.apply([cust, place, v1, v2])
    s1 = [
        (rnd.choice("abc"), T0 + timedelta(hours=rnd.randint(0, 20)), float(rnd.randint(0, 9)))
        for _ in range(40)
    ]
    s2 = [
        (
            rnd.choice(["x", "y"]),
            rnd.choice([1, 2]),
            T0 + timedelta(hours=rnd.randint(0, 20)),
            float(rnd.randint(0, 9)),
        )
        for _ in range(40)
    ]
    # one row per key and time (a source with two rows at one instant is ambiguous)
    s1 = list({(k, t): (k, t, v) for k, t, v in s1}.values())
    s2 = list({(c, r, t): (c, r, t, v) for c, r, t, v in s2}.values())
    spark.createDataFrame(s1, "customer_id string, ts timestamp, amount double").write.format(
        "delta"
    ).save(store.table_path("raw/s1"))
    spark.createDataFrame(s2, "city string, region bigint, ts timestamp, temp double").write.format(
        "delta"
    ).save(store.table_path("raw/s2"))
    for v in ("spend", "weather"):
        store.materialize(v, T0 - timedelta(days=1), T0 + timedelta(days=2))
    labels = pd.DataFrame(
        [
            {
                "customer_id": rnd.choice(["a", "b", "c", None]),
                "city": rnd.choice(["x", "y"]),
                "region": rnd.choice([1, 2]),
                "event_timestamp": T0 + timedelta(hours=rnd.randint(-2, 24)),
            }
            for _ in range(60)
        ]
    )
    got = store.get_historical_features(labels, ["spend:amount", "weather:temp"]).to_pandas()
    assert len(got) == len(labels)
    f1 = pd.DataFrame(s1, columns=["customer_id", "ts", "amount"]).assign(created=T0)
    f2 = pd.DataFrame(s2, columns=["city", "region", "ts", "temp"]).assign(created=T0)
    lab = labels.rename(columns={"event_timestamp": "label_ts"})
    want_amount = reference(lab, f1, ["customer_id"], "amount", timedelta(hours=5))
    want_temp = reference(lab, f2, ["city", "region"], "temp", None)

    def key(r):
        return (
            str(r["customer_id"]),
            r["city"],
            r["region"],
            str(pd.Timestamp(r["event_timestamp"])),
        )

    def norm(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    want = sorted(
        (*key(r), str(norm(a)), str(norm(t)))
        for r, a, t in zip(labels.to_dict("records"), want_amount, want_temp, strict=True)
    )
    have = sorted(
        (*key(r), str(norm(r["amount"])), str(norm(r["temp"]))) for r in got.to_dict("records")
    )
    assert have == want

    # Feast-style: the label rows may key a single-key entity by its name, as online reads do
    by_name = labels.rename(columns={"customer_id": "customer"})
    named = store.get_historical_features(by_name, ["spend:amount", "weather:temp"]).to_pandas()
    assert "customer_id" not in named.columns and "customer" in named.columns
    renamed = named.rename(columns={"customer": "customer_id"})
    assert (
        sorted(
            (*key(r), str(norm(r["amount"])), str(norm(r["temp"])))
            for r in renamed.to_dict("records")
        )
        == want
    )
    with pytest.raises(PointInTimeError, match=r"lacks join key\(s\) \['city'\]"):
        store.get_historical_features(by_name.drop(columns="city"), ["weather:temp"])

    # Feast's feature_service= names a feature set (feature_set= does the same)
    store.create_feature_set("spend_set", ["spend:amount"])
    served = store.get_historical_features(labels, feature_service="spend_set").to_pandas()
    assert sorted((*key(r), str(norm(r["amount"]))) for r in served.to_dict("records")) == sorted(
        (*key(r), str(norm(r["amount"]))) for r in got.to_dict("records")
    )
    with pytest.raises(PointInTimeError, match="exactly one"):
        store.get_historical_features(labels, feature_set="spend_set", feature_service="spend_set")
