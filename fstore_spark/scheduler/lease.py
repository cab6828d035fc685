"""One scheduler at a time: a lease row in a Delta table, taken and renewed with MERGE.

The row says who holds the lease and until when. A scheduler takes it when it is free or
expired, or renews it when it holds it; two schedulers trying at once both MERGE into the
same file, Delta lets one commit and the other fails with a conflict, so exactly one holds
it. A killed holder stops renewing: its lease expires and the next scheduler takes over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fstore_spark.lakehouse.tables import is_delta_table, read_delta, save_delta
from fstore_spark.lakehouse.writes import MergeSpec, is_commit_conflict, merge

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["Lease"]

_SCHEMA = "name string, holder string, expires_at timestamp"
_NAME = "scheduler"


class Lease:
    """The scheduler lease kept at ``path``."""

    def __init__(self, spark: SparkSession, path: str, holder: str, ttl: timedelta) -> None:
        self._spark = spark
        self.path = path
        self.holder = holder
        self.ttl = ttl

    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease until ``now + ttl``; ``False`` when another holds it.

        Only a free or expired lease is written, or one's own past a third of its life, so a
        waiting scheduler reads and never conflicts with the holder's renewals.
        """
        current = self._current()
        if current is not None:
            holder, expires = current
            if holder != self.holder and expires > now:
                return False
            if holder == self.holder and expires - now > self.ttl * 2 / 3:
                return True
        row = self._spark.createDataFrame(
            [(_NAME, self.holder, now + self.ttl, now)],
            _SCHEMA + ", now timestamp",
        )
        take = "t.holder = s.holder OR t.expires_at <= s.now"
        cols = {"name": "s.name", "holder": "s.holder", "expires_at": "s.expires_at"}
        if current is None and not is_delta_table(self._spark, self.path):
            try:
                save_delta(row.drop("now").limit(0).write.format("delta").mode("append"), self.path)
            except Exception as exc:  # another scheduler created it first
                if not is_commit_conflict(exc) and not is_delta_table(self._spark, self.path):
                    raise
        try:
            merge(
                self._spark,
                self.path,
                row,
                MergeSpec(on="t.name = s.name", update=(take, cols), insert=(None, cols)),
            )
        except Exception as exc:
            if is_commit_conflict(exc):
                return False
            raise
        return self.held_by() == self.holder

    def held_by(self) -> str | None:
        """Who holds the lease row (``None``: nobody ever took it); it may have expired."""
        current = self._current()
        return None if current is None else current[0]

    def _current(self) -> tuple[str, datetime] | None:
        """The lease row's holder and expiry (UTC), or ``None`` before the first take."""
        if not is_delta_table(self._spark, self.path):
            return None
        rows = read_delta(self._spark, self.path).where(f"name = '{_NAME}'").collect()
        if len(rows) != 1:
            return None
        return str(rows[0]["holder"]), rows[0]["expires_at"].astimezone(UTC)

    def release(self) -> None:
        """Give the lease up (on a clean stop), so another scheduler need not wait."""
        row = self._spark.createDataFrame([(_NAME, self.holder)], "name string, holder string")
        cols = {"expires_at": "timestamp'1970-01-01 00:00:00'"}
        try:
            merge(
                self._spark,
                self.path,
                row,
                MergeSpec(on="t.name = s.name AND t.holder = s.holder", update=(None, cols)),
            )
        except Exception as exc:
            if not is_commit_conflict(exc):
                raise
