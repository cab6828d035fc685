"""Aggregation engine against a brute-force reference on randomized data.

The reference evaluates every aggregation for every entity at every cadence step of a dense
grid, by looping over the raw events with the documented boundary convention
``t - window < ts <= t``. The engine's table is sparse (rows only where a value changes), so it
is read the way every consumer reads it: the latest row with ``feature_timestamp <= t``.
"""

from __future__ import annotations

import math
import shutil
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from fstore_spark.config import FeatureStoreConfig
from fstore_spark.core import Aggregation, DeltaSource, Entity, FeatureView
from fstore_spark.lakehouse.tables import read_feature_table, table_history
from fstore_spark.offline import late as late_module
from fstore_spark.offline.materialization import MaterializationResult
from fstore_spark.store import FeatureStore

DAY = timedelta(days=1)
T0 = datetime(2024, 3, 1, tzinfo=UTC)

AGGS = [
    Aggregation(column="amount", function="sum", window="2d", name="sum_2d"),
    Aggregation(column="*", function="count", window="2d", name="count_2d"),
    Aggregation(column="amount", function="count", window="5d", name="count_amount_5d"),
    Aggregation(column="amount", function="mean", window="5d", name="mean_5d"),
    Aggregation(column="amount", function="min", window="2d", name="min_2d"),
    Aggregation(column="amount", function="max", name="max_life"),
    Aggregation(column="amount", function="stddev", window="5d", name="std_5d"),
    Aggregation(column="amount", function="last", window="2d", name="last_2d"),
    Aggregation(column="category", function="last", name="last_cat"),
    Aggregation(column="category", function="count_distinct", window="5d", name="distinct_5d"),
    Aggregation(column="category", function="approx_count_distinct", name="distinct_life"),
    Aggregation(column="*", function="recency", name="recency"),
    Aggregation(column="amount", function="sum", window="5d", filter="amount > 50", name="big_5d"),
    Aggregation(column="amount", function="sum", name="sum_life"),
]
KEYS = ["customer_id", "region"]


def make_store(
    spark, root: Path, project: str = "agg", aggs: list[Aggregation] | None = None
) -> FeatureStore:
    store = FeatureStore(config=FeatureStoreConfig.for_local(root, project=project), spark=spark)
    ent = Entity(name="customer", join_keys={"customer_id": "string", "region": "int64"})
    src = DeltaSource(
        name="events",
        path="raw/events",
        timestamp_column="ts",
        created_timestamp_column="created",
        schema={
            "customer_id": "string",
            "region": "int64",
            "amount": "float64",
            "category": "string",
        },
    )
    view = FeatureView(
        name="f",
        entities=["customer"],
        source=src,
        ttl="30d",
        cadence="1d",
        aggregations=AGGS if aggs is None else aggs,
    )
    store.apply([ent, view])
    return store


def write_events(
    spark,
    store: FeatureStore,
    rows: list[dict],
    mode: str = "overwrite",
    cdf: bool = False,
    files: int = 1,
) -> None:
    pdf = pd.DataFrame(
        rows, columns=["customer_id", "region", "ts", "created", "amount", "category"]
    )
    schema = (
        "customer_id string, region bigint, ts timestamp, created timestamp, "
        "amount double, category string"
    )
    df = spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None), schema)
    w = (df.repartition(files) if files > 1 else df).write.format("delta").mode(mode)
    if cdf:
        w = w.option("delta.enableChangeDataFeed", "true")
    w.save(store.table_path("raw/events"))


def reference(events: list[dict], key: tuple, t: datetime) -> dict:
    """Brute force: every aggregation of one entity at instant t."""
    mine = [e for e in events if (e["customer_id"], e["region"]) == key and e["ts"] <= t]

    def win(days: float | None) -> list[dict]:
        return [e for e in mine if days is None or e["ts"] > t - timedelta(days=days)]

    def vals(es: list[dict], col: str = "amount") -> list:
        return [e[col] for e in es if e[col] is not None]

    def last(es: list[dict], col: str):
        cands = [e for e in es if e[col] is not None]
        if not cands:
            return None
        return max(cands, key=lambda e: (e["ts"], e["created"], e[col]))[col]

    a2, a5 = vals(win(2)), vals(win(5))
    return {
        "sum_2d": sum(a2) if a2 else None,
        "count_2d": len(win(2)),
        "count_amount_5d": len(a5),
        "mean_5d": statistics.fmean(a5) if a5 else None,
        "min_2d": min(a2) if a2 else None,
        "max_life": max(vals(mine)) if vals(mine) else None,
        "std_5d": statistics.stdev(a5) if len(a5) >= 2 else None,
        "last_2d": last(win(2), "amount"),
        "last_cat": last(mine, "category"),
        "distinct_5d": len(set(vals(win(5), "category"))),
        "distinct_life": len(set(vals(mine, "category"))),
        "recency": (t - max(e["ts"] for e in mine)) / DAY if mine else None,
        "big_5d": sum(v for v in a5 if v > 50) if any(v > 50 for v in a5) else None,
        "sum_life": sum(vals(mine)) if vals(mine) else None,
    }


