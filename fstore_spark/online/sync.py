"""The sync job: keep Redis in step with a view's Delta feature table, from Spark executors.

What Redis holds for a view is "the latest row per entity as of the sync instant": the row with
the largest ``(feature_timestamp, created_timestamp)`` among rows with
``as_of - ttl <= feature_timestamp <= as_of`` -- exactly what a training set would join for a
label at ``as_of`` (:mod:`fstore_spark.offline.asof`).

* **full** -- every entity's latest row from the Delta snapshot, written into a *new namespace*
  (``P:proj:view:<ns+1>:...``); when every partition has finished, one ``MULTI`` flips the
  pointer key to it and records the sync state, then the old namespace is unlinked. Readers
  switch atomically, and entities dropped from the table simply are not in the new namespace.
* **incremental** -- only the entities whose rows changed since the last synced Delta version,
  found with Delta's change data feed (``readChangeFeed`` from ``version + 1``; enabled on every
  feature table at creation). Their latest rows are recomputed from the current snapshot and
  upserted; an entity with no eligible row any more is deleted. The Lua script skips a
  same-timestamp write whose values did not change, so ``keys_written`` counts exactly the
  entities whose served values changed. When the commits since the last sync (read from the
  Delta log's commit files) only *inserted* rows (appends, or a ``replaceWhere`` that replaced
  nothing: no removed files, no deleted rows), the feed's rows are the only candidates and the
  snapshot is not read at all; a candidate older than what Redis holds is refused by the
  script. Those rows are read straight from the data files the commits added, as listed in the
  log, when the table's files are plain Parquet (no partition columns, no column mapping):
  that is what the feed would return, without planning its scan; otherwise from the feed.
  This assumes (keys, ``feature_timestamp``) is unique in the table, which materialization
  guarantees.
* Rows stamped after the sync instant (a backfill into the future) are not served yet; the
  smallest such timestamp is kept in the state, and the first sync after it also takes every
  entity with rows that became current since the previous sync.

Writes happen on executors with ``mapInArrow`` (works under Spark Connect too): each partition
opens one connection and sends pipelined batches of ``EVALSHA`` (the compare-and-set script in
:mod:`fstore_spark.online.client`); each partition returns one row of counts and the driver sums
them -- nothing but those rows is collected.

State and resumption: the state (last synced Delta version, instant, namespace) lives in Redis in
the view's ``_meta`` hash and is only advanced after all partitions succeeded. A crashed
incremental run is simply run again from the same version (already written keys are skipped or
rewritten identically). A crashed full run leaves ``pending_ns``/``pending_version``; the next
run resumes it at the same Delta version and instant, so the namespace it flips to is exactly
that snapshot. One sync per view runs at a time (a Redis lease renewed while the job runs).

Example::

    result = sync_view(spark, project_root, view, [("customer_id", "string")], online)
    result.keys_written, result.mode       # (1000, 'full') the first time
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from fstore_spark.core.definitions import FeatureView, definition_hash
from fstore_spark.errors import NotFoundError, OnlineStoreError
from fstore_spark.lakehouse.tables import (
    CREATED_TIMESTAMP,
    FEATURE_TIMESTAMP,
    feature_table_path,
    read_feature_table,
)
from fstore_spark.online.client import (
    EXP_COL,
    FUTURE_COL,
    KEY_COL,
    OP_COL,
    TS_COL,
    WRITER_OUTPUT_SCHEMA,
    OnlineStore,
    SyncState,
    WriterSpec,
    write_batches,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SyncResult", "sync_view", "spark_dtypes"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEASE_MS = 60_000


@dataclass(frozen=True)
class SyncResult:
    """What one sync run did.

    Attributes:
        view: Feature view name.
        mode: ``full``, ``incremental`` or ``noop`` (nothing changed since the last sync).
        version: Delta version of the feature table now in Redis.
        previous_version: Delta version synced before (None the first time).
        namespace: Namespace the view's keys are in after the run.
        keys_written: Entity hashes written (new or changed values).
        keys_skipped: Writes the compare-and-set script refused (stored value as new or newer,
            or unchanged), plus deletes of keys that were not there.
        keys_deleted: Entity hashes deleted (entity gone from the table or out of ttl).
        keys_unlinked: Keys of the previous namespace removed after a full reload.
        as_of: The instant "latest" was taken at.
        reason: Why this mode was chosen.
        resumed: Whether a crashed full reload was resumed.
        seconds: Wall-clock duration.
    """

    view: str
    mode: str
    version: int | None
    previous_version: int | None
    namespace: int | None
    keys_written: int
    keys_skipped: int
    keys_deleted: int
    keys_unlinked: int
    as_of: datetime
    reason: str
    resumed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


def _us(ts: datetime) -> int:
    return (ts.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


_SPARK_TO_DTYPE = {
    "StringType": "string",
    "IntegerType": "int32",
    "ShortType": "int32",
    "ByteType": "int32",
    "LongType": "int64",
    "FloatType": "float32",
    "DoubleType": "float64",
    "BooleanType": "bool",
    "TimestampType": "timestamp",
    "TimestampNTZType": "timestamp",
    "DateType": "date",
}


def spark_dtypes(df: DataFrame, columns: list[str]) -> dict[str, str]:
    """Definition dtypes of DataFrame columns (what a read decodes them as)."""
    by_name = {f.name: type(f.dataType).__name__ for f in df.schema.fields}
    out = {}
    for c in columns:
        kind = by_name.get(c)
        if kind not in _SPARK_TO_DTYPE:
            raise OnlineStoreError(
                f"column {c!r} of Spark type {kind} cannot be served online; supported: "
                f"{', '.join(sorted(set(_SPARK_TO_DTYPE.values())))}."
            )
        out[c] = _SPARK_TO_DTYPE[str(kind)]
    return out


# ------------------------------------------------------------------------------------ lease


class _Lease:
    """A Redis lease so that one sync per view runs at a time; renewed by a daemon thread.

    A job that dies stops renewing, so its lease lapses within ``_LEASE_MS``.
    """

    _RELEASE = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0"
    )
    _RENEW = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
    )

    def __init__(self, online: OnlineStore, view: str) -> None:
        self.online = online
        self.key = online.layout.lock_key(view)
        self.view = view
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Lease:
        client = self.online.client
        ok = client.set(self.key, self.token, nx=True, px=_LEASE_MS)
        if not ok:
            holder: Any = client.get(self.key)
            ttl: Any = client.pttl(self.key)
            raise OnlineStoreError(
                f"another sync of view {self.view!r} is running (lease held by "
                f"{holder.decode() if holder else '?'}, expires in {max(ttl, 0) / 1000:.0f}s). "
                "Fix: wait for it to finish; a crashed job's lease lapses by itself."
            )
        self._thread = threading.Thread(target=self._renew, name="fstore-sync-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(_LEASE_MS / 3000):
            try:
                self.online.client.eval(self._RENEW, 1, self.key, self.token, _LEASE_MS)
            except Exception:  # best effort: the job itself reports Redis failures
                pass

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.online.client.eval(self._RELEASE, 1, self.key, self.token)
        except Exception:  # the lease lapses by itself
            pass


# ------------------------------------------------------------------------------------ Spark side


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _key_sql(prefix: bytes, keys: list[tuple[str, str]]) -> str:
    """The full Redis key as a Spark SQL expression (same bytes as ``encode_entity_key``).

    The prefix is a binary literal and the escape characters are built with ``chr``, so the
    text means the same whatever the session's string-literal settings.
    """

    def part(name: str, dtype: str, escape: bool) -> str:
        c = _ident(name)
        if dtype == "timestamp":
            return f"CAST(unix_micros({c}) AS STRING)"
        if dtype == "string":
            if escape:  # \ -> \\ first, then | -> \|
                c = f"replace({c}, chr(92), concat(chr(92), chr(92)))"
                c = f"replace({c}, chr(124), concat(chr(92), chr(124)))"
            return c
        return f"CAST({c} AS STRING)"  # ints in decimal, booleans true/false, dates yyyy-MM-dd

    if len(keys) == 1:
        ent = part(keys[0][0], keys[0][1], False)
    else:
        ent = "concat_ws(chr(124), " + ", ".join(part(k, t, True) for k, t in keys) + ")"
    return f"concat(X'{prefix.hex()}', CAST({ent} AS BINARY))"


def _parallelism(spark: SparkSession) -> int:
    """Writer tasks by default: the cluster's default parallelism (at least 2)."""
    try:
        return max(int(spark.sparkContext.defaultParallelism), 2)
    except Exception:  # Spark Connect has no SparkContext
        return max(int(spark.conf.get("spark.sql.shuffle.partitions") or 2), 2)


