"""One sync run's context: the view, its feature table's recent commits, and shared steps.

The two modes (:mod:`fstore_spark.online.sync_full`, :mod:`fstore_spark.online.sync_incremental`)
work on a :class:`SyncJob`: it knows where the feature table is, which commits happened since
the last sync (read once at the start of the run), and how to turn rows into writes to a
namespace, run them, record the state and report the run.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import FeatureView
from fstore_spark.errors import NotFoundError
from fstore_spark.lakehouse.commits import (
    Commit,
    commits_since,
    read_added_rows,
    recent_commit_summaries,
)
from fstore_spark.lakehouse.tables import feature_table_path, is_delta_table, read_feature_table
from fstore_spark.online.client import OnlineStore
from fstore_spark.online.layout import glob_escape
from fstore_spark.online.sync_state import SyncResult
from fstore_spark.online.sync_writes import WriteTarget, parallelism, writer_input
from fstore_spark.online.writer import WriterSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["HISTORY", "SyncJob", "min_opt", "require_table"]

HISTORY = 50
"""Recent commits read at the start of a run (latest version + change size estimate)."""

_UNLINK_BATCH = 10_000


def require_table(spark: SparkSession, path: str, view: str) -> None:
    """Check that the view has a feature table.

    Raises:
        NotFoundError: there is no Delta table at ``path`` yet.
    """
    if not is_delta_table(spark, path):
        raise NotFoundError(
            f"feature view {view!r} has no feature table at {path}. Fix: materialize it first "
            "(store.materialize / `fstore materialize`), then sync."
        )


def min_opt(*values: int | None) -> int | None:
    """The smallest of the values that are not None (None when there is none)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