def assert_matches(table: pd.DataFrame, events: list[dict], grid: list[datetime]) -> int:
    """As-of lookup into the engine's table equals the reference at every grid instant."""
    checked = 0
    keys = sorted({(e["customer_id"], e["region"]) for e in events})
    for key in keys:
        rows = table[(table.customer_id == key[0]) & (table.region == key[1])].sort_values(
            "feature_timestamp"
        )
        for t in grid:
            ref = reference(events, key, t)
            got_rows = rows[rows.feature_timestamp <= pd.Timestamp(t)]
            if got_rows.empty:
                assert ref["count_2d"] == 0 and ref["recency"] is None, (key, t, ref)
                continue
            got = got_rows.iloc[-1].to_dict()
            elapsed = (pd.Timestamp(t) - got["feature_timestamp"]) / pd.Timedelta(days=1)
            if got["recency"] is not None and not pd.isna(got["recency"]):
                got["recency"] = got["recency"] + elapsed
            for name, want in ref.items():
                have = got[name]
                have = (
                    None if have is None or (isinstance(have, float) and math.isnan(have)) else have
                )
                ctx = f"{name} for {key} at {t}: engine {have!r}, reference {want!r}"
                if want is None:
                    assert have is None, ctx
                elif isinstance(want, float):
                    assert have is not None and math.isclose(
                        have, want, rel_tol=1e-9, abs_tol=1e-9
                    ), ctx
                else:
                    assert have == want, ctx
                checked += 1
    return checked


def to_pandas(df) -> pd.DataFrame:
    pdf = df.toPandas()
    pdf["feature_timestamp"] = pd.to_datetime(pdf["feature_timestamp"]).dt.tz_localize("UTC")
    return pdf


# timestamps on day boundaries, just after, just before, and mid-day
OFFSETS = [
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(seconds=43_200),
    DAY - timedelta(microseconds=1),
]
event = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["a", "b", "c"]),
        "region": st.sampled_from([1, 2]),
        "day": st.integers(0, 9),
        "offset": st.sampled_from(OFFSETS),
        "created_s": st.integers(0, 3),
        "amount": st.one_of(st.none(), st.sampled_from([0.0, 10.5, 60.0, 99.25, -3.0, 1e6])),
        "category": st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    }
)


def realize(raw: list[dict]) -> list[dict]:
    out = []
    for r in raw:
        ts = T0 + r["day"] * DAY + r["offset"]
        out.append(
            {
                "customer_id": r["customer_id"],
                "region": r["region"],
                "ts": ts,
                "created": ts + timedelta(seconds=r["created_s"]),
                "amount": r["amount"],
                "category": r["category"],
            }
        )
    return out


def realize_many(raws: list[list[dict]]) -> list[dict]:
    """Independent event sets in one source: set i's customers are prefixed with i.

    Entities never interact in the engine, so one materialization checks every set against the
    reference exactly as separate runs would, for the cost of one run.
    """
    return [
        {**e, "customer_id": f"{i}{e['customer_id']}"}
        for i, raw in enumerate(raws)
        for e in realize(raw)
    ]


def event_sets(n: int) -> st.SearchStrategy[list[list[dict]]]:
    """``n`` random event sets for one example (see realize_many)."""
    return st.lists(st.lists(event, min_size=1, max_size=25), min_size=n, max_size=n)


def assume_random(raws: list[list[dict]]) -> None:
    """Skip Hypothesis's first, simplest input (one identical event per set) before any Spark
    work: one materialization of many random sets checks more than several small examples."""
    assume(sum(len(r) for r in raws) >= 2 * len(raws))


GRID = [T0 + i * DAY for i in range(0, 20)]


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(raws=event_sets(8))
def test_backfill_matches_bruteforce(spark, tmp_path_factory, raws) -> None:
    assume_random(raws)
    events = realize_many(raws)
    store = make_store(spark, tmp_path_factory.mktemp("lake"))
    write_events(spark, store, events)
    store.materialize("f", GRID[0], GRID[-1])
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
    assert table.duplicated(["customer_id", "region", "feature_timestamp"]).sum() == 0
    assert assert_matches(table, events, GRID) > 0


