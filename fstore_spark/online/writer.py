"""The executor side of a sync: Arrow batches in, atomic compare-and-set writes to Redis out.

Writes go through one Lua script (:data:`WRITE_SCRIPT`), so the check and the write are atomic
per key: a value is written only when its ``(feature timestamp, Delta version)`` is newer than
the stored one, and a same-timestamp newer version that carries the same values is skipped (so
an incremental sync counts only entities whose values changed). Never older over newer.

The sync job hands :func:`write_batches` a DataFrame with the columns :data:`KEY_COL` (the full
Redis key), :data:`OP_COL` (``U`` upsert, ``D`` delete, null: nothing), :data:`TS_COL`,
:data:`EXP_COL`, :data:`FUTURE_COL` and the feature columns; each partition answers with one row
of counts (:data:`WRITER_OUTPUT_SCHEMA`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fstore_spark.online.codec import bulk_string, encode_arrow
from fstore_spark.online.connection import ConnectionSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EXP_COL",
    "FUTURE_COL",
    "KEY_COL",
    "OP_COL",
    "TS_COL",
    "WRITER_OUTPUT_SCHEMA",
    "WRITE_SCRIPT",
    "WRITE_SCRIPT_SHA",
    "InjectedFailure",
    "WriterSpec",
    "write_batches",
]

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

WRITER_OUTPUT_SCHEMA = "written long, skipped long, deleted long, future_us long"
"""Spark schema of what :func:`write_batches` yields per partition."""

_WRITTEN, _DELETED = 1, 2  # replies of WRITE_SCRIPT; anything else is a skip


class InjectedFailure(RuntimeError):
    """Raised by the writer's test hook (``fail_after_partitions``)."""


@dataclass(frozen=True)
class WriterSpec:
    """What an executor needs to write one partition (pickled into the Spark task).

    Attributes:
        conn: Connection settings, as :meth:`ConnectionSpec.for_executors` gives them (no
            password when ``online_store.ship_password`` is false: the executor reads it
            from its own environment).
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


# ------------------------------------------------------------------------------------ encoding


def _bulk_arrow(arr: pa.Array) -> pa.Array:
    """RESP bulk strings (``$<len>`` CRLF ``<bytes>`` CRLF) of a binary array; nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.cast(pc.cast(pc.binary_length(arr), pa.string()), pa.binary())
    return pc.binary_join_element_wise(
        pa.scalar(b"$"), lengths, pa.scalar(b"\r\n"), arr, pa.scalar(b"\r\n"), b""
    )


def _as_text(arr: pa.Array) -> pa.Array:
    """An integer column as decimal bytes, null as ``0`` (the script's "none")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pc.cast(pc.fill_null(arr, 0), pa.string()), pa.binary())


def _feature_fields(batch: pa.RecordBatch, spec: WriterSpec) -> tuple[list[Any], pa.Array]:
    """Per feature, each row's ``name value`` RESP pair; per row, the number of fields.

    A null value gives a null pair: the field is left out of the command.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[Any] = []
    counts = pa.array([0] * batch.num_rows, pa.int64())
    for name in spec.features:
        values = encode_arrow(batch.column(name))
        chunk = pc.binary_join_element_wise(
            pa.scalar(bulk_string(name.encode())), _bulk_arrow(values), b""
        )
        parts.append(chunk)
        counts = pc.add(counts, pc.cast(pc.is_valid(values), pa.int64()))
    return parts, counts


