r"""The Redis online store: connection, key layout, typed encoding, atomic writes, fast reads.

This module is everything that touches Redis; :mod:`fstore_spark.online.sync` drives it from
Spark and :mod:`fstore_spark.server` puts it behind HTTP. The layout is documented for
operators in ``docs/online_store.md``; in short:

Keys (``P`` = ``online_store.key_prefix``, ``proj`` = project, ``view`` = feature view)::

    P:proj:view:_ns            STRING  current namespace (an integer) -- the pointer key
    P:proj:view:_meta          HASH    sync state: version, as_of, ns_seq, pending_* ...
    P:proj:view:_lock          STRING  lease of the running sync job
    P:proj:view:<ns>:<entity>  HASH    one entity's latest values in namespace <ns>

One hash per (project, view, entity) -- per view, so every view has its own expiry. Fields are
the feature names (a null value is an *absent* field) plus ``@ts`` (feature timestamp, epoch
microseconds) and ``@v`` (the Delta version of the feature table the value was synced from).
``<entity>`` is the join key value (string as UTF-8, integers in decimal, booleans
``true``/``false``, dates ISO ``YYYY-MM-DD``, timestamps epoch micros); composite keys are the
parts in declared order joined by ``|``, with ``\\`` and ``|`` inside strings escaped by ``\\``.

Values are compact and typed by the registry's dtypes: integers in decimal, floats as the
shortest repr that round-trips (``0.1``, ``1e-07``, ``nan``, ``inf``), booleans ``1``/``0``,
strings UTF-8, timestamps epoch micros, dates days since 1970-01-01. Decimal text keeps small
values small (Redis stores integer-looking strings of a small hash as integers) and decodes
with one ``int()``/``float()`` call.

Writes go through one Lua script (:data:`WRITE_SCRIPT`), so the check and the write are atomic
per key: a value is written only when its ``(feature timestamp, Delta version)`` is newer than
the stored one, and a same-timestamp newer version that carries the same values is skipped (so
an incremental sync counts only entities whose values changed). Never older over newer.

Reads (:class:`OnlineStore`) send one pipelined round trip: ``HMGET`` of just the requested
fields for every (view, entity), then one ``MGET`` of the views' pointer keys to check that the
cached namespaces are still current (after a full reload flipped a pointer, the read is
repeated once with the new namespace).

Example::

    store = OnlineStore(config.online_store, project="fraud")
    plan = store.plan(views, join_keys, ["customer_features:age"])
    resp = store.read(plan, [{"customer_id": "c1"}])
    resp.to_dict()     # {'customer_id': ['c1'], 'age': [42]}
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core.definitions import FeatureRef, FeatureView
from fstore_spark.errors import EntityRowError, NotFoundError, OnlineStoreError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import redis

    from fstore_spark.config import OnlineStoreConfig

__all__ = [
    "ConnectionSpec",
    "KeyLayout",
    "OnlineResponse",
    "OnlineStore",
    "ReadPlan",
    "Status",
    "SyncState",
    "WRITE_SCRIPT",
    "WRITE_SCRIPT_SHA",
    "WriterSpec",
    "decode_value",
    "encode_entity_key",
    "encode_value",
    "redact_url",
    "write_batches",
]

TS_FIELD = b"@ts"
VERSION_FIELD = b"@v"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000


class Status:
    """Per-value status of an online read (the names Feast uses).

    * ``PRESENT`` -- the entity has a value within the max age;
    * ``NULL_VALUE`` -- the entity's row is present but this feature is null;
    * ``NOT_FOUND`` -- no row for the entity (never synced, deleted, or expired by Redis);
    * ``OUTSIDE_MAX_AGE`` -- a row exists but is older than the view's ttl at read time; its
      value is not returned.
    """

    PRESENT = "PRESENT"
    NULL_VALUE = "NULL_VALUE"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


# ------------------------------------------------------------------------------------ connection


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    Example:
        >>> redact_url("redis://user:secret@host:6379/0")
        'redis://user:***@host:6379/0'
    """
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open a Redis connection; picklable, so executors can use it.

    The password is resolved on the driver (``online_store.password_env``) and travels inside
    the Spark task, because executors do not necessarily share the driver's environment.

    Attributes:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        password: Password, or None.
        connect_timeout: Seconds to wait for a connection.
        socket_timeout: Seconds to wait for a reply.
        tls: Force TLS.
        pool_size: Maximum pooled connections.
    """

    url: str
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 1.0
    socket_timeout: float = 2.0
    tls: bool = False
    pool_size: int = 16

    @classmethod
    def from_config(cls, cfg: OnlineStoreConfig) -> ConnectionSpec:
        """Build from the ``online_store`` config section (reads the password env var)."""
        return cls(
            url=cfg.url,
            password=cfg.password(),
            connect_timeout=cfg.connect_timeout_ms / 1000,
            socket_timeout=cfg.socket_timeout_ms / 1000,
            tls=cfg.tls,
            pool_size=cfg.pool_size,
        )

    @property
    def safe_url(self) -> str:
        """The URL with the password redacted (for messages)."""
        return redact_url(self.url)

    def client(self, pool_size: int | None = None) -> redis.Redis:
        """A ``redis.Redis`` client (lazy: connects on first use; no automatic retries).

        Retries are off so that an unreachable server fails within ``connect_timeout``
        instead of a multiple of it; callers decide what to retry.
        """
        import redis as _redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = self.url
        if self.tls and url.startswith("redis://"):
            url = "rediss://" + url[len("redis://") :]
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            "max_connections": pool_size or self.pool_size,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return _redis.Redis.from_url(url, **kwargs)

    def error(self, exc: BaseException, doing: str) -> OnlineStoreError:
        """A typed, actionable error for a failed Redis call."""
        return OnlineStoreError(
            f"online store: cannot {doing} at {self.safe_url}: {type(exc).__name__}: {exc}. "
            f"Check that redis-server is running and reachable at that address, that "
            f"online_store.url / password_env / tls are right, and the timeouts "
            f"(connect {self.connect_timeout:g}s, socket {self.socket_timeout:g}s)."
        )


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis as _redis

    return (_redis.RedisError, OSError)


# ------------------------------------------------------------------------------------ key layout


@dataclass(frozen=True)
class KeyLayout:
    """Key names of a project in Redis (see the module docstring).

    Example:
        >>> k = KeyLayout("fstore", "demo")
        >>> k.data_prefix("profile", 3)
        b'fstore:demo:profile:3:'
        >>> k.pointer_key("profile"), k.meta_key("profile")
        (b'fstore:demo:profile:_ns', b'fstore:demo:profile:_meta')
    """

    prefix: str
    project: str

    def view_base(self, view: str) -> bytes:
        """``P:proj:view:``."""
        return f"{self.prefix}:{self.project}:{view}:".encode()

    def pointer_key(self, view: str) -> bytes:
        """The key holding the view's current namespace."""
        return self.view_base(view) + b"_ns"

    def meta_key(self, view: str) -> bytes:
        """The hash holding the view's sync state."""
        return self.view_base(view) + b"_meta"

    def lock_key(self, view: str) -> bytes:
        """The lease key of a running sync of the view."""
        return self.view_base(view) + b"_lock"

    def data_prefix(self, view: str, ns: int | str | bytes) -> bytes:
        """Prefix of the view's entity keys in namespace ``ns``."""
        ns_b = ns if isinstance(ns, bytes) else str(ns).encode()
        return self.view_base(view) + ns_b + b":"


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|")