def fixed_events() -> list[dict]:
    raw = [
        {
            "customer_id": "a",
            "region": 1,
            "day": 0,
            "offset": timedelta(0),
            "created_s": 0,
            "amount": 10.5,
            "category": "x",
        },
        {
            "customer_id": "a",
            "region": 1,
            "day": 0,
            "offset": timedelta(0),
            "created_s": 2,
            "amount": 60.0,
            "category": "y",
        },
        {
            "customer_id": "a",
            "region": 2,
            "day": 2,
            "offset": timedelta(seconds=5),
            "created_s": 0,
            "amount": None,
            "category": "x",
        },
        {
            "customer_id": "b",
            "region": 1,
            "day": 1,
            "offset": DAY - timedelta(microseconds=1),
            "created_s": 1,
            "amount": 99.25,
            "category": None,
        },
        {
            "customer_id": "b",
            "region": 1,
            "day": 5,
            "offset": timedelta(0),
            "created_s": 0,
            "amount": -3.0,
            "category": "z",
        },
        {
            "customer_id": "c",
            "region": 2,
            "day": 7,
            "offset": timedelta(seconds=43_200),
            "created_s": 0,
            "amount": 1e6,
            "category": "x",
        },
    ]
    return realize(raw)


def open_store(spark, root: Path, project: str = "agg") -> FeatureStore:
    """A store on an existing lakehouse (its registry already applied)."""
    return FeatureStore(config=FeatureStoreConfig.for_local(root, project=project), spark=spark)


@pytest.fixture(scope="module")
def fixed_lake(spark, tmp_path_factory) -> tuple[Path, MaterializationResult]:
    """A lakehouse with :func:`fixed_events` backfilled over GRID (built once; read-only)."""
    root = tmp_path_factory.mktemp("fixed")
    store = make_store(spark, root)
    write_events(spark, store, fixed_events())
    return root, store.materialize("f", GRID[0], GRID[-1])


def test_window_boundaries_exact(spark, fixed_lake) -> None:
    """Events exactly at t count for t; events exactly at t - window do not."""
    store = open_store(spark, fixed_lake[0])
    events = fixed_events()
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
    a1 = table[(table.customer_id == "a") & (table.region == 1)].set_index("feature_timestamp")
    at_t0 = a1.loc[pd.Timestamp(T0)]
    assert at_t0["count_2d"] == 2 and at_t0["sum_2d"] == pytest.approx(70.5)  # ts == t counts
    assert at_t0["last_2d"] == 60.0  # tie on ts broken by created
    at_2d = a1.loc[pd.Timestamp(T0 + 2 * DAY)]
    assert at_2d["count_2d"] == 0 and pd.isna(at_2d["sum_2d"])  # ts == t - window excluded
    assert at_2d["sum_life"] == pytest.approx(70.5)
    assert assert_matches(table, events, GRID) > 0


