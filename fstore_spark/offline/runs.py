"""What every materialization run shares: its context, its result, and instant arithmetic.

A run (:mod:`fstore_spark.offline.backfill`, :mod:`fstore_spark.offline.incremental`) builds one
:class:`RunContext` — session, locations, the view and its registry version and definition
hash, the time spent per step — and returns one :class:`MaterializationResult`. Instants are
handled as aware UTC datetimes on the driver and as epoch microseconds in Spark columns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import FeatureView, definition_hash
from fstore_spark.errors import MaterializationError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    feature_table_path,
    read_source,
    source_version,
    tile_table_path,
    to_utc,
)
from fstore_spark.offline.plan import T

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from fstore_spark.offline.storage import Written

__all__ = [
    "MaterializationResult",
    "RunContext",
    "align_floor",
    "tile_end",
    "feature_rows",
    "from_us",
    "lit_ts",
    "to_us",
]

_log = logging.getLogger("fstore_spark.offline")
# what each step of a run does, for the log
_STEPS = {
    "source": "reading the source",
    "tiles": "rolling events up into tiles",
    "features": "computing and writing the feature rows",
    "changes": "counting the rows added, changed and removed",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MaterializationResult:
    """What a run did.

    Attributes:
        run_id: Unique id of the run (also in the commit metadata).
        view: Feature view name.
        mode: ``backfill`` or ``incremental``.
        start: First feature timestamp rewritten (UTC).
        end: Last feature timestamp covered (UTC).
        rows_written: Feature rows the run wrote (rows Delta copied unchanged from the files
            it rewrote are not counted).
        rows_added: Rows at a (keys, feature timestamp) the table did not have.
        rows_changed: Rows that replaced one with at least one different feature value (the
            rows written minus these and the added ones were rewritten unchanged).
        rows_removed: Rows in the run's range that it did not write again.
            (``rows_added``/``rows_changed``/``rows_removed`` are ``None`` when the feature
            table's change data feed was turned off.)
        table_version: Delta version of the feature table after the run (``None`` if nothing
            was written).
        source_version: Delta version of the source that was read (``None`` for parquet).
        late_events_quarantined: Events older than the lateness bound (change feed only).
        invalid_events_quarantined: Events the run read with a null join key or an event time
            that is null or not a timestamp (see :mod:`fstore_spark.offline.quarantine`).
        seconds: Wall-clock duration.
        steps: Seconds per step, where the time went: ``source`` (reading the source's
            version, finding new events), ``tiles`` (rolling events up into tiles and writing
            them), ``features`` (computing the feature rows from the tiles and writing them:
            one step, Spark computes while it writes), ``changes`` (counting the rows added,
            changed and removed, from the commit's change data feed).
    """

    run_id: str
    view: str
    mode: str
    start: datetime
    end: datetime
    rows_written: int
    rows_added: int | None
    rows_changed: int | None
    rows_removed: int | None
    table_version: int | None
    source_version: int | None
    late_events_quarantined: int
    invalid_events_quarantined: int
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        ctx: RunContext,
        run_id: str,
        mode: str,
        span: tuple[datetime, datetime],
        written: Written,
        src_version: int | None,
        quarantined: tuple[int, int],
        t0: float,
    ) -> MaterializationResult:
        """The result of a run from what it did.

        ``span`` is its (start, end), ``written`` what its commit did, ``quarantined`` the
        (late, invalid) events it set aside, ``t0`` its ``time.perf_counter()`` at start.
        """
        late, invalid = quarantined
        result = cls(
            run_id=run_id,
            view=ctx.view.name,
            mode=mode,
            start=span[0],
            end=span[1],
            rows_written=written.rows,
            rows_added=written.added,
            rows_changed=written.changed,
            rows_removed=written.removed,
            table_version=written.version,
            source_version=src_version,
            late_events_quarantined=late,
            invalid_events_quarantined=invalid,
            seconds=time.perf_counter() - t0,
            steps=dict(ctx.steps),
        )
        result.log()
        return result

    def log(self) -> None:
        """Log what the run wrote (``fstore_spark.offline``, INFO; quarantined rows: WARNING)."""
        changes = (
            ""
            if self.rows_added is None
            else f" ({self.rows_added:,} added, {self.rows_changed:,} changed, "
            f"{self.rows_removed:,} removed)"
        )
        _log.info(
            "%s: %s %s .. %s: %s rows written%s, Delta version %s, %.1f s",
            self.view,
            self.mode,
            f"{self.start:%Y-%m-%d %H:%M}",
            f"{self.end:%Y-%m-%d %H:%M}",
            f"{self.rows_written:,}",
            changes,
            self.table_version,
            self.seconds,
        )
        for count, kind in (
            (self.late_events_quarantined, "late"),
            (self.invalid_events_quarantined, "invalid"),
        ):
            if count:
                _log.warning(
                    "%s: %s %s event(s) quarantined (see `fstore_spark.offline.quarantine`)",
                    self.view,
                    f"{count:,}",
                    kind,
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d


def to_us(ts: datetime) -> int:
    """An instant as epoch microseconds (naive datetimes are taken as UTC)."""
    ts = to_utc(ts)
    return int((ts - _EPOCH) / timedelta(microseconds=1))


def from_us(us: int) -> datetime:
    """Epoch microseconds as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def lit_ts(ts: datetime) -> Column:
    """An instant as a Spark timestamp literal (the session time zone is UTC)."""
    from pyspark.sql import functions as F

    return F.lit(to_utc(ts).replace(tzinfo=None)).cast("timestamp")


def align_floor(ts: datetime, cadence: timedelta) -> datetime:
    """The latest cadence-aligned instant at or before ``ts``."""
    cad = int(cadence / timedelta(microseconds=1))
    return from_us((to_us(ts) // cad) * cad)


def tile_end(ts: datetime, cadence: timedelta) -> datetime:
    """The end of the tile an event at ``ts`` belongs to: the first instant at or after it."""
    return align_floor(ts - timedelta(microseconds=1), cadence) + cadence


class RunContext:
    """Everything a run needs: session, paths, the view and its registry version/hash.

    Attributes:
        steps: Seconds spent per named step so far (see :meth:`step`).
    """

    def __init__(
        self,
        spark: SparkSession,
        project_root: str,
        view: FeatureView,
        join_keys: list[str],
        view_version: int | None,
        *,
        by: str | None = None,
    ) -> None:
        self.spark = spark
        self.by = by
        self.root = project_root
        self.view = view
        self.keys = join_keys
        self.view_version = view_version
        self.def_hash = definition_hash(view)
        self.table = feature_table_path(project_root, view)
        self.tiles = tile_table_path(project_root, view)
        self.source = view.source
        self.ts = view.source.timestamp_column
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the wall-clock time of the block to ``steps[name]``; log the step (INFO)."""
        t0 = time.perf_counter()
        _log.info("%s: %s ...", self.view.name, _STEPS.get(name, name))
        try:
            yield
        finally:
            seconds = time.perf_counter() - t0
            self.steps[name] = self.steps.get(name, 0.0) + seconds
            _log.info("%s: %s done, %.1f s", self.view.name, name, seconds)

    def read_source(self) -> tuple[DataFrame, int | None]:
        """The source as of its current Delta version, and that version (lazy).

        Raises:
            MaterializationError: the source lacks a join key column.
        """
        with self.step("source"):
            version = source_version(self.spark, self.source, self.root)
            df = read_source(self.spark, self.source, self.root, as_of_version=version)
        missing = [k for k in self.keys if k not in df.columns]
        if missing:
            raise MaterializationError(
                f"feature view {self.view.name!r}: source {self.source.name!r} lacks join key "
                f"column(s) {missing}; columns: {', '.join(df.columns)}."
            )
        return df, version

    def metadata(
        self,
        run_id: str,
        mode: str,
        start: datetime,
        end: datetime,
        src_version: int | None,
        extra: dict[str, Any],
    ) -> str:
        """The commit's ``userMetadata``: the run, the definition and the source version."""
        return json.dumps(
            {
                "fstore_run": True,
                "run_id": run_id,
                "mode": mode,
                "view": self.view.name,
                "view_version": self.view_version,
                "definition_hash": self.def_hash,
                "source": self.source.name,
                "source_version": src_version,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "by": self.by,
                **extra,
            },
            sort_keys=True,
        )


def feature_rows(ctx: RunContext, computed: DataFrame) -> DataFrame:
    """Engine output (keys, ``_fs_t`` in micros, features) as feature table rows."""
    from pyspark.sql import functions as F

    return computed.select(
        *ctx.keys,
        F.timestamp_micros(F.col(T)).alias(FEATURE_TIMESTAMP),
        *ctx.view.feature_names,
    )