def _key_part(value: Any, dtype: str) -> str:
    if dtype == "string":
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if dtype in ("int32", "int64"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return str(int(value))
    if dtype == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {type(value).__name__}")
        return "true" if value else "false"
    if dtype == "date":
        d = date.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(d, datetime) or not isinstance(d, date):
            raise TypeError(f"expected a date, got {type(value).__name__}")
        return d.isoformat()
    if dtype == "timestamp":
        return str(_ts_to_us(value))
    raise TypeError(f"join keys of dtype {dtype} are not supported")


def encode_entity_key(values: Sequence[Any], dtypes: Sequence[str]) -> bytes:
    r"""Encode join key values (declared order) as the ``<entity>`` part of a key.

    Example:
        >>> encode_entity_key(["c1"], ["string"])
        b'c1'
        >>> encode_entity_key(["a|b", 7], ["string", "int64"])
        b'a\\|b|7'
    """
    if len(values) == 1:
        return _key_part(values[0], dtypes[0]).encode()
    return "|".join(
        _escape(_key_part(v, t)) if t == "string" else _key_part(v, t)
        for v, t in zip(values, dtypes, strict=True)
    ).encode()


# ------------------------------------------------------------------------------------ values


def _ts_to_us(value: Any) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int((value - _EPOCH) // timedelta(microseconds=1))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected a timestamp, got {type(value).__name__}")


def encode_value(value: Any, dtype: str) -> bytes | None:
    """Encode one feature value (``None`` for null: the field is left out of the hash).

    The sync job encodes vectorised with Arrow (:func:`_encode_arrow`); both give text that
    decodes to the same value (floats may differ in spelling: ``1e-07`` here, ``1e-7`` there).

    Example:
        >>> encode_value(0.1, "float64"), encode_value(True, "bool"), encode_value(None, "int64")
        (b'0.1', b'1', None)
    """
    if value is None:
        return None
    if dtype == "string":
        return str(value).encode()
    if dtype in ("int32", "int64"):
        return str(int(value)).encode()
    if dtype in ("float32", "float64"):
        f = float(value)
        if math.isnan(f):
            return b"nan"
        if math.isinf(f):
            return b"inf" if f > 0 else b"-inf"
        return repr(f).encode()
    if dtype == "bool":
        return b"1" if value else b"0"
    if dtype == "timestamp":
        return str(_ts_to_us(value)).encode()
    if dtype == "date":
        d = date.fromisoformat(value) if isinstance(value, str) else value
        return str(d.toordinal() - _EPOCH_ORDINAL).encode()
    raise OnlineStoreError(f"cannot encode dtype {dtype!r}")


def _dec_ts(b: bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=int(b))


def _dec_date(b: bytes) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + int(b))


def _dec_bool(b: bytes) -> bool:
    return b == b"1"


def _dec_str(b: bytes) -> str:
    return b.decode()


_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "string": _dec_str,
    "int32": int,
    "int64": int,
    "float32": float,
    "float64": float,
    "bool": _dec_bool,
    "timestamp": _dec_ts,
    "date": _dec_date,
}