def test_backfill_is_idempotent(spark, fixed_lake, lakehouse: Path) -> None:
    shutil.copytree(fixed_lake[0], lakehouse, dirs_exist_ok=True)  # this test writes: a copy
    store, r1 = open_store(spark, lakehouse), fixed_lake[1]
    path = f"{store.config.project_root}/features/f"
    first = to_pandas(read_feature_table(spark, store.config.project_root, "f")).drop(
        columns="created_timestamp"
    )
    r2 = store.materialize("f", GRID[0], GRID[-1])
    second = to_pandas(read_feature_table(spark, store.config.project_root, "f")).drop(
        columns="created_timestamp"
    )
    order = ["customer_id", "region", "feature_timestamp"]
    pd.testing.assert_frame_equal(
        first.sort_values(order).reset_index(drop=True),
        second.sort_values(order).reset_index(drop=True),
    )
    assert r2.table_version == r1.table_version + 1  # one commit per run
    assert r1.rows_written == r2.rows_written == len(second)
    hist = table_history(spark, path)
    meta = hist[0]["metadata"]
    assert meta["run_id"] == r2.run_id and meta["view"] == "f" and meta["view_version"] == 1
    assert len(meta["definition_hash"]) == 64 and meta["source_version"] == 0
    assert meta["start"].startswith("2024-03-01") and meta["mode"] == "backfill"
    assert set(r2.steps) == {"source", "tiles", "features", "changes"}
    assert sum(r2.steps.values()) <= r2.seconds
    assert (r2.rows_added, r2.rows_changed, r2.rows_removed) == (0, 0, 0)  # a rerun changes nothing

    # floating-point columns are written without Parquet dictionaries, the rest keep them,
    # and the session settings used for that are gone after the write
    import pyarrow.parquet as pq

    files = sorted(Path(path).glob("*.parquet"))
    assert files
    meta_pq = pq.ParquetFile(files[0]).metadata.row_group(0)
    enc = {
        meta_pq.column(i).path_in_schema: meta_pq.column(i).encodings
        for i in range(meta_pq.num_columns)
    }
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert not dictionary & set(enc["mean_5d"]), enc["mean_5d"]
    assert dictionary & set(enc["customer_id"]), enc["customer_id"]
    assert spark.conf.get("parquet.enable.dictionary#mean_5d", None) is None

    # an append proved safe at a version is a Delta idempotent transaction: a second append
    # proved at the same version (a concurrent run) is refused, never written twice
    from fstore_spark.errors import MaterializationError
    from fstore_spark.offline.runs import RunContext
    from fstore_spark.offline.storage import write_features
    from fstore_spark.offline.versions import rows_written

    ctx = RunContext(spark, store.config.project_root, store.get_feature_view("f"), KEYS, 1)
    later = datetime(2030, 1, 1, tzinfo=UTC)
    rows = read_feature_table(spark, store.config.project_root, "f").limit(3)
    rows = rows.drop("created_timestamp").withColumn("feature_timestamp", F.lit(later))
    at = r2.table_version
    metrics, version = write_features(ctx, rows, later, later, '{"run_id": "a"}', append_at=at)
    assert (rows_written(metrics), version) == (3, at + 1)
    with pytest.raises(MaterializationError, match="another run appended"):
        write_features(ctx, rows, later, later, '{"run_id": "b"}', append_at=at)
    assert read_feature_table(spark, store.config.project_root, "f").count() == len(second) + 3


def test_a_run_reports_rows_added_changed_and_removed(spark, fixed_lake, lakehouse: Path) -> None:
    """Against the table before and after, compared in pandas: a backfill of part of the range
    reports the rows it added, changed and removed, and as written only the rows it wrote, not
    those Delta copied unchanged from the files it rewrote."""
    shutil.copytree(fixed_lake[0], lakehouse, dirs_exist_ok=True)
    store = open_store(spark, lakehouse)
    keys = ["customer_id", "region", "feature_timestamp"]

    def table() -> pd.DataFrame:
        df = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
        return df.drop(columns="created_timestamp")

    before = table()
    events = [e for e in fixed_events() if e["customer_id"] != "c"]  # c's rows go
    events = [{**e, "amount": -4.0} if e["amount"] == -3.0 else e for e in events]  # b's change
    new = {**events[0], "customer_id": "n", "ts": T0 + 10 * DAY, "created": T0 + 10 * DAY}
    write_events(spark, store, [*events, new])  # n's rows are new
    lo = GRID[5]
    r = store.materialize("f", lo, GRID[-1])
    after = table()

    old_in, new_in = before[before.feature_timestamp >= lo], after[after.feature_timestamp >= lo]
    pd.testing.assert_frame_equal(  # outside the range nothing moved
        before[before.feature_timestamp < lo].sort_values(keys).reset_index(drop=True),
        after[after.feature_timestamp < lo].sort_values(keys).reset_index(drop=True),
    )
    both = old_in.merge(new_in, on=keys, how="outer", suffixes=("_o", "_n"), indicator=True)
    feats = [c for c in before.columns if c not in keys]
    same = pd.Series(True, index=both.index)
    for f in feats:
        o, n = both[f"{f}_o"], both[f"{f}_n"]
        same &= (o == n) | (o.isna() & n.isna())
    matched = both["_merge"] == "both"
    want = {
        "added": int((both["_merge"] == "right_only").sum()),
        "changed": int((matched & ~same).sum()),
        "removed": int((both["_merge"] == "left_only").sum()),
    }
    assert min(want.values()) > 0, want  # the data exercises every kind
    assert {"added": r.rows_added, "changed": r.rows_changed, "removed": r.rows_removed} == want
    assert r.rows_written == len(new_in)
    metrics = table_history(spark, f"{store.config.project_root}/features/f")[0]["metrics"]
    assert int(metrics["numOutputRows"]) > r.rows_written  # Delta copied rows outside the range