def _with_op(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The rows that carry an op (keys that only report future timestamps carry none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.is_valid(batch.column(OP_COL))
    if pc.sum(pc.cast(keep, pa.int64())).as_py() != batch.num_rows:
        return batch.filter(keep)
    return batch


def _resp_commands(batch: pa.RecordBatch, spec: WriterSpec) -> list[bytes]:
    """One RESP-encoded ``EVALSHA`` per row, built column-wise by Arrow (no per-value Python).

    Rows with a null op produce no command. A null feature value becomes a null chunk, which
    the join skips: the field is absent from the hash.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    batch = _with_op(batch)
    if batch.num_rows == 0:
        return []
    parts, counts = _feature_fields(batch, spec)
    argc = pc.cast(pc.cast(pc.add(pc.multiply(counts, 2), 8), pa.string()), pa.binary())
    header = pc.binary_join_element_wise(pa.scalar(b"*"), argc, pa.scalar(b"\r\n"), b"")
    head = bulk_string(b"EVALSHA") + bulk_string(WRITE_SCRIPT_SHA.encode()) + bulk_string(b"1")
    cmd = pc.binary_join_element_wise(
        header,
        pa.scalar(head),
        _bulk_arrow(pc.cast(batch.column(KEY_COL), pa.binary())),
        _bulk_arrow(pc.cast(batch.column(OP_COL), pa.binary())),
        _bulk_arrow(_as_text(batch.column(TS_COL))),
        pa.scalar(bulk_string(str(spec.version).encode())),
        _bulk_arrow(_as_text(batch.column(EXP_COL))),
        *parts,
        b"",
        null_handling="skip",
    )
    out: list[bytes] = cmd.to_pylist()
    return out


# ------------------------------------------------------------------------------------ sending


@dataclass
class _Counts:
    """What one partition did; sent back to the driver as one row."""

    written: int = 0
    skipped: int = 0
    deleted: int = 0
    future_us: int | None = None

    def add_replies(self, replies: list[Any]) -> None:
        """Count the script's replies (1 written, 2 deleted, anything else skipped)."""
        for r in replies:
            if r == _WRITTEN:
                self.written += 1
            elif r == _DELETED:
                self.deleted += 1
            else:
                self.skipped += 1

    def see_future(self, batch: pa.RecordBatch) -> None:
        """Keep the largest future feature timestamp the batch reports."""
        import pyarrow.compute as pc

        if FUTURE_COL in batch.schema.names:
            m = pc.max(batch.column(FUTURE_COL)).as_py()
            if m is not None:
                self.future_us = m if self.future_us is None else max(self.future_us, m)

    def to_batch(self) -> pa.RecordBatch:
        """The one-row answer of :func:`write_batches`."""
        import pyarrow as pa

        return pa.RecordBatch.from_pydict(
            {
                "written": pa.array([self.written], pa.int64()),
                "skipped": pa.array([self.skipped], pa.int64()),
                "deleted": pa.array([self.deleted], pa.int64()),
                "future_us": pa.array([self.future_us], pa.int64()),
            }
        )


def _load_script(conn: Any) -> None:
    conn.send_command("SCRIPT", "LOAD", WRITE_SCRIPT)
    conn.read_response()


def _send_batch(conn: Any, commands: list[bytes]) -> list[Any]:
    """Send ``commands`` in one pipelined round trip; their replies, in order."""
    conn.send_packed_command([b"".join(commands)], check_health=False)
    return [conn.read_response() for _ in commands]


def _send_with_retry(conn: Any, commands: list[bytes]) -> list[Any]:
    """:func:`_send_batch`, sent again once on a new connection if it fails half way.

    A dropped connection or ``NOSCRIPT`` (Redis restarted) is retried: the script makes every
    command idempotent.
    """
    import redis as _redis

    try:
        return _send_batch(conn, commands)
    except (_redis.ConnectionError, _redis.exceptions.NoScriptError):
        conn.disconnect()
        _load_script(conn)
        return _send_batch(conn, commands)


def _failure_injected(conn: Any, spec: WriterSpec) -> bool:
    """Whether this partition plays a killed task (the ``fail_after_partitions`` test hook)."""
    if spec.fail_after_partitions is None:
        return False
    conn.send_command("INCR", spec.fail_counter_key)
    return int(conn.read_response()) > spec.fail_after_partitions


def _write_partition(conn: Any, batches: Iterator[pa.RecordBatch], spec: WriterSpec) -> _Counts:
    """Send every batch's commands, ``spec.batch_size`` per round trip; count the replies."""
    counts = _Counts()
    _load_script(conn)
    failing = _failure_injected(conn, spec)
    for batch in batches:
        counts.see_future(batch)
        commands = _resp_commands(batch, spec)
        for i in range(0, len(commands), spec.batch_size):
            counts.add_replies(_send_with_retry(conn, commands[i : i + spec.batch_size]))
            if failing:
                break
        if failing:
            break
    if failing:
        raise InjectedFailure(
            f"injected failure after {spec.fail_after_partitions} partition(s) "
            "(fail_after_partitions test hook)"
        )
    return counts


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

    Raises:
        OnlineStoreError: Redis is unreachable or fails.
    """
    import redis as _redis

    client = spec.conn.client(pool_size=1)
    conn: Any = None
    try:
        conn = client.connection_pool.get_connection()
        counts = _write_partition(conn, batches, spec)
    except _redis.RedisError as exc:
        raise spec.conn.error(exc, "write the online store") from exc
    finally:
        if conn is not None:
            client.connection_pool.release(conn)
        client.close()
    yield counts.to_batch()