def _ts_sql(us: int) -> str:
    return f"timestamp_micros({int(us)})"


def _writes(
    spark: SparkSession,
    rows: DataFrame,
    prefix: bytes,
    keys: list[tuple[str, str]],
    features: list[str],
    as_of_us: int,
    ttl: timedelta | None,
    partitions: int | None,
    expire_after: timedelta | None,
    op_when_absent: str | None,
    also_keys: DataFrame | None = None,
    where: str | None = None,
) -> DataFrame:
    """The writer's input: key, op (U upsert / D delete / null nothing), ts, expiry, features.

    Per entity: the latest row with ``as_of - ttl <= ts <= as_of`` (null when there is none:
    op ``op_when_absent``) and the smallest feature timestamp after ``as_of`` (``_fs_fut``,
    micros). ``also_keys`` adds entities (key columns only) that must come out even without
    any row. ``where`` is an extra SQL condition on ``rows``. The entities are hash-partitioned
    into ``partitions`` writer tasks explicitly: left to adaptive execution, a narrow table
    would be coalesced into one task and written by one connection. ``partitions=None`` (small
    inputs) puts everything in one task instead: a single partition already groups every
    entity, so there is no shuffle at all.

    One SQL statement (max over a struct = latest feature_timestamp, ties to the latest
    created_timestamp, then to the values themselves; one aggregation, no window, no collect):
    built as text, it costs the driver one call into the JVM instead of one per column
    expression, which is most of the planning time of a small incremental run.
    """
    names = [k for k, _ in keys]
    ks = ", ".join(_ident(k) for k in names)
    ts, created = _ident(FEATURE_TIMESTAMP), _ident(CREATED_TIMESTAMP)
    conds = [f"{_ident(k)} IS NOT NULL" for k in names]
    if ttl is not None:
        conds.insert(0, f"{ts} >= {_ts_sql(as_of_us - ttl // timedelta(microseconds=1))}")
    if where:
        conds.insert(0, f"({where})")
    cols = ", ".join([ks, ts, created, *(_ident(f) for f in features)])
    src = f"SELECT {cols} FROM {{rows}} WHERE {' AND '.join(conds)}"
    if also_keys is not None:
        nulls = ", ".join(
            f"NULL AS {_ident(c)}" for c in [FEATURE_TIMESTAMP, CREATED_TIMESTAMP, *features]
        )
        src += f" UNION ALL SELECT {ks}, {nulls} FROM {{also_keys}}"
    hint = "COALESCE(1)" if partitions is None else f"REPARTITION({int(partitions)}, {ks})"
    as_of = _ts_sql(as_of_us)
    fields = ", ".join(
        [f"{ts} AS _t", f"{created} AS _c", *(f"{_ident(f)} AS {_ident(f)}" for f in features)]
    )
    latest = (
        f"SELECT {ks}, max(CASE WHEN {ts} <= {as_of} THEN struct({fields}) END) AS _fs_r, "
        f"min(CASE WHEN {ts} > {as_of} THEN unix_micros({ts}) END) AS {FUTURE_COL} "
        f"FROM (SELECT /*+ {hint} */ * FROM ({src})) GROUP BY {ks}"
    )
    absent = f"'{op_when_absent}'" if op_when_absent else "CAST(NULL AS STRING)"
    if expire_after is None:
        exp = "CAST(0 AS BIGINT)"
    else:
        ms = expire_after // timedelta(milliseconds=1)
        exp = (
            "CAST(CASE WHEN _fs_r IS NOT NULL THEN "
            f"floor(unix_micros(_fs_r._t) / 1000) + {int(ms)} END AS BIGINT)"
        )
    query = (
        f"SELECT {_key_sql(prefix, keys)} AS {KEY_COL}, "
        f"CASE WHEN _fs_r IS NOT NULL THEN 'U' ELSE {absent} END AS {OP_COL}, "
        f"unix_micros(_fs_r._t) AS {TS_COL}, {exp} AS {EXP_COL}, {FUTURE_COL}"
        + "".join(f", _fs_r.{_ident(f)} AS {_ident(f)}" for f in features)
        + f" FROM ({latest})"
    )
    frames: dict[str, Any] = {"rows": rows}
    if also_keys is not None:
        frames["also_keys"] = also_keys
    return spark.sql(query, **frames)