def more_events() -> list[dict]:
    """New data after a first run: a late event within the lateness bound (day 7), new
    days, a new entity."""
    return realize(
        [
            {
                "customer_id": "a",
                "region": 1,
                "day": 7,
                "offset": timedelta(seconds=7),
                "created_s": 0,
                "amount": 5.0,
                "category": "q",
            },
            {
                "customer_id": "b",
                "region": 1,
                "day": 9,
                "offset": timedelta(0),
                "created_s": 0,
                "amount": 51.0,
                "category": "z",
            },
            {
                "customer_id": "d",
                "region": 1,
                "day": 10,
                "offset": timedelta(seconds=1),
                "created_s": 0,
                "amount": 2.0,
                "category": "x",
            },
        ]
    )


def late_beyond_events() -> list[dict]:
    """An event older than the lateness bound of the incremental run."""
    return realize(
        [
            {
                "customer_id": "a",
                "region": 1,
                "day": 1,
                "offset": timedelta(0),
                "created_s": 0,
                "amount": 7.0,
                "category": "x",
            }
        ]
    )


@pytest.fixture(scope="module")
def full_backfill(spark, tmp_path_factory) -> pd.DataFrame:
    """The reference for incremental runs: one backfill of fixed + more events over GRID."""
    full = make_store(spark, tmp_path_factory.mktemp("full"))
    write_events(spark, full, fixed_events() + more_events())
    full.materialize("f", GRID[0], GRID[-1])
    return to_pandas(read_feature_table(spark, full.config.project_root, "f")).drop(
        columns="created_timestamp"
    )


@pytest.mark.parametrize(
    ("cdf", "keyed_max"),
    [(True, None), (True, 0), (False, None)],
    ids=["change-data-feed", "change-data-feed-beyond-keyed-max", "watermark"],
)
def test_incremental_with_late_events_equals_full_backfill(
    spark,
    tmp_path: Path,
    full_backfill: pd.DataFrame,
    cdf: bool,
    keyed_max: int | None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the change feed, the late entities' rows are replaced alone (a keyed replace), or,
    beyond ``KEYED_MAX`` entities, with every entity's rows of the late range copied."""
    if keyed_max is not None:
        monkeypatch.setattr(late_module, "KEYED_MAX", keyed_max)
    events = fixed_events()
    inc = make_store(spark, tmp_path / "inc")
    write_events(spark, inc, events, cdf=cdf)
    e1 = T0 + 8 * DAY
    inc.materialize("f", GRID[0], e1)
    more, late_beyond = more_events(), late_beyond_events()
    write_events(spark, inc, more + (late_beyond if cdf else []), mode="append")
    with caplog.at_level("WARNING", logger="fstore_spark.offline"):
        result = inc.materialize_incremental("f", end=GRID[-1], lateness="3d")
    assert result.mode == "incremental" and result.start <= e1
    if cdf:  # never silent: the count and where the events went are logged
        assert result.late_events_quarantined == 1
        assert "'f': 1 late event(s)" in caplog.text and "_quarantine/f" in caplog.text
    got = to_pandas(read_feature_table(spark, inc.config.project_root, "f")).drop(
        columns="created_timestamp"
    )
    first = pd.Timestamp(result.start)
    first = first.tz_convert("UTC") if first.tz else first.tz_localize("UTC")
    replaced = int((pd.to_datetime(got.feature_timestamp, utc=True) >= first).sum())
    if cdf and keyed_max is None:  # only the late entities' rows were written before e1
        assert 0 < result.rows_written < replaced
    else:  # every entity's rows from the first late instant on
        assert result.rows_written == replaced
    want = full_backfill
    order = ["customer_id", "region", "feature_timestamp"]
    pd.testing.assert_frame_equal(
        got.sort_values(order).reset_index(drop=True),
        want.sort_values(order).reset_index(drop=True),
    )
    assert assert_matches(got, events + more, GRID) > 0


def test_replaying_the_quarantine_takes_the_events_a_lateness_cap_set_aside(
    spark, tmp_path: Path
) -> None:
    """A capped run quarantines an old event; one replay takes it (only its entity is
    recomputed), empties the quarantine, and the table equals a backfill of every event."""
    inc = make_store(spark, tmp_path / "inc")
    write_events(spark, inc, fixed_events(), cdf=True)
    inc.materialize("f", GRID[0], T0 + 8 * DAY)
    everything = fixed_events() + more_events() + late_beyond_events()
    write_events(spark, inc, more_events() + late_beyond_events(), mode="append")
    assert inc.materialize_incremental("f", end=GRID[-1], lateness="3d").late_events_quarantined
    result = inc.replay_quarantine("f")
    assert result is not None and result.mode == "replay"
    assert result.start == T0 + DAY  # the tile of the event at day 1, 00:00
    assert result.rows_added and result.rows_changed is not None
    quarantine = f"{inc.config.project_root}/_quarantine/f"
    assert spark.read.format("delta").load(quarantine).count() == 0
    assert inc.replay_quarantine("f") is None
    full = make_store(spark, tmp_path / "full")
    write_events(spark, full, everything)
    full.materialize("f", GRID[0], GRID[-1])
    got, want = (
        to_pandas(read_feature_table(spark, s.config.project_root, "f")).drop(
            columns="created_timestamp"
        )
        for s in (inc, full)
    )
    order = ["customer_id", "region", "feature_timestamp"]
    pd.testing.assert_frame_equal(
        got.sort_values(order).reset_index(drop=True),
        want.sort_values(order).reset_index(drop=True),
    )
    # the next incremental continues from the last run's end as before
    assert inc.materialize_incremental("f", end=GRID[-1]).late_events_quarantined == 0


def test_the_same_events_stored_another_way_give_the_same_bits(spark, lakehouse: Path) -> None:
    """Floating-point sums do not depend on how events are stored or shuffled: the same events
    rewritten in reverse order over several files and backfilled again change no bit — the
    version diff finds no change and the fingerprint stays. Values of very different magnitudes
    make every order of adds round differently."""
    import random

    from fstore_spark.offline.training import dataframe_fingerprint

    aggs = [
        Aggregation(column="amount", function="sum", window="2d", name="sum_2d"),
        Aggregation(column="amount", function="mean", window="3d", name="mean_3d"),
        Aggregation(column="amount", function="stddev", window="3d", name="std_3d"),
        Aggregation(column="amount", function="sum", name="sum_life"),
    ]
    store = make_store(spark, lakehouse, aggs=aggs)
    rng = random.Random(11)
    events = [
        {
            "customer_id": f"c{rng.randrange(6)}",
            "region": 1,
            "ts": T0 + timedelta(seconds=rng.randrange(6 * 86400)),
            "created": T0,
            "amount": rng.random() * 10 ** rng.randint(-3, 7),
            "category": "a",
        }
        for _ in range(600)
    ]
    write_events(spark, store, events)
    first = store.materialize("f", T0, T0 + 8 * DAY)
    write_events(spark, store, events[::-1], files=5)
    again = store.materialize("f", T0, T0 + 8 * DAY)
    diff = store.diff_versions("f", first.table_version, again.table_version)
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 0)
    assert diff.unchanged == store.read_view("f").count() > 40
    prints = [
        dataframe_fingerprint(store.read_view("f", as_of_version=v).drop("created_timestamp"))
        for v in (first.table_version, again.table_version)
    ]
    assert prints[0] == prints[1]


