"""What the recent commits of a Delta table did: rows written, rows removed, files added.

Consumers that follow a table commit by commit (the online sync) need, per commit since some
version: how many rows it wrote, whether it removed or changed any (anything but a plain
insert), and, for plain inserts, the data files holding exactly the inserted rows. This module
answers with plain data (:class:`Commit`), from one of two sources:

* :func:`recent_commit_summaries` -- Delta's history (``DESCRIBE HISTORY``; builds a DataFrame,
  ~0.2-0.3 s on a small machine), always available;
* :func:`commits_since` -- the newest commit files of the Delta log read directly (a few small
  reads, much faster), when the session can reach the table's storage through the JVM.

It also reads what those commits changed: the change data feed (:func:`read_change_feed`) or,
for plain inserts, their added files (:func:`read_added_rows`).

Example::

    tail = commits_since(spark, path, 12, limit=50)
    commits = tail.commits if tail is not None else recent_commit_summaries(spark, path, 50)
    latest = commits[0].version
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from fstore_spark.lakehouse.names import resolve
from fstore_spark.lakehouse.tables import read_delta, recent_commits

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "Commit",
    "CommitLogTail",
    "commits_since",
    "read_added_rows",
    "read_change_feed",
    "recent_commit_summaries",
]

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

# reader features that do not change how a data file's rows are read (deletion vectors are
# refused per file: an add with one counts as a removal)
_PLAIN_READER_FEATURES = frozenset(
    {"timestampNtz", "deletionVectors", "v2Checkpoint", "vacuumProtocolCheck"}
)


class Commit(NamedTuple):
    """One commit of a table, as a follower of the table needs it.

    Attributes:
        version: Delta version.
        rows: Rows the commit wrote (from its metrics).
        removes: Whether it removed or changed rows (anything but a plain insert).
        files: The data files it added, as written in the log (relative to the table, URL
            encoded), when they are plain files whose rows are exactly what it inserted;
            None when unknown (read from the history) or not plain (partition values,
            absolute paths, metadata or protocol changes).
    """

    version: int
    rows: int
    removes: bool
    files: tuple[str, ...] | None = None


class CommitLogTail(NamedTuple):
    """What :func:`commits_since` read: the new commits, and the schema to read their files.

    Attributes:
        commits: The commits from the asked version to the latest, newest first.
        schema: The table's schema (Spark JSON) when its data files read as plain Parquet
            (no partition columns, no column mapping, no reader feature that changes how a
            file is read); None otherwise.
    """

    commits: list[Commit]
    schema: str | None


def _summary(
    version: int,
    operation: str | None,
    metrics: dict[str, Any],
    removes: bool = False,
    files: tuple[str, ...] | None = None,
) -> Commit:
    """:class:`Commit` of one commit from its ``commitInfo``.

    A commit "removed rows" unless it is a plain write whose metrics say no file was removed
    and no row deleted (an append, or a ``replaceWhere`` that matched nothing): anything else
    (delete, merge, update, an overwrite that replaced rows, an unknown operation) counts.
    ``removes`` adds what the commit's actions say (see :func:`_parse_commit`).
    """
    written = sum(int(v) for k, v in metrics.items() if k in _ROW_METRICS)
    removes = (
        removes
        or operation not in ("WRITE", "STREAMING UPDATE")
        or any(int(metrics.get(k, "0") or 0) > 0 for k in _REMOVAL_METRICS)
    )
    return Commit(version, written, removes, files)


def recent_commit_summaries(spark: SparkSession, path: str, limit: int) -> list[Commit]:
    """The newest ``limit`` commits of the Delta table at ``path``, newest first.

    Read from the table's history, so ``files`` is always None. The table must exist.
    """
    rows = recent_commits(spark, path, limit)
    out = [_summary(c["version"], c["operation"], c["operationMetrics"]) for c in rows]
    return sorted(out, reverse=True)


def _is_plain_file(add: dict[str, Any]) -> bool:
    """Whether an ``add`` action's file is a plain data file relative to the table."""
    rel = str(add.get("path", ""))
    return (
        bool(rel) and ":" not in rel and not rel.startswith("/") and not add.get("partitionValues")
    )


def _parse_commit(version: int, text: str) -> Commit:
    """:class:`Commit` of one commit file's actions (JSON lines).

    A commit also counts as removing rows when its actions say so: a ``remove`` that changes
    data, a ``cdc`` file (written by updates, deletes and merges only), an ``add`` with a
    deletion vector. Its files are listed only when every data-changing ``add`` is plain and
    the commit changes neither metadata nor protocol.
    """
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
                plain = plain and _is_plain_file(add)
                files.append(str(add.get("path", "")))
        elif "metaData" in action or "protocol" in action:
            plain = False
    return _summary(version, operation, metrics, removes, tuple(files) if plain else None)


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


