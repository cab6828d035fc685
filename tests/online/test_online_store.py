"""Online store pieces without Spark: encodings (hypothesis), the Arrow writer and pipelined reads
against a real redis-server, and the typed error when Redis is down."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
import redis
from conftest import free_port
from hypothesis import given, settings
from hypothesis import strategies as st

from fstore_spark.config import OnlineStoreConfig
from fstore_spark.core import DeltaSource, FeatureRef, FeatureView, Field
from fstore_spark.errors import EntityRowError, OnlineStoreError
from fstore_spark.online.client import OnlineStore
from fstore_spark.online.codec import decode_value, encode_arrow, encode_value
from fstore_spark.online.connection import ConnectionSpec, redact_url, redis_errors
from fstore_spark.online.layout import KeyLayout, encode_entity_key
from fstore_spark.online.response import Status
from fstore_spark.online.writer import (
    EXP_COL,
    FUTURE_COL,
    KEY_COL,
    OP_COL,
    TS_COL,
    WriterSpec,
    write_batches,
)

timestamps = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
VALUES = {
    "string": st.text(),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "float64": st.floats(allow_nan=True, allow_infinity=True),
    "float32": st.floats(width=32, allow_nan=False),
    "bool": st.booleans(),
    "timestamp": timestamps,
    "date": st.dates(),
}
ARROW = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}


def equal(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(sorted(VALUES)))
def test_encodings_round_trip(data, dtype: str) -> None:
    values = data.draw(st.lists(st.one_of(st.none(), VALUES[dtype]), max_size=8))
    # the reference encoder
    for v in values:
        assert equal(decode_value(encode_value(v, dtype), dtype), v)
    # the vectorised encoder the sync job uses decodes to the same values
    arr = pa.array(values, ARROW[dtype])
    enc = encode_arrow(arr).to_pylist()
    for v, e in zip(values, enc, strict=True):
        assert (e is None) == (v is None)
        if v is not None:
            assert equal(decode_value(e, dtype), v), (v, e)


@given(parts=st.lists(st.text(alphabet="ab|\\", max_size=4), min_size=2, max_size=3))
def test_composite_keys_are_unambiguous(parts) -> None:
    key = encode_entity_key(parts, ["string"] * len(parts))
    other = encode_entity_key(parts[::-1], ["string"] * len(parts))
    assert (key == other) == (parts == parts[::-1])


def test_key_parts_and_redaction() -> None:
    assert encode_entity_key([7, True], ["int64", "bool"]) == b"7|true"
    assert encode_entity_key([date(2024, 1, 2)], ["date"]) == b"2024-01-02"
    when = datetime(2024, 1, 1, tzinfo=UTC)
    assert encode_entity_key([when], ["timestamp"]) == b"1704067200000000"
    with pytest.raises((TypeError, ValueError)):
        encode_entity_key(["x"], ["int64"])
    assert redact_url("rediss://:pw@h:1/0") == "rediss://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:s3cr@t@127.0.0.1:1/0",  # a password with "@"
        "rediss://:s3cr@t@127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?password=s3cr@t",
        "redis://user:s3cr@t@127.0.0.1:1/0?db=0&password=s3cr@t",
    ],
)
def test_a_password_never_shows_in_reprs_or_errors(url: str) -> None:
    from fstore_spark import FeatureStoreConfig

    cfg = FeatureStoreConfig.for_local("/tmp/x", online_store={"url": url})
    spec = ConnectionSpec.from_config(cfg.online_store)
    with pytest.raises(redis_errors()) as info:  # nothing listens on port 1
        spec.client().ping()
    shown = [repr(cfg), str(cfg), repr(cfg.online_store), repr(spec), redact_url(url)]
    shown.append(str(spec.error(info.value, "ping")))
    for text in shown:
        assert "s3cr" not in text and "t@127" not in text, text  # nor half of it
        assert "***" in text, text


def _view() -> FeatureView:
    return FeatureView(
        name="v",
        entities=["customer"],
        source=DeltaSource(name="s", path="/x", timestamp_column="ts"),
        ttl="1h",
        features=[
            Field(name="a", dtype="int64"),
            Field(name="b", dtype="string", default="none"),
            Field(name="c", dtype="float64"),
        ],
    )


def test_writer_and_reader_against_redis(redis_url: str) -> None:
    cfg = OnlineStoreConfig(url=redis_url)
    online = OnlineStore(cfg, "p")
    layout = KeyLayout("fstore", "p")
    now_us = time.time_ns() // 1000
    prefix = layout.data_prefix("v", 1)
    batch = pa.RecordBatch.from_pydict(
        {
            KEY_COL: pa.array([prefix + b"k1", prefix + b"k2", prefix + b"k3", prefix + b"k4"]),
            OP_COL: pa.array(["U", "U", "D", None]),
            TS_COL: pa.array([now_us, now_us - 7_200_000_000, None, None], pa.int64()),
            EXP_COL: pa.array([0, 0, None, None], pa.int64()),
            FUTURE_COL: pa.array([None, None, None, now_us + 5], pa.int64()),
            "a": pa.array([1, None, None, None], pa.int64()),
            "b": pa.array(["x|y", "z", None, None]),
            "c": pa.array([0.1, float("nan"), None, None]),
        }
    )
    spec = WriterSpec(conn=ConnectionSpec.from_config(cfg), version=3, features=("a", "b", "c"))
    out = list(write_batches(iter([batch]), spec))[0].to_pydict()
    assert out == {"written": [2], "skipped": [1], "deleted": [0], "future_us": [now_us + 5]}
    r = redis.Redis.from_url(redis_url)
    assert r.hgetall(prefix + b"k1") == {
        b"@ts": str(now_us).encode(),
        b"@v": b"3",
        b"a": b"1",
        b"b": b"x|y",
        b"c": b"0.1",
    }
    r.set(layout.pointer_key("v"), 1)
    view = _view()
    keys = {"v": [("customer_id", "string")]}
    plan = online.plan(
        [FeatureRef.parse("v:c"), FeatureRef.parse("v:a"), FeatureRef.parse("v:b")],
        {"v": view},
        keys,
        entity_names={"v": ["customer"]},
    )
    resp = online.read(plan, [{"customer": "k1"}, {"customer_id": "k2"}, {"customer_id": "k9"}])
    d = resp.to_dict(include_status=True)
    assert d["customer_id"] == ["k1", "k2", "k9"]
    assert d["a"] == [1, None, None] and d["c"][0] == 0.1
    assert d["b"] == ["x|y", "none", "none"]  # the declared default fills missing values
    assert d["a__status"] == [Status.PRESENT, Status.OUTSIDE_MAX_AGE, Status.NOT_FOUND]
    assert resp.timestamps["a"][0] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=now_us
    )
    # a full reload flips the pointer: the next read notices and reads the new namespace
    r.hset(layout.data_prefix("v", 2) + b"k1", mapping={"@ts": now_us, "@v": 4, "a": 2})
    r.set(layout.pointer_key("v"), 2)
    assert online.read(plan, [{"customer_id": "k1"}]).to_dict()["a"] == [2]
    with pytest.raises(EntityRowError, match="customer_id"):
        online.read(plan, [{"nope": 1}])


def test_redis_down_is_a_typed_error_within_the_timeout() -> None:
    port = free_port()  # nothing listens there
    cfg = OnlineStoreConfig(url=f"redis://:secret@127.0.0.1:{port}/0", connect_timeout_ms=300)
    online = OnlineStore(cfg, "p")
    t0 = time.perf_counter()
    with pytest.raises(OnlineStoreError) as err:
        online.ping()
    assert time.perf_counter() - t0 < 0.3 + 0.5
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "secret" not in msg and "***" in msg
    assert "redis-server is running" in msg
    # an address that drops packets: the connect timeout bounds the wait
    cfg = OnlineStoreConfig(url="redis://10.255.255.1:6379/0", connect_timeout_ms=300)
    t0 = time.perf_counter()
    with pytest.raises(OnlineStoreError):
        OnlineStore(cfg, "p").ping()
    assert time.perf_counter() - t0 < 0.3 + 0.7


def test_a_killed_syncs_lease_is_taken_over_and_a_live_one_is_not(redis_url: str) -> None:
    """A lease whose holder process on this host is gone is abandoned: taken at once."""
    import os
    import socket
    import subprocess
    import sys

    import redis as redis_lib

    from fstore_spark.online.sync_state import SyncLease

    client = redis_lib.Redis.from_url(redis_url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is gone now
    key = b"fstore:p:v:_lock"
    client.set(key, f"{socket.gethostname()}:{dead.pid}:0000".encode(), px=60_000)
    with SyncLease(client, key, "v") as lease:
        assert client.get(key) == lease.token
    assert client.get(key) is None  # released

    alive = f"{socket.gethostname()}:{os.getppid()}:0000".encode()  # our parent: alive
    for holder in (alive, b"other-host:1:0000"):
        client.set(key, holder, px=60_000)
        with pytest.raises(OnlineStoreError, match="another sync of view 'v' is running"):
            SyncLease(client, key, "v").__enter__()
        assert client.get(key) == holder