def test_window_with_only_min_max_emits_exit_rows(spark, lakehouse: Path) -> None:
    """A window used only by max (no sums) still gets a row when its events leave it."""
    store = FeatureStore(config=FeatureStoreConfig.for_local(lakehouse, project="mm"), spark=spark)
    src = DeltaSource(
        name="events", path="raw/events", timestamp_column="ts", created_timestamp_column="created"
    )
    view = FeatureView(
        name="f",
        entities=["customer"],
        source=src,
        cadence="1d",
        aggregations=[
            Aggregation(column="amount", function="max", window="2d", name="max_2d"),
            Aggregation(column="*", function="count", name="n_life"),
        ],
    )
    store.apply(
        [Entity(name="customer", join_keys={"customer_id": "string", "region": "int64"}), view]
    )
    events = fixed_events()
    write_events(spark, store, events)
    store.materialize("f", GRID[0], GRID[-1])
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
    for key in sorted({(e["customer_id"], e["region"]) for e in events}):
        rows = table[(table.customer_id == key[0]) & (table.region == key[1])].sort_values(
            "feature_timestamp"
        )
        for t in GRID:
            ref = reference(events, key, t)
            prior = rows[rows.feature_timestamp <= pd.Timestamp(t)]
            if prior.empty:
                assert ref["count_2d"] == 0 and ref["recency"] is None
                continue
            got = prior.iloc[-1]
            want_max = [
                e["amount"]
                for e in events
                if (e["customer_id"], e["region"]) == key
                and t - 2 * DAY < e["ts"] <= t
                and e["amount"] is not None
            ]
            assert (None if pd.isna(got["max_2d"]) else got["max_2d"]) == (
                max(want_max) if want_max else None
            ), (key, t)
            assert got["n_life"] == len(
                [e for e in events if (e["customer_id"], e["region"]) == key and e["ts"] <= t]
            )


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(raws=event_sets(6))
def test_short_incremental_runs_equal_full_backfill(spark, tmp_path_factory, raws) -> None:
    """Incremental runs of a few instants take the direct path (features_at_instants): run
    day by day past the last events, so windows close during them, and compare with one
    backfill of the whole range (rows and values, including exit rows)."""
    assume_random(raws)
    events = realize_many(raws)
    inc = make_store(spark, tmp_path_factory.mktemp("inc"))
    write_events(spark, inc, events)
    inc.materialize("f", GRID[0], GRID[4])
    for day in (6, 8, 11, 14):
        inc.materialize_incremental("f", end=GRID[day], lateness="1d")
    got = to_pandas(read_feature_table(spark, inc.config.project_root, "f"))
    full = make_store(spark, tmp_path_factory.mktemp("full"))
    write_events(spark, full, events)
    full.materialize("f", GRID[0], GRID[14])
    want = to_pandas(read_feature_table(spark, full.config.project_root, "f"))
    order = ["customer_id", "region", "feature_timestamp"]
    pd.testing.assert_frame_equal(
        got.drop(columns="created_timestamp").sort_values(order).reset_index(drop=True),
        want.drop(columns="created_timestamp").sort_values(order).reset_index(drop=True),
    )
    assert assert_matches(got, events, GRID[:15]) > 0


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(raws=event_sets(5), late_raws=event_sets(5))
def test_every_late_event_the_change_feed_reports_is_taken(
    spark, tmp_path_factory, raws, late_raws
) -> None:
    """Events 5 to 15 days older than the last run's end are appended to a source with the
    change data feed, with a new day of events, and some old events are deleted: an
    incremental run with default arguments takes all of it (recomputing only the entities
    touched) and its table equals a backfill of the final source, rows and values."""
    assume_random(raws)
    events = realize_many(raws)
    inc = make_store(spark, tmp_path_factory.mktemp("inc"))
    write_events(spark, inc, events, cdf=True)
    inc.materialize("f", GRID[0], GRID[14])
    # the same entity names as the first events (shared entities) and new ones ("n" prefix)
    late = [
        {**e, "customer_id": ("n" if i % 2 else "") + e["customer_id"]}
        for i, e in enumerate(realize_many(late_raws))
    ]
    fresh = [{**late[0], "ts": T0 + 15 * DAY, "created": T0 + 15 * DAY}]
    write_events(spark, inc, late + fresh, mode="append")
    src = inc.table_path("raw/events")
    spark.sql(f"DELETE FROM delta.`{src}` WHERE ts < '2024-03-03' AND customer_id LIKE '0%'")
    result = inc.materialize_incremental("f", end=GRID[16])
    assert result.late_events_quarantined == 0
    assert result.start <= min(e["ts"] for e in late) + DAY
    got = to_pandas(read_feature_table(spark, inc.config.project_root, "f"))
    full = make_store(spark, tmp_path_factory.mktemp("full"))
    final = spark.read.format("delta").load(src)
    final.write.format("delta").save(full.table_path("raw/events"))
    full.materialize("f", GRID[0], GRID[16])
    want = to_pandas(read_feature_table(spark, full.config.project_root, "f"))
    order = ["customer_id", "region", "feature_timestamp"]
    pd.testing.assert_frame_equal(
        got.drop(columns="created_timestamp").sort_values(order).reset_index(drop=True),
        want.drop(columns="created_timestamp").sort_values(order).reset_index(drop=True),
    )
    kept = [
        e
        for e in events + late + fresh
        if not (e["ts"] < T0 + 2 * DAY and e["customer_id"].startswith("0"))
    ]
    assert assert_matches(got, kept, GRID[:17]) > 0


