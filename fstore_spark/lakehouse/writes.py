"""Delta writes that are more than ``df.write``: table creation, MERGE, commit conflicts.

Plain appends and overwrites stay DataFrame writers in the callers (they run anywhere a
DataFrame runs); what needs Delta's own API is here, so that it has one home.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fstore_spark.lakehouse.tables import _delta_table, is_delta_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["MergeSpec", "commit_conflicts", "create_table_if_absent", "insert_new_rows", "merge"]


def commit_conflicts() -> tuple[type[BaseException], ...]:
    """Delta's commit-conflict exception classes (retried by type, never by message)."""
    import delta.exceptions as dx

    return tuple(getattr(dx, name) for name in dx.__all__)


def create_table_if_absent(
    spark: SparkSession, path: str, schema: StructType, properties: Mapping[str, str]
) -> None:
    """Create an empty Delta table at ``path`` unless one exists (safe against a racing writer)."""
    if is_delta_table(spark, path):
        return
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    for key, value in properties.items():
        builder = builder.property(key, value)
    try:
        builder.execute()
    except commit_conflicts():
        # another process created it at the same time: fine, it exists now
        if not is_delta_table(spark, path):
            raise


@dataclass(frozen=True)
class MergeSpec:
    """The clauses of a MERGE of a source (alias ``s``) into a target (alias ``t``).

    Each clause is ``(condition, columns)``; a ``None`` condition applies to every row the
    clause sees, ``columns`` maps target columns to SQL expressions over ``s``.
    """

    on: str
    delete_when: str | None = None
    update: tuple[str | None, Mapping[str, str]] | None = None
    insert: tuple[str | None, Mapping[str, str]] | None = None
    insert_all: bool = False


def merge(spark: SparkSession, path: str, source: DataFrame, spec: MergeSpec) -> DataFrame:
    """MERGE ``source`` into the Delta table at ``path``; returns Delta's metrics row frame."""
    builder = _delta_table(spark, path, False).alias("t").merge(source.alias("s"), spec.on)
    if spec.delete_when is not None:
        builder = builder.whenMatchedDelete(condition=spec.delete_when)
    if spec.update is not None:
        cond, cols = spec.update
        builder = builder.whenMatchedUpdate(condition=cond, set=dict(cols))
    if spec.insert is not None:
        cond, cols = spec.insert
        builder = builder.whenNotMatchedInsert(condition=cond, values=dict(cols))
    if spec.insert_all:
        builder = builder.whenNotMatchedInsertAll()
    result: DataFrame = builder.execute()
    return result


def insert_new_rows(spark: SparkSession, path: str, rows: DataFrame, keys: list[str]) -> None:
    """Insert the rows whose ``keys`` are not in the table yet (null-safe), creating it if absent.

    A rerun with the same rows inserts nothing: the log it writes is idempotent.
    """
    if not is_delta_table(spark, path):
        rows.limit(0).write.format("delta").mode("append").save(path)
    on = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in keys)
    merge(spark, path, rows, MergeSpec(on=on, insert_all=True))