def _run_writers(df: DataFrame, spec: WriterSpec) -> tuple[int, int, int, int | None]:
    """Write on the executors; sum the per-partition counts (one small row per partition)."""

    def write(batches: Any) -> Any:
        return write_batches(batches, spec)

    # one small row per writer task (bounded by the number of partitions): summed here rather
    # than by one more shuffle stage
    out = df.mapInArrow(write, WRITER_OUTPUT_SCHEMA).collect()
    futures = [int(r["future_us"]) for r in out if r["future_us"] is not None]
    return (
        sum(int(r["written"] or 0) for r in out),
        sum(int(r["skipped"] or 0) for r in out),
        sum(int(r["deleted"] or 0) for r in out),
        min(futures) if futures else None,
    )


# ------------------------------------------------------------------------------------ the job


_HISTORY = 50  # recent commits read at the start of a run (version + change size estimate)
_BROADCAST_ROWS = 2_000_000  # changed rows up to which the changed keys are broadcast
_SMALL_FEED_ROWS = 200_000  # inserted rows up to which one writer task takes them all


def _require_table(spark: SparkSession, path: str, view: str) -> None:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        raise NotFoundError(
            f"feature view {view!r} has no feature table at {path}. Fix: materialize it first "
            "(store.materialize / `fstore materialize`), then sync."
        )