def decode_value(raw: bytes | None, dtype: str) -> Any:
    """Decode bytes written by :func:`encode_value` (``None`` stays ``None``).

    Timestamps decode to aware UTC datetimes, dates to ``date``.

    Example:
        >>> decode_value(b"1e-07", "float64"), decode_value(b"0", "bool")
        (1e-07, False)
    """
    if raw is None:
        return None
    return _DECODERS[dtype](raw)


def _encode_arrow(arr: pa.Array) -> pa.Array:
    """Encode an Arrow column exactly as :func:`encode_value` would, vectorised (binary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = arr
    elif pa.types.is_binary(t):
        return arr
    elif pa.types.is_floating(t):
        # widen first: the stored text is the double the value is, not float32's shortest repr
        out = pc.cast(pc.cast(arr, pa.float64()), pa.string())
    elif pa.types.is_integer(t):
        out = pc.cast(arr, pa.string())
    elif pa.types.is_boolean(t):
        out = pc.cast(pc.cast(arr, pa.int8()), pa.string())
    elif pa.types.is_timestamp(t):
        micros = pc.cast(arr, pa.timestamp("us", tz=t.tz)) if t.unit != "us" else arr
        out = pc.cast(pc.cast(micros, pa.int64()), pa.string())
    elif pa.types.is_date32(t):
        out = pc.cast(pc.cast(arr, pa.int32()), pa.string())
    else:
        raise OnlineStoreError(f"cannot encode a column of Arrow type {t} for the online store")
    return pc.cast(out, pa.binary())


# ------------------------------------------------------------------------------------ writes

WRITE_SCRIPT = """
-- fstore online write: KEYS[1] = entity hash;
-- ARGV = op, ts_us, delta_version, expire_at_ms (0 = none), field1, value1, ...
-- op 'U' upserts when (ts, version) is newer than what is stored, 'D' deletes when the stored
-- value does not come from a newer Delta version. Returns 1 written, 0 skipped (stored is
-- newer, or same timestamp and same values), 2 deleted, 3 nothing to delete.
local cur = redis.call('HMGET', KEYS[1], '@ts', '@v')
local v = tonumber(ARGV[3])
if ARGV[1] == 'D' then
  if not cur[1] then return 3 end
  if tonumber(cur[2]) > v then return 0 end
  redis.call('DEL', KEYS[1])
  return 2