class SyncJob:
    """One sync run of a view: its context and the steps both modes share.

    Args:
        spark: Session.
        project_root: Project root in the lakehouse.
        view: The feature view.
        join_keys: ``(join key, dtype)`` in declared order.
        online: The online store.
        expire_after: Redis expiry after each value's feature timestamp (None: none).
        partitions: Writer tasks of large writes (default: the cluster's parallelism).
        fail_after: Test hook of the writers (``WriterSpec.fail_after_partitions``).
    """

    def __init__(
        self,
        spark: SparkSession,
        project_root: str,
        view: FeatureView,
        join_keys: list[tuple[str, str]],
        online: OnlineStore,
        expire_after: timedelta | None,
        partitions: int | None,
        fail_after: int | None = None,
    ) -> None:
        """Set up the run; nothing is read yet (see :meth:`load_commits`)."""
        self.spark = spark
        self.root = project_root
        self.view = view
        self.keys = tuple(join_keys)
        self.key_names = [k for k, _ in join_keys]
        self.features = list(view.feature_names)
        self.online = online
        self.layout = online.layout
        self.meta_key = online.layout.meta_key(view.name)
        self.expire_after = expire_after
        self.partitions = partitions or parallelism(spark)
        self.fail_after = fail_after
        self.by: str | None = None  # who runs it, recorded in the sync state
        self.commits: list[Commit] = []  # newest first
        self.schema: str | None = None  # the table's, when its files read as plain Parquet
        self.path = feature_table_path(project_root, view)

    # ------------------------------------------------------------------ the table

    def load_commits(self, since: int | None) -> int:
        """Read the table's recent commits once; return its latest version.

        ``since``: the last synced version when the run will likely be incremental. Then the
        commits since it are read straight from the Delta log's newest commit files (a few
        small reads: the usual run's fast path), which also tells whether their added files can
        be read directly; otherwise, or when the log cannot answer, from the table's history.
        """
        tail = None if since is None else commits_since(self.spark, self.path, since, limit=HISTORY)
        if tail is not None:
            self.commits, self.schema = tail.commits, tail.schema
        else:
            self.commits = recent_commit_summaries(self.spark, self.path, HISTORY)
            self.schema = None
        return self.commits[0].version

    def latest_version(self) -> int:
        """The table's current version, read from its history now.

        Raises:
            NotFoundError: the table is gone.
        """
        require_table(self.spark, self.path, self.view.name)
        return recent_commit_summaries(self.spark, self.path, HISTORY)[0].version

    def commits_after(self, prev: int) -> list[Commit] | None:
        """The commits after ``prev`` (None when not all of them were read)."""
        if not self.commits or min(c.version for c in self.commits) > prev + 1:
            return None
        return [c for c in self.commits if c.version > prev]

    def changed_rows(self, prev: int) -> float:
        """Rows the commits after ``prev`` wrote (infinite when not all of them were read)."""
        since = self.commits_after(prev)
        return float("inf") if since is None else float(sum(c.rows for c in since))

    def removed_since(self, prev: int) -> bool:
        """Whether a commit after ``prev`` removed rows (true when not all of them were read)."""
        since = self.commits_after(prev)
        return since is None or any(c.removes for c in since)

    def inserted_rows(self, prev: int) -> DataFrame | None:
        """The rows the commits after ``prev`` inserted, read straight from their data files.

        Only when every one of those commits is a plain insert whose added files the log lists
        and the table's files read as plain Parquet: those files hold exactly the rows the
        change data feed would return as inserts, and reading them skips planning Delta's
        change-feed scan (0.3-0.5 s on the driver, most of a small incremental run). None
        otherwise: the feed is read.
        """
        since = self.commits_after(prev)
        if not since:
            return None
        return read_added_rows(self.spark, self.path, since, self.schema)

    def snapshot(self, version: int) -> DataFrame:
        """The feature table as of ``version`` (lazy).

        Raises:
            NotFoundError: that version cannot be read (vacuumed).
        """
        return read_feature_table(self.spark, self.root, self.view, as_of_version=version)

    # ------------------------------------------------------------------ writing

    def spec(self, version: int) -> WriterSpec:
        """What the executors need to write values of ``version``.

        Its connection settings are
        :meth:`~fstore_spark.online.connection.ConnectionSpec.for_executors`: without
        ``online_store.ship_password`` they hold no password.
        """
        base = self.layout.view_base(self.view.name)
        counter = base + b"_test_partitions:" + uuid.uuid4().hex.encode()
        return WriterSpec(
            conn=self.online.conn_spec.for_executors(),
            version=version,
            features=tuple(self.features),
            batch_size=self.online.config.batch_size,
            fail_after_partitions=self.fail_after,
            fail_counter_key=counter,
        )

    def writes(
        self,
        rows: DataFrame,
        ns: int,
        as_of_us: int,
        partitions: int | None,
        op_when_absent: str | None,
        also_keys: DataFrame | None = None,
        where: str | None = None,
    ) -> DataFrame:
        """The writer input of ``rows`` into namespace ``ns`` (see :func:`writer_input`)."""
        target = WriteTarget(
            prefix=self.layout.data_prefix(self.view.name, ns),
            keys=self.keys,
            features=tuple(self.features),
            ttl=self.view.ttl,
            expire_after=self.expire_after,
        )
        return writer_input(
            self.spark, rows, target, as_of_us, partitions, op_when_absent, also_keys, where
        )

    def unlink_ns(self, ns: int) -> int:
        """Remove every key of an old namespace (SCAN + UNLINK in batches, from the driver)."""
        prefix = self.layout.data_prefix(self.view.name, ns)
        pattern = glob_escape(prefix) + b"*"
        client = self.online.client
        n = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=_UNLINK_BATCH):
            batch.append(key)
            if len(batch) >= _UNLINK_BATCH:
                n += int(client.unlink(*batch))
                batch.clear()
        if batch:
            n += int(client.unlink(*batch))
        return n

    # ------------------------------------------------------------------ reporting

    def meta(self, extra: dict[str, Any]) -> Any:
        """Fields of the ``_meta`` hash to record: ``extra``, when the sync finished, by whom."""
        return {"synced_at_us": time.time_ns() // 1000, "synced_by": self.by or "", **extra}

    def result(self, **kw: Any) -> SyncResult:
        """The run's :class:`SyncResult` (no keys unlinked, not resumed, 0 s unless given)."""
        base: dict[str, Any] = {
            "view": self.view.name,
            "keys_unlinked": 0,
            "resumed": False,
            "seconds": 0.0,
        }
        base.update(kw)
        return SyncResult(**base)