class _Commit(NamedTuple):
    """One commit of a feature table, as the sync needs it.

    Attributes:
        version: Delta version.
        rows: Rows the commit wrote (from its metrics).
        removes: Whether it removed or changed rows (anything but a plain insert).
        files: The data files it added, as written in the log (relative to the table, URL
            encoded), when they are plain files whose rows are exactly what it inserted;
            None when unknown (read from ``history()``) or not plain (partition values,
            absolute paths, metadata or protocol changes).
    """

    version: int
    rows: int
    removes: bool
    files: tuple[str, ...] | None = None


def _commit_summary(
    version: int,
    operation: str | None,
    metrics: dict[str, Any],
    removes: bool = False,
    files: tuple[str, ...] | None = None,
) -> _Commit:
    """:class:`_Commit` of one commit from its ``commitInfo``.

    A commit "removed rows" unless it is a plain write whose metrics say no file was removed
    and no row deleted (an append, or a ``replaceWhere`` that matched nothing): anything else
    (delete, merge, update, an overwrite that replaced rows, an unknown operation) counts.
    ``removes`` adds what the commit's actions say (see :func:`_log_tail`).
    """
    written = sum(int(v) for k, v in metrics.items() if k in _ROW_METRICS)
    removes = (
        removes
        or operation not in ("WRITE", "STREAMING UPDATE")
        or any(int(metrics.get(k, "0") or 0) > 0 for k in _REMOVAL_METRICS)
    )
    return _Commit(version, written, removes, files)


def _recent_history(spark: SparkSession, path: str, view: str) -> list[_Commit]:
    """The table's recent commits, newest first.

    Read with ``DeltaTable.history()`` (builds a DataFrame: ~0.2-0.3 s on a small machine); the
    incremental path reads the log's newest commit files instead (:func:`_log_tail`) and comes
    here only when it cannot.
    """
    from delta.tables import DeltaTable

    _require_table(spark, path, view)
    rows = (
        DeltaTable.forPath(spark, path)
        .history(_HISTORY)
        .select("version", "operation", "operationMetrics")
        .collect()  # bounded: _HISTORY rows
    )
    out = [
        _commit_summary(int(r["version"]), r["operation"], dict(r["operationMetrics"] or {}))
        for r in rows
    ]
    return sorted(out, reverse=True)


# reader features that do not change how a data file's rows are read (deletion vectors are
# refused per file: an add with one counts as a removal)
_PLAIN_READER_FEATURES = frozenset(
    {"timestampNtz", "deletionVectors", "v2Checkpoint", "vacuumProtocolCheck"}
)


class _LogTail(NamedTuple):
    """What :func:`_log_tail` read: the new commits, and the schema to read their files with."""

    commits: list[_Commit]
    schema: str | None  # the table's schema (JSON) when its files can be read as plain Parquet


def _log_tail(spark: SparkSession, path: str, since: int) -> _LogTail | None:
    """:func:`_recent_history` of the commits ``since``..latest, read from the Delta log itself.

    The Delta protocol keeps each commit in ``_delta_log/<version, 20 digits>.json``, one action
    per line, versions contiguous, the newest ones never cleaned up. Reading the files from
    ``since`` on until one is missing gives the latest version and each new commit's
    ``commitInfo`` (operation, metrics) and actions in a few small reads through the session's
    Hadoop FileSystem (any storage Spark reads: local, HDFS, S3, ABFS...). A commit also counts
    as removing rows when its actions say so: a ``remove`` that changes data, a ``cdc`` file
    (written by updates, deletes and merges only), an ``add`` with a deletion vector.

    The latest version's checksum file (``<version>.crc``, written by Delta after each commit)
    holds the table's metadata and protocol. When they say the data files are plain Parquet
    whose columns are the table's (no partition columns, no column mapping, no reader feature
    that changes how a file is read), the schema comes back with the commits: the rows a
    commit of inserts added are then exactly its added files, and the incremental sync reads
    them directly instead of planning Delta's change-feed scan (see ``_Job.incremental``).

    Returns None when this cannot answer, and the caller reads ``history()`` instead: no JVM
    (Spark Connect, restricted clusters), commit ``since`` gone (log cleanup, the table was
    replaced), commits coordinated outside the log (files in ``_delta_log/_commits`` or
    ``_staged_commits``), more than ``_HISTORY`` new commits, or any read error.
    """
    try:
        jvm: Any = spark._jvm  # type: ignore[attr-defined]
        hconf = spark._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        fs_path = jvm.org.apache.hadoop.fs.Path
        log = fs_path(path, "_delta_log")
        fs = log.getFileSystem(hconf)
        read = jvm.org.apache.commons.io.IOUtils.toString

        def text(name: str) -> str | None:
            f = fs_path(log, name)
            if not fs.exists(f):
                return None
            stream = fs.open(f)
            try:
                return str(read(stream, "UTF-8"))
            finally:
                stream.close()

        out: list[_Commit] = []
        version = since
        while (commit := text(f"{version:020d}.json")) is not None:
            if len(out) > _HISTORY:
                return None
            out.append(_parse_commit(version, commit))
            version += 1
        if not out:
            return None
        for sub in ("_commits", "_staged_commits"):  # Delta creates the latter, empty
            d = fs_path(log, sub)
            if fs.exists(d) and len(fs.listStatus(d)) > 0:
                return None
        crc = text(f"{version - 1:020d}.crc")
    except Exception:  # Spark Connect, no access to the JVM, an unreadable file: history()
        return None
    return _LogTail(sorted(out, reverse=True), _plain_schema(crc))


