"""Feature tables of a store: backfill and incremental materialization, versions and diffs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from fstore_spark.core import parse_duration
from fstore_spark.errors import MaterializationError
from fstore_spark.lakehouse.writes import is_commit_conflict
from fstore_spark.offline.materialization import (
    MaterializationResult,
    backfill,
    incremental,
    replay_quarantine,
)
from fstore_spark.offline.versions import VersionDiff, diff_versions, list_versions
from fstore_spark.registry.context import StoreContext

__all__ = ["FeatureTables"]


class FeatureTables:
    """Computes views into their Delta feature tables and compares their versions."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def _view(self, name: str) -> tuple[Any, list[str], int]:
        """A view, its join keys and its registry version, from one registry read."""
        snap = self._ctx.latest()
        entry = snap.entry("feature_view", name)
        if entry is None:
            self._ctx.registry.get("feature_view", name)  # raises NotFoundError, known views
        assert entry is not None
        return entry.obj, snap.join_keys(entry.obj), entry.version

    def backfill(
        self, view: str, start: datetime | str, end: datetime | str
    ) -> MaterializationResult:
        """Recompute ``start <= feature_timestamp <= end`` of a view (one Delta commit)."""
        fv, keys, version = self._view(view)
        self._ctx.check_write([view], "materialize")
        with _conflicts_typed(view):
            return backfill(
                self._ctx.spark,
                self._ctx.root,
                fv,
                keys,
                start,
                end,
                view_version=version,
                by=self._ctx.identity,
            )

    def materialize(
        self, view: str | None, start: datetime | str | None, end: datetime | str | None
    ) -> MaterializationResult | list[MaterializationResult]:
        """Backfill one view, or every registered view (by name, one commit each).

        Raises:
            MaterializationError: no range.
        """
        if start is None or end is None:
            raise MaterializationError(
                "materialize needs a range: start and end (or start_date and end_date)."
            )
        if view is not None:
            return self.backfill(view, start, end)
        return [self.backfill(name, start, end) for name in sorted(self._ctx.latest().views)]

    def incremental(
        self, view: str, end: datetime | str | None, lateness: timedelta | str | None
    ) -> MaterializationResult:
        """Bring a view's table up to ``end`` (default now), touching only new data."""
        fv, keys, version = self._view(view)
        self._ctx.check_write([view], "materialize")
        late = None if lateness is None else parse_duration(lateness)
        with _conflicts_typed(view):
            return incremental(
                self._ctx.spark,
                self._ctx.root,
                fv,
                keys,
                end=end,
                lateness=late,
                view_version=version,
                by=self._ctx.identity,
            )

    def replay_quarantine(self, view: str) -> MaterializationResult | None:
        """Take a view's quarantined late events into its features (None: there are none)."""
        fv, keys, version = self._view(view)
        self._ctx.check_write([view], "materialize")
        with _conflicts_typed(view):
            return replay_quarantine(
                self._ctx.spark,
                self._ctx.root,
                fv,
                keys,
                view_version=version,
                by=self._ctx.identity,
            )

    def versions(self, view: str) -> list[dict[str, Any]]:
        """Delta versions of a view's feature table, newest first, with run metadata."""
        return list_versions(self._ctx.spark, self._ctx.root, view)

    def diff(self, view: str, v1: int, v2: int) -> VersionDiff:
        """Rows added / changed / removed between two Delta versions of a view's table."""
        _, keys, _ = self._view(view)
        return diff_versions(self._ctx.spark, self._ctx.root, view, keys, v1, v2)


@contextmanager
def _conflicts_typed(view: str) -> Iterator[None]:
    """Another run of the view committed first: a typed error that says what to do."""
    try:
        yield
    except Exception as exc:
        if not is_commit_conflict(exc):
            raise
        raise MaterializationError(
            f"feature view {view!r}: another run of it committed to its tables while this one "
            f"ran, and Delta refused this run's commit ({type(exc).__name__}). Fix: rerun it "
            "once the other run is done: a backfill is idempotent, and an incremental run "
            "continues after what the other run wrote."
        ) from exc