end
local ts = tonumber(ARGV[2])
if cur[1] then
  local sts = tonumber(cur[1])
  local sv = tonumber(cur[2])
  if ts < sts or (ts == sts and v <= sv) then return 0 end
  if ts == sts and redis.call('HLEN', KEYS[1]) == (#ARGV - 4) / 2 + 2 then
    local same = true
    for i = 5, #ARGV, 2 do
      if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
        same = false
        break
      end
    end
    if same then return 0 end
  end
  redis.call('DEL', KEYS[1])
end
if #ARGV > 4 then
  redis.call('HSET', KEYS[1], '@ts', ARGV[2], '@v', ARGV[3], unpack(ARGV, 5))
else
  redis.call('HSET', KEYS[1], '@ts', ARGV[2], '@v', ARGV[3])
end
if ARGV[4] ~= '0' then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 1
"""
"""The compare-and-set Lua script every online write goes through (atomic per key)."""

WRITE_SCRIPT_SHA = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest()
"""SHA1 of :data:`WRITE_SCRIPT`, as ``EVALSHA`` wants it."""

# Columns of the DataFrame the sync job hands to :func:`write_batches`.
KEY_COL, OP_COL, TS_COL, EXP_COL, FUTURE_COL = "_fs_key", "_fs_op", "_fs_ts", "_fs_exp", "_fs_fut"


class InjectedFailure(RuntimeError):
    """Raised by the writer's test hook (``fail_after_partitions``)."""


@dataclass(frozen=True)
class WriterSpec:
    """What an executor needs to write one partition (pickled into the Spark task).

    Attributes:
        conn: Connection settings.
        version: Delta version of the feature table being synced (``@v``).
        features: Feature column names, in declared order.
        batch_size: Commands per pipelined round trip.
        fail_after_partitions: Test hook -- when set, partitions beyond the first N (counted in
            Redis under ``fail_counter_key``) write one batch and then raise
            :class:`InjectedFailure`, simulating a job killed mid-run.
        fail_counter_key: Redis key counting partitions for the hook.
    """

    conn: ConnectionSpec
    version: int
    features: tuple[str, ...]
    batch_size: int = 1000
    fail_after_partitions: int | None = None
    fail_counter_key: bytes = b""


def _bulk_const(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _bulk_arrow(arr: pa.Array) -> pa.Array:
    """RESP bulk strings (``$<len>`` CRLF ``<bytes>`` CRLF) of a binary array; nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.cast(pc.cast(pc.binary_length(arr), pa.string()), pa.binary())
    return pc.binary_join_element_wise(
        pa.scalar(b"$"), lengths, pa.scalar(b"\r\n"), arr, pa.scalar(b"\r\n"), b""
    )


def _resp_commands(batch: pa.RecordBatch, spec: WriterSpec) -> list[bytes]:
    """One RESP-encoded ``EVALSHA`` per row, built column-wise by Arrow (no per-value Python).

    Rows with a null op (keys that only report future timestamps) produce no command.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    op = batch.column(OP_COL)
    keep = pc.is_valid(op)
    if pc.sum(pc.cast(keep, pa.int64())).as_py() != n:
        batch = batch.filter(keep)
        op = batch.column(OP_COL)
        n = batch.num_rows
    if n == 0:
        return []
    parts: list[Any] = []
    counts = pa.array([0] * n, pa.int64())
    for name in spec.features:
        values = _encode_arrow(batch.column(name))
        # a null value becomes a null chunk, which the join below skips: the field is absent
        chunk = pc.binary_join_element_wise(
            pa.scalar(_bulk_const(name.encode())), _bulk_arrow(values), b""
        )
        parts.append(chunk)
        counts = pc.add(counts, pc.cast(pc.is_valid(values), pa.int64()))
    header = pc.binary_join_element_wise(
        pa.scalar(b"*"),
        pc.cast(pc.cast(pc.add(pc.multiply(counts, 2), 8), pa.string()), pa.binary()),
        pa.scalar(b"\r\n"),
        b"",
    )
    head = _bulk_const(b"EVALSHA") + _bulk_const(WRITE_SCRIPT_SHA.encode()) + _bulk_const(b"1")
    exp = batch.column(EXP_COL)
    ts = batch.column(TS_COL)
    cmd = pc.binary_join_element_wise(
        header,
        pa.scalar(head),
        _bulk_arrow(pc.cast(batch.column(KEY_COL), pa.binary())),
        _bulk_arrow(pc.cast(op, pa.binary())),
        _bulk_arrow(pc.cast(pc.cast(pc.fill_null(ts, 0), pa.string()), pa.binary())),
        pa.scalar(_bulk_const(str(spec.version).encode())),
        _bulk_arrow(pc.cast(pc.cast(pc.fill_null(exp, 0), pa.string()), pa.binary())),
        *parts,
        b"",
        null_handling="skip",
    )
    out: list[bytes] = cmd.to_pylist()
    return out


def _send_batch(conn: Any, commands: list[bytes]) -> list[Any]:
    conn.send_packed_command([b"".join(commands)], check_health=False)
    return [conn.read_response() for _ in commands]


def write_batches(batches: Iterator[pa.RecordBatch], spec: WriterSpec) -> Iterator[pa.RecordBatch]:
    """Write one Spark partition to Redis; yield one row of counts (for ``mapInArrow``).

    Runs on an executor with one connection for the partition. Each Arrow batch becomes
    ``EVALSHA`` commands of :data:`WRITE_SCRIPT`, sent ``spec.batch_size`` at a time in one
    pipelined round trip each. A batch that fails half way (``NOSCRIPT`` after a Redis restart,
    a dropped connection) is reconnected and sent again once: the script makes every command
    idempotent.

    Yields:
        One batch ``written, skipped, deleted, future_us`` (``future_us``: the largest feature
        timestamp beyond the sync's instant seen in the partition, or null).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import redis as _redis

    client = spec.conn.client(pool_size=1)
    written = skipped = deleted = 0
    future: int | None = None
    conn: Any = None
    try:
        conn = client.connection_pool.get_connection()
        conn.send_command("SCRIPT", "LOAD", WRITE_SCRIPT)
        conn.read_response()
        failing = False
        if spec.fail_after_partitions is not None:
            conn.send_command("INCR", spec.fail_counter_key)
            seq = int(conn.read_response())
            failing = seq > spec.fail_after_partitions
        for batch in batches:
            if FUTURE_COL in batch.schema.names:
                m = pc.max(batch.column(FUTURE_COL)).as_py()
                if m is not None:
                    future = m if future is None else max(future, m)
            commands = _resp_commands(batch, spec)
            for i in range(0, len(commands), spec.batch_size):
                chunk = commands[i : i + spec.batch_size]
                try:
                    replies = _send_batch(conn, chunk)
                except (_redis.ConnectionError, _redis.exceptions.NoScriptError):
                    conn.disconnect()
                    conn.send_command("SCRIPT", "LOAD", WRITE_SCRIPT)
                    conn.read_response()
                    replies = _send_batch(conn, chunk)
                for r in replies:
                    if r == 1:
                        written += 1
                    elif r == 2:
                        deleted += 1
                    else:
                        skipped += 1
                if failing:
                    break
            if failing:
                break
        if failing:
            raise InjectedFailure(
                f"injected failure after {spec.fail_after_partitions} partition(s) "
                "(fail_after_partitions test hook)"
            )
    except _redis.RedisError as exc:
        raise spec.conn.error(exc, "write the online store") from exc
    finally:
        if conn is not None:
            client.connection_pool.release(conn)
        client.close()
    yield pa.RecordBatch.from_pydict(
        {
            "written": pa.array([written], pa.int64()),
            "skipped": pa.array([skipped], pa.int64()),
            "deleted": pa.array([deleted], pa.int64()),
            "future_us": pa.array([future], pa.int64()),
        }
    )


WRITER_OUTPUT_SCHEMA = "written long, skipped long, deleted long, future_us long"
"""Spark schema of what :func:`write_batches` yields per partition."""


# ------------------------------------------------------------------------------------ sync state


@dataclass(frozen=True)
class SyncState:
    """A view's sync state, kept in Redis next to the data it describes (``_meta`` hash).

    Keeping it in Redis means the state can never claim more than Redis holds: a flushed or
    replaced Redis has no state, and the next sync is a full one.

    Attributes:
        ns: Current namespace (what the pointer key says), or None before the first sync.
        version: Delta version of the feature table last synced completely.
        as_of_us: The instant (epoch micros) that sync served "latest as of".
        future_us: Largest feature timestamp beyond ``as_of_us`` seen then (rows that become
            current later and must be picked up by the next sync), or None.
        definition_hash: The view definition the data was synced with.
        synced_at_us: When the last sync finished.
        pending_ns: Namespace of a full reload that started but did not flip (crashed).
        pending_version: Delta version that reload was reading.
        pending_as_of_us: Its "as of" instant.
    """

    ns: int | None = None
    version: int | None = None
    as_of_us: int | None = None
    future_us: int | None = None
    definition_hash: str | None = None
    synced_at_us: int | None = None
    pending_ns: int | None = None
    pending_version: int | None = None
    pending_as_of_us: int | None = None

    @classmethod
    def from_hash(cls, h: Mapping[bytes, bytes]) -> SyncState:
        """Parse the ``_meta`` hash."""

        def i(name: str) -> int | None:
            raw = h.get(name.encode())
            return None if raw is None or raw == b"" else int(raw)

        dh = h.get(b"definition_hash")
        return cls(
            ns=i("ns"),
            version=i("version"),
            as_of_us=i("as_of_us"),
            future_us=i("future_us"),
            definition_hash=None if dh is None else dh.decode(),
            synced_at_us=i("synced_at_us"),
            pending_ns=i("pending_ns"),
            pending_version=i("pending_version"),
            pending_as_of_us=i("pending_as_of_us"),
        )


# ------------------------------------------------------------------------------------ reads


@dataclass(frozen=True)
class _ViewRead:
    """Precomputed read of one view for one request shape."""

    view: str
    base: bytes  # P:proj:view:
    pointer: bytes
    key_names: tuple[str, ...]  # join key names, declared order
    key_alt: tuple[str | None, ...]  # entity name accepted instead of a single join key
    key_dtypes: tuple[str, ...]
    features: tuple[str, ...]  # requested features, in request order
    out_names: tuple[str, ...]
    decoders: tuple[Callable[[bytes], Any], ...]
    hmget_tail: bytes  # RESP of the field names plus @ts
    hmget_argc: bytes  # RESP array header of one HMGET
    max_age_us: int | None
    recency: tuple[bool, ...]
    defaults: tuple[Any, ...]


@dataclass(frozen=True)
class ReadPlan:
    """A request shape compiled once: which fields of which view keys, decoded how.

    Build with :meth:`OnlineStore.plan`; reuse it for every request of the same shape.

    Attributes:
        views: One precomputed read per view, in the order views first appear.
        columns: Output feature column names, in request order.
        join_keys: All join key names of the request, in first-seen order.
        dtypes: Output column -> dtype.
        column_index: Output column -> (view index, feature index).
    """

    views: tuple[_ViewRead, ...]
    columns: tuple[str, ...]
    join_keys: tuple[str, ...]
    dtypes: Mapping[str, str]
    column_index: Mapping[str, tuple[int, int]]


@dataclass
class OnlineResponse:
    """The result of an online read, column-wise (Feast's ``OnlineResponse`` shape).

    Attributes:
        join_keys: Join key column -> values, one per entity row.
        values: Feature column -> decoded values (``None`` when not present).
        statuses: Feature column -> :class:`Status` names.
        timestamps: Feature column -> feature timestamp of the value (aware UTC) or None.
        dtypes: Feature column -> dtype.

    Example::

        resp = store.get_online_features(features=["profile:age"], entity_rows=[{"customer": "c1"}])
        resp.to_dict()        # {'customer_id': ['c1'], 'age': [42]}
        resp.to_pandas()      # one row per entity
    """

    join_keys: dict[str, list[Any]]
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    timestamps: dict[str, list[datetime | None]]
    dtypes: dict[str, str]

    def to_dict(
        self, *, include_status: bool = False, include_timestamps: bool = False
    ) -> dict[str, list[Any]]:
        """Column name -> list of values (join keys first, then features in request order).

        Args:
            include_status: Add ``<feature>__status`` columns.
            include_timestamps: Add ``<feature>__timestamp`` columns.
        """
        out: dict[str, list[Any]] = dict(self.join_keys)
        for name, vals in self.values.items():
            out[name] = vals
            if include_status:
                out[f"{name}__status"] = self.statuses[name]
            if include_timestamps:
                out[f"{name}__timestamp"] = self.timestamps[name]
        return out

    def to_pandas(self, *, include_status: bool = False) -> pd.DataFrame:
        """One row per entity row, with nullable dtypes matching the features' dtypes."""
        import pandas as pd

        data: dict[str, Any] = {}
        for name, vals in self.join_keys.items():
            data[name] = pd.Series(vals, dtype=object)
        for name, vals in self.values.items():
            data[name] = _pandas_series(vals, self.dtypes[name])
            if include_status:
                data[f"{name}__status"] = pd.Series(self.statuses[name], dtype=object)
        return pd.DataFrame(data)


def _pandas_series(vals: list[Any], dtype: str) -> pd.Series:
    import pandas as pd

    if dtype in ("int32", "int64"):
        return pd.Series(vals, dtype="Int32" if dtype == "int32" else "Int64")
    if dtype in ("float32", "float64"):
        return pd.Series([math.nan if v is None else v for v in vals], dtype="float64")
    if dtype == "bool":
        return pd.Series(vals, dtype="boolean")
    if dtype == "timestamp":
        return pd.Series(pd.to_datetime(vals, utc=True)).astype("datetime64[us, UTC]")
    return pd.Series(vals, dtype=object)


def _typed_default(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "timestamp" and isinstance(value, str):
        return _dec_ts(str(_ts_to_us(value)).encode())
    if dtype == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if dtype in ("float32", "float64"):
        return float(value)
    return value


class OnlineStore:
    """Client side of the Redis online store: reads, state, maintenance.

    Thread-safe: one connection pool; each read takes one connection for its round trip.
    Namespaces of views are cached and re-checked by every read (see the module docstring).

    Args:
        config: The ``online_store`` section.
        project: Project name (part of every key).

    Example::

        online = OnlineStore(cfg.online_store, "demo")
        plan = online.plan(views, join_keys, ["profile:age", "spend:total_30d"])
        online.read(plan, [{"customer_id": "c1"}, {"customer_id": "c2"}]).to_dict()
    """

    def __init__(self, config: OnlineStoreConfig, project: str) -> None:
        """Create the pool lazily; nothing is sent to Redis until the first call."""
        self.config = config
        self.conn_spec = ConnectionSpec.from_config(config)
        self.layout = KeyLayout(config.key_prefix, project)
        self._client: redis.Redis | None = None
        self._ns: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> redis.Redis:
        """The pooled ``redis.Redis`` client (bytes replies)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.conn_spec.client()
        return self._client

    def close(self) -> None:
        """Close pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def ping(self) -> float:
        """Round trip to Redis in seconds.

        Raises:
            OnlineStoreError: Redis is unreachable (within ``connect_timeout_ms``).
        """
        t0 = time.perf_counter()
        try:
            self.client.ping()
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "connect") from exc
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ state

    def state(self, view: str) -> SyncState:
        """The view's sync state (empty before its first sync)."""
        try:
            h: Any = self.client.hgetall(self.layout.meta_key(view))
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the sync state") from exc
        return SyncState.from_hash(h)

    def stored_dtypes(self, view: str) -> dict[str, str]:
        """Feature dtypes recorded by the last sync (fallback when the registry lacks them)."""
        try:
            raw = self.client.hget(self.layout.meta_key(view), "dtypes")
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the sync state") from exc
        return {} if raw is None else dict(json.loads(raw))

    # ------------------------------------------------------------------ reads

    def plan(
        self,
        refs: Sequence[FeatureRef],
        views: Mapping[str, FeatureView],
        join_keys: Mapping[str, Sequence[tuple[str, str]]],
        *,
        entity_names: Mapping[str, Sequence[str]] | None = None,
        max_age: Mapping[str, timedelta | None] | None = None,
        full_feature_names: bool = False,
    ) -> ReadPlan:
        """Compile a request shape (resolved references) into a :class:`ReadPlan`.

        Args:
            refs: Resolved ``view:feature`` references, in output order.
            views: Feature views by name.
            join_keys: View -> ``(join key, dtype)`` in declared order.
            entity_names: View -> its entity names (``{"customer": ...}`` is accepted in an
                entity row for an entity with a single join key, as in Feast).
            max_age: View -> max age at read time (default the view's ttl).
            full_feature_names: Name output columns ``view__feature``.
        """
        by_view: dict[str, list[str]] = {}
        for r in refs:
            by_view.setdefault(r.view, []).append(r.feature)
        reads: list[_ViewRead] = []
        columns: list[str] = []
        index: dict[str, tuple[int, int]] = {}
        dtypes_out: dict[str, str] = {}
        all_keys: list[str] = []
        for vi, (vname, feats) in enumerate(by_view.items()):
            view = views[vname]
            dtypes = self._view_dtypes(view)
            keys = tuple(join_keys[vname])
            ents = tuple((entity_names or {}).get(vname, ()))
            alt: tuple[str | None, ...] = tuple(
                ents[0] if len(keys) == 1 and len(ents) == 1 else None for _ in keys
            )
            fields = [f.encode() for f in feats] + [TS_FIELD]
            tail = b"".join(_bulk_const(f) for f in fields)
            ttl = (max_age or {}).get(vname, view.ttl) if max_age else view.ttl
            recency = {a.name for a in view.aggregations if a.function == "recency"}
            declared = {f.name: f.default for f in view.features}
            out_names = tuple(f"{vname}__{f}" if full_feature_names else f for f in feats)
            reads.append(
                _ViewRead(
                    view=vname,
                    base=self.layout.view_base(vname),
                    pointer=self.layout.pointer_key(vname),
                    key_names=tuple(k for k, _ in keys),
                    key_alt=alt,
                    key_dtypes=tuple(t for _, t in keys),
                    features=tuple(feats),
                    out_names=out_names,
                    decoders=tuple(_DECODERS[dtypes[f]] for f in feats),
                    hmget_tail=tail,
                    hmget_argc=b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2),
                    max_age_us=None if ttl is None else ttl // timedelta(microseconds=1),
                    recency=tuple(f in recency for f in feats),
                    defaults=tuple(_typed_default(declared.get(f), dtypes[f]) for f in feats),
                )
            )
            for fi, (f, out) in enumerate(zip(feats, out_names, strict=True)):
                columns.append(out)
                index[out] = (vi, fi)
                dtypes_out[out] = dtypes[f]
            for k, _ in keys:
                if k not in all_keys:
                    all_keys.append(k)
        return ReadPlan(tuple(reads), tuple(columns), tuple(all_keys), dtypes_out, index)

    def _view_dtypes(self, view: FeatureView) -> dict[str, str]:
        from fstore_spark.errors import DefinitionError

        try:
            return view.feature_dtypes()
        except DefinitionError:
            # an aggregation over a column whose dtype the source does not declare: use what
            # the sync recorded from the feature table's Spark schema
            stored = self.stored_dtypes(view.name)
            missing = [f for f in view.feature_names if f not in stored]
            if missing:
                raise NotFoundError(
                    f"feature view {view.name!r}: the dtypes of {missing} are not declared and "
                    "no sync has recorded them yet. Fix: declare the source schema or run "
                    f"`fstore sync {view.name}` first."
                ) from None
            return stored

    def _entity_keys(self, plan: ReadPlan, rows: Sequence[Mapping[str, Any]]) -> list[list[bytes]]:
        """Per view, the encoded entity key of every row."""
        out: list[list[bytes]] = []
        for vr in plan.views:
            keys: list[bytes] = []
            single = len(vr.key_names) == 1
            for i, row in enumerate(rows):
                vals = []
                for k, alt in zip(vr.key_names, vr.key_alt, strict=True):
                    v = row.get(k)
                    if v is None and alt is not None:
                        v = row.get(alt)
                    if v is None:
                        raise EntityRowError(
                            f"entity row {i} {dict(row)!r} has no value for join key {k!r} of "
                            f"feature view {vr.view!r}"
                            + (f" (or entity {alt!r})" if alt else "")
                            + f". Fix: give every row {', '.join(vr.key_names)}."
                        )
                    vals.append(v)
                try:
                    if single and vr.key_dtypes[0] == "string" and isinstance(vals[0], str):
                        keys.append(vals[0].encode())
                    else:
                        keys.append(encode_entity_key(vals, vr.key_dtypes))
                except (TypeError, ValueError) as exc:
                    raise EntityRowError(
                        f"entity row {i} {dict(row)!r}: bad join key value for feature view "
                        f"{vr.view!r} ({', '.join(vr.key_names)} of dtype "
                        f"{', '.join(vr.key_dtypes)}): {exc}."
                    ) from None
            out.append(keys)
        return out

    def _pointers(self, plan: ReadPlan) -> list[bytes | None]:
        try:
            got: list[Any] = list(self.client.mget([vr.pointer for vr in plan.views]))
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the namespace pointers") from exc
        for vr, ns in zip(plan.views, got, strict=True):
            self._ns[vr.view] = ns
        return list(got)

    def _round_trip(
        self, plan: ReadPlan, keys: list[list[bytes]], ns: list[bytes | None]
    ) -> tuple[list[list[Any]], list[bytes | None]]:
        """One pipelined round trip: HMGET per (view, entity) under ``ns``, then MGET pointers."""
        parts: list[bytes] = []
        n_cmd = 0
        for vr, vkeys, vns in zip(plan.views, keys, ns, strict=True):
            if vns is None:
                continue
            prefix = vr.base + vns + b":"
            head, tail = vr.hmget_argc, vr.hmget_tail
            for k in vkeys:
                full = prefix + k
                parts.append(b"%s$%d\r\n%s\r\n%s" % (head, len(full), full, tail))
            n_cmd += len(vkeys)
        pointers = [vr.pointer for vr in plan.views]
        parts.append(b"*%d\r\n$4\r\nMGET\r\n" % (len(pointers) + 1))
        parts.extend(_bulk_const(p) for p in pointers)
        pool = self.client.connection_pool
        try:
            conn: Any = pool.get_connection()
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "connect") from exc
        try:
            conn.send_packed_command([b"".join(parts)], check_health=False)
            replies = [conn.read_response() for _ in range(n_cmd + 1)]
        except _redis_errors() as exc:
            conn.disconnect()
            raise self.conn_spec.error(exc, "read features") from exc
        finally:
            pool.release(conn)
        out: list[list[Any]] = []
        pos = 0
        for vkeys, vns in zip(keys, ns, strict=True):
            if vns is None:
                out.append([None] * len(vkeys))
            else:
                out.append(replies[pos : pos + len(vkeys)])
                pos += len(vkeys)
        return out, list(replies[-1])

    def read(
        self,
        plan: ReadPlan,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        now: datetime | None = None,
    ) -> OnlineResponse:
        """Read the plan's features for ``entity_rows`` in one pipelined round trip.

        Args:
            plan: From :meth:`plan`.
            entity_rows: One dict per entity: join key (or single-key entity name) -> value.
            now: The read instant for max-age checks and recency (default: the clock).

        Returns:
            Values typed by the registry's dtypes, with per-value statuses.

        Raises:
            EntityRowError: a row lacks a join key or has a value of the wrong type.
            OnlineStoreError: Redis is unreachable or times out.
        """
        keys = self._entity_keys(plan, entity_rows)
        ns = [self._ns.get(vr.view) for vr in plan.views]
        if any(vr.view not in self._ns for vr in plan.views):
            ns = self._pointers(plan)
        replies, pointers = self._round_trip(plan, keys, ns)
        if pointers != ns:  # a full reload flipped a namespace since we cached it: read again
            for vr, p in zip(plan.views, pointers, strict=True):
                self._ns[vr.view] = p
            ns = pointers
            replies, pointers = self._round_trip(plan, keys, ns)
        now_us = (
            time.time_ns() // 1000
            if now is None
            else (now.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
        )
        return self._decode(plan, entity_rows, replies, now_us)

    def _decode(
        self,
        plan: ReadPlan,
        rows: Sequence[Mapping[str, Any]],
        replies: list[list[Any]],
        now_us: int,
    ) -> OnlineResponse:
        n = len(rows)
        join_out: dict[str, list[Any]] = {}
        for k in plan.join_keys:
            join_out[k] = [None] * n
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        stamps: dict[str, list[datetime | None]] = {}
        present, null_value = Status.PRESENT, Status.NULL_VALUE
        for vr, vreplies in zip(plan.views, replies, strict=True):
            for k, alt in zip(vr.key_names, vr.key_alt, strict=True):
                col = join_out[k]
                for i, row in enumerate(rows):
                    if col[i] is None:
                        v = row.get(k)
                        col[i] = row.get(alt) if v is None and alt is not None else v
            nf = len(vr.features)
            cols = [[None] * n for _ in range(nf)]
            sts = [[Status.NOT_FOUND] * n for _ in range(nf)]
            tss: list[datetime | None] = [None] * n
            for i, rep in enumerate(vreplies):
                if rep is None:
                    continue
                ts_raw = rep[nf]
                if ts_raw is None:  # no such key: HMGET gives all nulls
                    continue
                ts = int(ts_raw)
                stamp = _EPOCH + timedelta(microseconds=ts)
                tss[i] = stamp
                if vr.max_age_us is not None and now_us - ts > vr.max_age_us:
                    for j in range(nf):
                        sts[j][i] = Status.OUTSIDE_MAX_AGE
                    continue
                for j in range(nf):
                    raw = rep[j]
                    if raw is None:
                        sts[j][i] = null_value
                    else:
                        val = vr.decoders[j](raw)
                        if vr.recency[j]:  # made exact at read time, as in training sets
                            val = val + (now_us - ts) / _DAY_US
                        cols[j][i] = val
                        sts[j][i] = present
            for j, name in enumerate(vr.out_names):
                d = vr.defaults[j]
                if d is not None:
                    cols[j] = [d if v is None else v for v in cols[j]]
                values[name] = cols[j]
                statuses[name] = sts[j]
                stamps[name] = tss
        ordered = {c: values[c] for c in plan.columns}
        return OnlineResponse(
            join_keys=join_out,
            values=ordered,
            statuses={c: statuses[c] for c in plan.columns},
            timestamps={c: stamps[c] for c in plan.columns},
            dtypes=dict(plan.dtypes),
        )

    def read_raw(self, view: str, entity_key: bytes) -> dict[bytes, bytes]:
        """The whole stored hash of one entity in the view's current namespace (debugging)."""
        try:
            ns: Any = self.client.get(self.layout.pointer_key(view))
            if ns is None:
                return {}
            h: Any = self.client.hgetall(self.layout.data_prefix(view, ns) + entity_key)
            return dict(h)
        except _redis_errors() as exc:
            raise self.conn_spec.error(exc, "read features") from exc