def _plain_schema(crc: str | None) -> str | None:
    """The table schema from a checksum file, when its data files read as plain Parquet."""
    try:
        info = json.loads(crc) if crc else {}
        meta, protocol = info.get("metadata") or {}, info.get("protocol") or {}
        conf = meta.get("configuration") or {}
        plain = (
            (meta.get("format") or {}).get("provider", "parquet") == "parquet"
            and not meta.get("partitionColumns")
            and conf.get("delta.columnMapping.mode", "none") == "none"
            and set(protocol.get("readerFeatures") or ()) <= _PLAIN_READER_FEATURES
            and int(protocol.get("minReaderVersion", 99)) <= 3
        )
        schema = meta.get("schemaString")
        return schema if plain and isinstance(schema, str) else None
    except (ValueError, TypeError, AttributeError):
        return None


def _parse_commit(version: int, text: str) -> _Commit:
    """:class:`_Commit` of one commit file's actions (JSON lines)."""
    operation = None
    metrics: dict[str, Any] = {}
    removes = False
    plain = True
    files: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            operation = action["commitInfo"].get("operation")
            metrics = action["commitInfo"].get("operationMetrics") or {}
        elif "remove" in action:
            removes = removes or action["remove"].get("dataChange", True) is not False
        elif "cdc" in action:
            removes = True
        elif "add" in action:
            add = action["add"]
            removes = removes or bool(add.get("deletionVector"))
            if add.get("dataChange", True) is not False:
                rel = str(add.get("path", ""))
                plain = plain and bool(rel) and ":" not in rel and not rel.startswith("/")
                plain = plain and not add.get("partitionValues")
                files.append(rel)
        elif "metaData" in action or "protocol" in action:
            plain = False
    return _commit_summary(version, operation, metrics, removes, tuple(files) if plain else None)


# commit metrics that count rows a commit wrote or removed (WRITE, MERGE, UPDATE, DELETE)
_ROW_METRICS = (
    "numOutputRows",
    "numDeletedRows",
    "numTargetRowsInserted",
    "numTargetRowsUpdated",
    "numTargetRowsDeleted",
    "numUpdatedRows",
)


# commit metrics that say a plain write removed files or rows
_REMOVAL_METRICS = ("numRemovedFiles", "numDeletedRows", "numDeletionVectorsAdded")


def _table_version(spark: SparkSession, path: str, view: str) -> int:
    return _recent_history(spark, path, view)[0].version