class _LogFiles:
    """Small text files of a table's ``_delta_log``, read through Hadoop's FileSystem.

    The session's Hadoop configuration reaches any storage Spark reads (local, HDFS, S3,
    ABFS...). Needs the classic session's JVM gateway: constructing it fails under Spark Connect.
    """

    def __init__(self, spark: SparkSession, path: str) -> None:
        """Resolve the log directory and its FileSystem (no read yet)."""
        jvm: Any = spark._jvm  # type: ignore[attr-defined]
        hconf = spark._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        self._jvm = jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        self._log = self._path(path, "_delta_log")
        self._fs = self._log.getFileSystem(hconf)

    def text(self, name: str) -> str | None:
        """The UTF-8 text of a file of the log, or None when it does not exist."""
        f = self._path(self._log, name)
        if not self._fs.exists(f):
            return None
        stream = self._fs.open(f)
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def has_entries(self, sub: str) -> bool:
        """Whether a subdirectory of the log exists and is not empty."""
        d = self._path(self._log, sub)
        return bool(self._fs.exists(d) and len(self._fs.listStatus(d)) > 0)


def commits_since(
    spark: SparkSession, path: str, version: int, *, limit: int
) -> CommitLogTail | None:
    """The commits ``version``..latest of the table at ``path``, read from the Delta log itself.

    The Delta protocol keeps each commit in ``_delta_log/<version, 20 digits>.json``, one action
    per line, versions contiguous, the newest ones never cleaned up. Reading the files from
    ``version`` on until one is missing gives the latest version and each new commit's
    ``commitInfo`` (operation, metrics) and actions in a few small reads.

    The latest version's checksum file (``<version>.crc``, written by Delta after each commit)
    holds the table's metadata and protocol. When they say the data files are plain Parquet
    whose columns are the table's, the schema comes back with the commits: the rows a commit of
    inserts added are then exactly its added files (:func:`read_added_rows`), which is much
    cheaper to read than planning Delta's change-feed scan.

    Returns:
        The commits newest first, with the schema or None; None when this cannot answer and
        the caller should use :func:`recent_commit_summaries` instead: no JVM (Spark Connect,
        restricted clusters), a catalog table, commit ``version`` gone (log cleanup, the table
        was replaced), commits coordinated outside the log (files in ``_delta_log/_commits``
        or ``_staged_commits``), more than ``limit`` new commits, or any read error.
    """
    if resolve(path).by_name:
        return None  # a catalog table: its history is asked of the catalog, not its files
    try:
        log = _LogFiles(spark, path)
        out: list[Commit] = []
        v = version
        while (commit := log.text(f"{v:020d}.json")) is not None:
            if len(out) > limit:
                return None
            out.append(_parse_commit(v, commit))
            v += 1
        if not out:
            return None
        if any(log.has_entries(sub) for sub in ("_commits", "_staged_commits")):
            return None  # Delta creates the latter, empty
        crc = log.text(f"{v - 1:020d}.crc")
    except Exception:  # Spark Connect, no access to the JVM, an unreadable file
        return None
    return CommitLogTail(sorted(out, reverse=True), _plain_schema(crc))


def read_change_feed(
    spark: SparkSession, path: str, starting_version: int, ending_version: int
) -> DataFrame:
    """The change data feed of the table at ``path``, versions inclusive at both ends (lazy).

    Rows carry the table's columns plus ``_change_type``, ``_commit_version`` and
    ``_commit_timestamp``.

    Raises:
        pyspark.errors.AnalysisException: the feed is not enabled for that range, or its
            files were vacuumed.
    """
    options = {
        "readChangeFeed": "true",
        "startingVersion": starting_version,
        "endingVersion": ending_version,
    }
    return read_delta(spark, path, options=options)


def read_added_rows(
    spark: SparkSession, path: str, commits: Sequence[Commit], schema: str | None
) -> DataFrame | None:
    """The rows plain-insert ``commits`` added, read straight from their data files (lazy).

    Only when every commit lists its files (:attr:`Commit.files`) and ``schema`` (from
    :func:`commits_since`) says the files read as plain Parquet: those files then hold exactly
    the rows the change data feed would return as inserts. None otherwise (also when there are
    no files, or one cannot be read): the caller reads the feed.
    """
    from urllib.parse import unquote

    from pyspark.sql.types import StructType

    if schema is None or not commits:
        return None
    files = []
    for c in commits:
        if c.files is None:
            return None
        files += [f"{path.rstrip('/')}/{unquote(f)}" for f in c.files]
    if not files:
        return None
    try:
        return spark.read.schema(StructType.fromJson(json.loads(schema))).parquet(*files)
    except Exception:  # a file gone or unreadable: the change data feed decides
        return None
