"""Driver-side decisions of materialization that need no Spark."""

from __future__ import annotations

from datetime import UTC, datetime

from fstore_spark.offline.storage import all_rows_before

START = datetime(2024, 7, 1, tzinfo=UTC)


def run(version: int, end: str, op: str = "WRITE") -> dict:
    meta = {"fstore_run": True, "end": end, "start": "2024-01-01T00:00:00+00:00"}
    return {"version": version, "operation": op, "metadata": meta}


def other(version: int, op: str) -> dict:
    return {"version": version, "operation": op, "metadata": None}


def test_append_only_when_the_history_proves_no_row_in_the_range() -> None:
    before = "2024-06-30T00:00:00+00:00"
    # newest first, as table_history returns it
    assert all_rows_before([run(1, before), run(0, before)], START)
    assert all_rows_before([other(2, "OPTIMIZE"), run(1, before), run(0, before)], START)
    assert all_rows_before([other(2, "DELETE"), run(0, before)], START)
    # a run that reached the range (a backfill into the future), even an older one
    assert not all_rows_before([run(1, before), run(0, "2024-07-01T00:00:00+00:00")], START)
    assert not all_rows_before([run(1, "2024-12-31T00:00:00+00:00"), run(0, before)], START)
    # a commit that may have added rows outside any run (a manual write, a restore)
    assert not all_rows_before([other(1, "WRITE"), run(0, before)], START)
    assert not all_rows_before([other(1, "RESTORE"), run(0, before)], START)
    # the start of the history was cleaned up, or there is no table
    assert not all_rows_before([run(5, before), run(4, before)], START)
    assert not all_rows_before([], START)