def _min_opt(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def sync_view(
    spark: SparkSession,
    project_root: str,
    view: FeatureView,
    join_keys: list[tuple[str, str]],
    online: OnlineStore,
    *,
    mode: str = "incremental",
    expire_after: timedelta | None = None,
    now: datetime | None = None,
    partitions: int | None = None,
    fail_after_partitions: int | None = None,
) -> SyncResult:
    """Sync one view's feature table to Redis (see the module docstring for the semantics).

    Args:
        spark: Session.
        project_root: Project root in the lakehouse.
        view: The feature view.
        join_keys: ``(join key, dtype)`` in declared order.
        online: The online store.
        mode: ``incremental`` (default; falls back to full when there is no state, the
            definition changed or the change data feed cannot be read) or ``full``.
        expire_after: Redis expiry after each value's feature timestamp (``PEXPIREAT``); None
            keeps keys until replaced.
        now: The instant to sync "latest as of" (default: the clock). Tests pin it.
        partitions: Repartition the entities into this many writer tasks (default: Spark's
            shuffle partitions).
        fail_after_partitions: **Test hook**: partitions after the first N write one batch and
            then fail, as if the job were killed mid-run. The state is not advanced, so the next
            run resumes.

    Returns:
        What the run did.

    Raises:
        NotFoundError: the view has no feature table yet.
        OnlineStoreError: Redis is unreachable, or another sync of the view is running.
    """
    if mode not in ("incremental", "full"):
        raise OnlineStoreError(f"sync mode must be 'incremental' or 'full', got {mode!r}.")
    t0 = time.perf_counter()
    path = feature_table_path(project_root, view)
    _require_table(spark, path, view.name)
    online.ping()
    with _Lease(online, view.name):
        state = online.state(view.name)
        tail = None
        if mode == "incremental" and state.version is not None and state.pending_ns is None:
            # the usual run: the commits since the last sync, straight from the log
            tail = _log_tail(spark, path, state.version)
        history = tail.commits if tail is not None else _recent_history(spark, path, view.name)
        version = history[0].version
        as_of_us = _us(now) if now is not None else time.time_ns() // 1000
        dhash = definition_hash(view)
        job = _Job(spark, project_root, view, join_keys, online, expire_after, partitions)
        job.fail_after = fail_after_partitions
        job.history = history
        job.schema = tail.schema if tail is not None else None
        if state.pending_ns is not None and state.pending_version is not None:
            result = job.full(state, state.pending_version, state.pending_as_of_us or as_of_us)
        elif mode == "full":
            result = job.full(state, version, as_of_us, reason="full sync requested")
        elif state.ns is None or state.version is None or state.as_of_us is None:
            result = job.full(state, version, as_of_us, reason="first sync of the view")
        elif state.definition_hash != dhash:
            result = job.full(state, version, as_of_us, reason="the view definition changed")
        elif state.version > version:
            result = job.full(
                state, version, as_of_us, reason="the feature table went back to an older version"
            )
        else:
            result = job.incremental(state, version, as_of_us)
    return SyncResult(**{**asdict(result), "seconds": time.perf_counter() - t0})


class _Job:
    """One sync run's context and the two modes."""

    def __init__(
        self,
        spark: SparkSession,
        project_root: str,
        view: FeatureView,
        join_keys: list[tuple[str, str]],
        online: OnlineStore,
        expire_after: timedelta | None,
        partitions: int | None,
    ) -> None:
        self.spark = spark
        self.root = project_root
        self.view = view
        self.keys = join_keys
        self.key_names = [k for k, _ in join_keys]
        self.features = list(view.feature_names)
        self.online = online
        self.layout = online.layout
        self.expire_after = expire_after
        self.partitions = partitions or _parallelism(spark)
        self.fail_after: int | None = None
        self.history: list[_Commit] = []
        self.schema: str | None = None  # the table's, when its files read as plain Parquet
        self.path = feature_table_path(project_root, view)

    def _spec(self, version: int) -> WriterSpec:
        base = self.layout.view_base(self.view.name)
        counter = base + b"_test_partitions:" + uuid.uuid4().hex.encode()
        return WriterSpec(
            conn=self.online.conn_spec,
            version=version,
            features=tuple(self.features),
            batch_size=self.online.config.batch_size,
            fail_after_partitions=self.fail_after,
            fail_counter_key=counter,
        )

    def _writes(
        self,
        rows: DataFrame,
        ns: int,
        as_of_us: int,
        partitions: int | None,
        op_when_absent: str | None,
        also_keys: DataFrame | None = None,
        where: str | None = None,
    ) -> DataFrame:
        return _writes(
            self.spark,
            rows,
            self.layout.data_prefix(self.view.name, ns),
            self.keys,
            self.features,
            as_of_us,
            self.view.ttl,
            partitions,
            self.expire_after,
            op_when_absent,
            also_keys=also_keys,
            where=where,
        )

    def _snapshot(self, version: int) -> DataFrame:
        return read_feature_table(self.spark, self.root, self.view, as_of_version=version)

    def _meta(self, extra: dict[str, Any]) -> Any:
        return {"synced_at_us": time.time_ns() // 1000, **extra}

    def _result(self, **kw: Any) -> SyncResult:
        base: dict[str, Any] = {
            "view": self.view.name,
            "keys_unlinked": 0,
            "resumed": False,
            "seconds": 0.0,
        }
        base.update(kw)
        return SyncResult(**base)

    # ------------------------------------------------------------------ full

    def full(
        self, state: SyncState, version: int, as_of_us: int, reason: str | None = None
    ) -> SyncResult:
        client = self.online.client
        meta_key = self.layout.meta_key(self.view.name)
        resumed = reason is None
        if resumed:
            assert state.pending_ns is not None
            ns = state.pending_ns
            reason = (
                f"resuming the full reload into namespace {ns} at Delta version {version} that "
                "did not finish"
            )
            try:
                snapshot = self._snapshot(version)
            except NotFoundError:  # that version is gone (vacuumed): start over
                self._unlink_ns(ns)
                client.hdel(meta_key, "pending_ns", "pending_version", "pending_as_of_us")
                state = SyncState(**{**asdict(state), "pending_ns": None})
                version = _table_version(self.spark, self.path, self.view.name)
                return self.full(state, version, time.time_ns() // 1000, "previous reload lost")
        else:
            snapshot = self._snapshot(version)
            ns = int(client.hincrby(meta_key, "ns_seq", 1))
            if state.ns is not None and ns <= state.ns:  # the counter was lost: stay unique
                ns = state.ns + 1
                client.hset(meta_key, "ns_seq", ns)
            client.hset(
                meta_key,
                mapping={
                    "pending_ns": ns,
                    "pending_version": version,
                    "pending_as_of_us": as_of_us,
                },
            )
        dtypes = spark_dtypes(snapshot, self.features)
        writes = self._writes(snapshot, ns, as_of_us, self.partitions, None)
        w, s, d, fut = _run_writers(writes, self._spec(version))
        # every partition succeeded: flip the pointer and record the state in one transaction
        pipe = client.pipeline(transaction=True)
        pipe.set(self.layout.pointer_key(self.view.name), ns)
        pipe.hset(
            meta_key,
            mapping=self._meta(
                {
                    "ns": ns,
                    "version": version,
                    "as_of_us": as_of_us,
                    "future_us": "" if fut is None else fut,
                    "definition_hash": definition_hash(self.view),
                    "dtypes": json.dumps(dtypes),
                    "mode": "full",
                }
            ),
        )
        pipe.hdel(meta_key, "pending_ns", "pending_version", "pending_as_of_us")
        pipe.execute()
        unlinked = 0
        if state.ns is not None and state.ns != ns:
            unlinked = self._unlink_ns(state.ns)
        return self._result(
            mode="full",
            version=version,
            previous_version=state.version,
            namespace=ns,
            keys_written=w,
            keys_skipped=s,
            keys_deleted=d,
            keys_unlinked=unlinked,
            as_of=_dt(as_of_us),
            reason=reason,
            resumed=resumed,
        )

    def _unlink_ns(self, ns: int) -> int:
        """Remove every key of an old namespace (SCAN + UNLINK in batches, from the driver)."""
        prefix = self.layout.data_prefix(self.view.name, ns)
        pattern = _glob_escape(prefix) + b"*"
        client = self.online.client
        n = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                n += int(client.unlink(*batch))
                batch.clear()
        if batch:
            n += int(client.unlink(*batch))
        return n

    # ------------------------------------------------------------------ incremental

    def _since(self, prev: int) -> list[_Commit] | None:
        """The commits after ``prev`` (None when not all of them are in the history)."""
        if not self.history or min(c.version for c in self.history) > prev + 1:
            return None
        return [c for c in self.history if c.version > prev]

    def _changed_rows(self, prev: int) -> float:
        """Rows the commits after ``prev`` wrote (infinite when not all are in the history)."""
        since = self._since(prev)
        return float("inf") if since is None else float(sum(c.rows for c in since))

    def _removed_since(self, prev: int) -> bool:
        """Whether a commit after ``prev`` removed rows (true when not all are in the history)."""
        since = self._since(prev)
        return since is None or any(c.removes for c in since)

    def incremental(self, state: SyncState, version: int, as_of_us: int) -> SyncResult:
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        assert state.version is not None and state.as_of_us is not None and state.ns is not None
        prev = state.version
        due = state.future_us is not None and state.future_us <= as_of_us
        if version == prev and not due:
            self.online.client.hset(
                self.layout.meta_key(self.view.name), mapping=self._meta({"as_of_us": as_of_us})
            )
            return self._result(
                mode="noop",
                version=version,
                previous_version=prev,
                namespace=state.ns,
                keys_written=0,
                keys_skipped=0,
                keys_deleted=0,
                as_of=_dt(as_of_us),
                reason=f"no new Delta version since {prev}",
            )
        if version > prev and not due and not self._removed_since(prev):
            inserted = self._inserted(prev)
            if inserted is not None:
                return self._from_inserts(inserted, None, state, version, prev, as_of_us)
        touched: DataFrame | None = None
        if version > prev:
            try:
                cdf = (
                    self.spark.read.format("delta")
                    .option("readChangeFeed", "true")
                    .option("startingVersion", prev + 1)
                    .option("endingVersion", version)
                    .load(self.path)
                )
                touched = cdf.select(*self.key_names)
            except AnalysisException as exc:  # feed not enabled for that range, or vacuumed
                return self.full(
                    state,
                    version,
                    as_of_us,
                    reason=f"change data feed unreadable from version {prev + 1}: "
                    f"{type(exc).__name__}",
                )
        if touched is not None and not due and not self._removed_since(prev):
            # only inserts since the last sync (the common case: materialization appended new
            # feature rows): the changed entities' candidates are the feed's rows themselves.
            # Older candidates than what Redis holds are refused by the compare-and-set script,
            # so the snapshot need not be read at all. Any removal (a replaced range, a delete,
            # an update) takes the general path below, which re-reads the touched entities.
            insert = "_change_type = 'insert'"
            return self._from_inserts(cdf, insert, state, version, prev, as_of_us)
        snapshot = self._snapshot(version)
        if due:  # rows that were in the future at the last sync and are current now
            ts = F.col(FEATURE_TIMESTAMP)
            lo = F.lit(_dt(state.as_of_us).replace(tzinfo=None)).cast("timestamp")
            hi = F.lit(_dt(as_of_us).replace(tzinfo=None)).cast("timestamp")
            became = snapshot.where((ts > lo) & (ts <= hi)).select(*self.key_names)
            touched = became if touched is None else touched.unionByName(became)
        assert touched is not None
        for k in self.key_names:
            touched = touched.where(F.col(k).isNotNull())
        if self._changed_rows(prev) <= _BROADCAST_ROWS:
            # few changes (the usual case): ship the changed keys to every task instead of
            # shuffling the whole table for the semi join
            touched = F.broadcast(touched)
        rows = snapshot.join(touched, on=self.key_names, how="left_semi")
        # touched entities without any eligible row any more come out with a null row: deleted
        writes = self._writes(rows, state.ns, as_of_us, self.partitions, "D", also_keys=touched)
        w, s, d, fut = _run_writers(writes, self._spec(version))
        if due:  # recompute the next future instant over the whole table
            row = (
                snapshot.where(F.col(FEATURE_TIMESTAMP) > F.lit(_dt(as_of_us).replace(tzinfo=None)))
                .agg(F.min(F.unix_micros(F.col(FEATURE_TIMESTAMP))).alias("m"))
                .first()
            )
            future = None if row is None or row["m"] is None else int(row["m"])
        else:
            future = _min_opt(state.future_us, fut)
        reason = f"changes of Delta versions {prev + 1}..{version}"
        if due:
            reason += " and rows that became current"
        return self._commit_incremental(state, version, as_of_us, future, (w, s, d), reason)

    def _inserted(self, prev: int) -> DataFrame | None:
        """The rows the commits after ``prev`` inserted, read straight from their data files.

        Only when every one of those commits is a plain insert whose added files the log lists
        (:class:`_Commit`) and the table's files read as plain Parquet with its schema
        (:func:`_log_tail`): those files hold exactly the rows the change data feed would
        return as inserts, and reading them skips planning Delta's change-feed scan (0.3-0.5 s
        on the driver, most of a small incremental run). None otherwise: the feed is read.
        """
        from urllib.parse import unquote

        from pyspark.sql.types import StructType

        since = self._since(prev)
        if self.schema is None or not since:
            return None
        files = []
        for c in since:
            if c.files is None:
                return None
            files += [f"{self.path.rstrip('/')}/{unquote(f)}" for f in c.files]
        if not files:
            return None
        try:
            schema = StructType.fromJson(json.loads(self.schema))
            return self.spark.read.schema(schema).parquet(*files)
        except Exception:  # a file gone or unreadable: the change data feed decides
            return None

    def _from_inserts(
        self,
        rows: DataFrame,
        where: str | None,
        state: SyncState,
        version: int,
        prev: int,
        as_of_us: int,
    ) -> SyncResult:
        """Incremental sync when the commits since ``prev`` only inserted ``rows``."""
        assert state.ns is not None
        small = self._changed_rows(prev) <= _SMALL_FEED_ROWS  # one task, no shuffle
        # an entity without a current candidate (all its new rows in the future or beyond the
        # ttl) keeps what Redis has: nothing was removed from the table
        writes = self._writes(
            rows, state.ns, as_of_us, None if small else self.partitions, None, where=where
        )
        w, s, d, fut = _run_writers(writes, self._spec(version))
        future = _min_opt(state.future_us, fut)
        source = "the change data feed" if where else "their data files"
        reason = f"rows inserted by Delta versions {prev + 1}..{version}, read from {source}"
        return self._commit_incremental(state, version, as_of_us, future, (w, s, d), reason)

    def _commit_incremental(
        self,
        state: SyncState,
        version: int,
        as_of_us: int,
        future: int | None,
        counts: tuple[int, int, int],
        reason: str,
    ) -> SyncResult:
        """Advance the sync state (after every partition succeeded) and report the run."""
        self.online.client.hset(
            self.layout.meta_key(self.view.name),
            mapping=self._meta(
                {
                    "version": version,
                    "as_of_us": as_of_us,
                    "future_us": "" if future is None else future,
                    "mode": "incremental",
                }
            ),
        )
        return self._result(
            mode="incremental",
            version=version,
            previous_version=state.version,
            namespace=state.ns,
            keys_written=counts[0],
            keys_skipped=counts[1],
            keys_deleted=counts[2],
            as_of=_dt(as_of_us),
            reason=reason,
        )


def _glob_escape(b: bytes) -> bytes:
    out = bytearray()
    for ch in b:
        if ch in b"*?[]\\":
            out += b"\\"
        out.append(ch)
    return bytes(out)
