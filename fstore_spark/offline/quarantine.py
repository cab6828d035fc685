"""Source events a run cannot use: kept aside with the reason, counted, and reported.

Two kinds of events never reach the features, and each run says how many it met:

* *invalid* events: a null join key, or an event time that is null or does not read as a
  timestamp (a string that does not parse): they belong to no entity or no instant;
* *late* events beyond the lateness bound of an incremental run (see
  :mod:`fstore_spark.offline.incremental`).

Both go to one Delta table per view, ``<project>/_quarantine/<view>``: the event's own columns
plus ``_fs_reason``, ``_fs_run_id`` and ``_fs_quarantined_at``. Rows are keyed by the event's
columns, so a rerun (after a crash, or of the same range) adds nothing twice.

Example::

    spark.read.format("delta").load(f"{root}/_quarantine/customer_features") \
        .groupBy("_fs_reason").count().show()
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fstore_spark.lakehouse.writes import insert_new_rows
from fstore_spark.offline.runs import RunContext

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["LATE_REASON", "invalid_event", "quarantine", "quarantine_invalid", "quarantine_path"]

_log = logging.getLogger("fstore_spark.offline")
# how the reason of a late event beyond an incremental run's lateness cap begins
LATE_REASON = "event time older than"


def quarantine_path(project_root: str, view: str) -> str:
    """Where a view's quarantined events are kept (a Delta table)."""
    return f"{project_root}/_quarantine/{view}"


def invalid_event(ctx: RunContext) -> Column:
    """The condition that marks an event with a null join key or an unreadable event time."""
    from pyspark.sql import functions as F

    cond = F.col(ctx.ts).cast("timestamp").isNull()
    for k in ctx.keys:
        cond = cond | F.col(k).isNull()
    return cond


def _invalid_reason(ctx: RunContext) -> Column:
    """Per invalid event, why: its event time, or the first null join key."""
    from pyspark.sql import functions as F

    reason = F.when(
        F.col(ctx.ts).cast("timestamp").isNull(),
        F.lit(f"event time {ctx.ts!r} is null or not a timestamp"),
    )
    for k in ctx.keys:
        reason = reason.when(F.col(k).isNull(), F.lit(f"join key {k!r} is null"))
    return reason


def quarantine(ctx: RunContext, events: DataFrame, run_id: str, reason: str | Column) -> None:
    """Add ``events`` to the view's quarantine table with ``reason``, each event once.

    Keyed by the events' own columns: a rerun after a crash, or a run that lost a race, finds
    them there and adds nothing.
    """
    from pyspark.sql import functions as F

    keys = list(events.columns)
    rows = (
        events.withColumn("_fs_reason", reason if not isinstance(reason, str) else F.lit(reason))
        .withColumn("_fs_run_id", F.lit(run_id))
        .withColumn("_fs_quarantined_at", F.current_timestamp())
    )
    insert_new_rows(ctx.spark, quarantine_path(ctx.root, ctx.view.name), rows, keys)


def quarantine_invalid(
    ctx: RunContext, events: DataFrame, run_id: str, count: int | None = None
) -> int:
    """Quarantine the invalid events among ``events`` (the ones a run reads); how many.

    ``count``: how many there are, when the caller counted them already. Counting reads only
    the files that can hold a null (Delta skips the others by their null counts), so a clean
    source costs next to nothing. A warning names the count and the quarantine table.
    """
    bad = events.where(invalid_event(ctx))
    n = bad.count() if count is None else count
    if n:
        quarantine(ctx, bad, run_id, _invalid_reason(ctx))
        _log.warning(
            "feature view %r: %d source event(s) with a null join key or an unreadable event "
            "time are not in the features; they were quarantined in %s with the reason. Fix: "
            "correct them in the source and backfill their range.",
            ctx.view.name,
            n,
            quarantine_path(ctx.root, ctx.view.name),
        )
    return n