def test_a_rerun_after_a_crash_quarantines_each_late_event_once(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the quarantine and before the feature commit, then rerun: no duplicates."""
    import fstore_spark.offline.incremental as incremental_module

    inc = make_store(spark, tmp_path / "inc")
    write_events(spark, inc, fixed_events(), cdf=True)
    inc.materialize("f", GRID[0], T0 + 8 * DAY)
    write_events(spark, inc, more_events() + late_beyond_events(), mode="append")

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the feature commit")

    monkeypatch.setattr(incremental_module, "write_features", killed)
    with pytest.raises(KeyboardInterrupt):
        inc.materialize_incremental("f", end=GRID[-1], lateness="3d")
    monkeypatch.undo()
    result = inc.materialize_incremental("f", end=GRID[-1], lateness="3d")
    assert result.late_events_quarantined == 1
    quarantine = f"{inc.config.project_root}/_quarantine/f"
    assert spark.read.format("delta").load(quarantine).count() == 1


def test_events_without_key_or_time_are_counted_and_quarantined(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Null join keys and null event times never vanish silently: each run counts those it
    read, warns, and keeps them in the quarantine table with the reason, once each; the
    features are those of the valid events."""
    events = fixed_events()
    t = T0 + 3 * DAY
    bad = [
        {**events[0], "customer_id": None, "ts": t, "created": t},
        {**events[0], "region": None, "ts": t, "created": t},
        {**events[0], "ts": None, "created": t},
    ]
    store = make_store(spark, tmp_path / "lake")
    write_events(spark, store, events + bad)
    with caplog.at_level("WARNING", logger="fstore_spark.offline"):
        r = store.materialize("f", GRID[0], GRID[10])
    assert r.invalid_events_quarantined == 3
    assert "'f': 3 source event(s) with a null join key" in caplog.text
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
    assert assert_matches(table, events, GRID[:11]) > 0
    path = f"{store.config.project_root}/_quarantine/f"
    reasons = sorted(
        r["_fs_reason"]
        for r in spark.read.format("delta").load(path).select("_fs_reason").collect()
    )
    assert reasons == [
        "event time 'ts' is null or not a timestamp",
        "join key 'customer_id' is null",
        "join key 'region' is null",
    ]
    again = store.materialize("f", GRID[0], GRID[10])  # a rerun reports them, adds nothing
    assert again.invalid_events_quarantined == 3
    assert spark.read.format("delta").load(path).count() == 3

    # an incremental run counts the invalid events among its new ones
    later = T0 + 12 * DAY
    new = [{**events[0], "ts": later, "created": later}, {**bad[0], "ts": later, "created": later}]
    write_events(spark, store, new, mode="append")
    inc = store.materialize_incremental("f", end=GRID[-1], lateness="2d")
    assert inc.invalid_events_quarantined == 1 and inc.late_events_quarantined == 0
    assert spark.read.format("delta").load(path).count() == 4
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f"))
    assert assert_matches(table, events + new[:1], GRID) > 0


def test_windowed_sums_carry_no_rounding_residue_from_earlier_windows(
    spark, lakehouse: Path
) -> None:
    """A window's sums are its own events' sums, not what is left of a long running total.

    Two months of amounts near 500 pass through the 5-day window first. Then amounts 0.0 and
    0.01 have a standard deviation of 0.01/sqrt(2), and a window of 0.0 amounts sums to
    exactly 0.0; with sums that add each tile on entry and subtract it on exit, the residue
    of the earlier windows (sums of squares near 1e6) swamps a variance of 5e-5 and leaves
    sums of 1e-13 in an empty-valued window.
    """
    aggs = [
        Aggregation(column="amount", function="stddev", window="5d", name="std_5d"),
        Aggregation(column="amount", function="sum", window="5d", name="sum_5d"),
        Aggregation(column="amount", function="mean", window="5d", name="mean_5d"),
    ]
    store = make_store(spark, lakehouse, aggs=aggs)
    events = [
        {"ts": T0 + d * DAY + h * timedelta(hours=3), "amount": 400.0 + ((d * 7 + h) % 97) * 1.37}
        for d in range(60)
        for h in range(5)
    ]
    events += [
        {"ts": T0 + 70 * DAY + timedelta(hours=h), "amount": a} for h, a in ((1, 0.0), (2, 0.01))
    ]
    events += [{"ts": T0 + 80 * DAY + timedelta(hours=h), "amount": 0.0} for h in (1, 2, 3)]
    rows = [
        {**e, "customer_id": "c", "region": 1, "created": e["ts"], "category": "x"} for e in events
    ]
    write_events(spark, store, rows)
    store.materialize("f", T0, T0 + 82 * DAY)
    table = to_pandas(read_feature_table(spark, store.config.project_root, "f")).set_index(
        "feature_timestamp"
    )
    close = table.loc[pd.Timestamp(T0 + 71 * DAY)]
    assert close["std_5d"] == pytest.approx(statistics.stdev([0.0, 0.01]), rel=1e-9)
    assert close["mean_5d"] == pytest.approx(0.005, rel=1e-12)
    zeros = table.loc[pd.Timestamp(T0 + 81 * DAY)]
    assert (zeros["sum_5d"], zeros["mean_5d"], zeros["std_5d"]) == (0.0, 0.0, 0.0)
