"""Delta writes that are more than ``df.write``: table creation, MERGE, commit conflicts.

Plain appends and overwrites stay DataFrame writers in the callers (they run anywhere a
DataFrame runs); what needs more is here, in Spark SQL (``CREATE TABLE``, ``MERGE INTO``), so
that it has one home and runs the same on a classic session and on Spark Connect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fstore_spark.lakehouse.tables import is_delta_table, save_delta, table_ref

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "MergeSpec",
    "create_table_if_absent",
    "insert_new_rows",
    "is_commit_conflict",
    "merge",
]

# Delta's optimistic-concurrency failures, by error condition (the same on classic and Connect)
_CONFLICTS = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


def _delta_exception_types() -> tuple[type[BaseException], ...]:
    """Delta's conflict exception types; importing them makes a classic session raise them.

    ``delta.exceptions`` installs the conversion of Delta's JVM exceptions into these Python
    types (without it, a classic session raises a bare Py4J error); a Connect client needs
    none (Spark Connect carries the error condition).
    """
    try:
        import delta.exceptions as dx
    except ImportError:  # a Connect client without delta-spark
        return ()
    return tuple(getattr(dx, name) for name in dx.__all__)


def is_commit_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is Delta refusing a commit because another writer committed first.

    Decided by Delta's exception types on a classic session and by the error condition that
    Spark Connect carries, never by the message text.
    """
    if isinstance(exc, _delta_exception_types()):
        return True
    condition = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    name = condition() if callable(condition) else None
    return bool(name) and str(name).startswith(_CONFLICTS)


def _column_ddl(schema: StructType) -> str:
    return ", ".join(
        f"`{f.name}` {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}"
        for f in schema.fields
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table_if_absent(
    spark: SparkSession, path: str, schema: StructType, properties: Mapping[str, str]
) -> None:
    """Create an empty Delta table at ``path`` unless one exists (safe against a racing writer)."""
    if is_delta_table(spark, path):
        return
    _delta_exception_types()
    props = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in properties.items())
    query = f"CREATE TABLE IF NOT EXISTS {table_ref(path)} ({_column_ddl(schema)}) USING DELTA"
    if props:
        query += f" TBLPROPERTIES ({props})"
    try:
        spark.sql(query)
    except Exception as exc:
        # another process created it at the same time: fine, it exists now
        if not (is_commit_conflict(exc) and is_delta_table(spark, path)):
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


def merge(
    spark: SparkSession,
    path: str,
    source: DataFrame,
    spec: MergeSpec,
    *,
    metadata: str | None = None,
) -> DataFrame:
    """MERGE ``source`` into the Delta table at ``path``; returns Delta's metrics row frame.

    The metrics frame has ``num_affected_rows``, ``num_updated_rows``, ``num_deleted_rows`` and
    ``num_inserted_rows``. ``metadata`` becomes the commit's ``userMetadata`` (SQL MERGE takes
    it from the session setting, which is set for this statement only).
    """
    if metadata is None:
        return _merge(spark, path, source, spec)
    key = "spark.databricks.delta.commitInfo.userMetadata"
    spark.conf.set(key, metadata)
    try:
        return _merge(spark, path, source, spec)
    finally:
        spark.conf.unset(key)


def _merge(spark: SparkSession, path: str, source: DataFrame, spec: MergeSpec) -> DataFrame:
    _delta_exception_types()
    clauses = []
    if spec.delete_when is not None:
        clauses.append(f"WHEN MATCHED AND ({spec.delete_when}) THEN DELETE")
    if spec.update is not None:
        cond, cols = spec.update
        sets = ", ".join(f"t.`{c}` = {e}" for c, e in cols.items())
        clauses.append(f"WHEN MATCHED{_and(cond)} THEN UPDATE SET {sets}")
    if spec.insert is not None:
        cond, cols = spec.insert
        names, values = ", ".join(f"`{c}`" for c in cols), ", ".join(cols.values())
        clauses.append(f"WHEN NOT MATCHED{_and(cond)} THEN INSERT ({names}) VALUES ({values})")
    if spec.insert_all:
        clauses.append("WHEN NOT MATCHED THEN INSERT *")
    query = f"MERGE INTO {table_ref(path)} AS t USING __SOURCE__ AS s ON {spec.on} "
    query += " ".join(clauses)
    # spark.sql formats the query: the source frame is passed as {source}, other braces doubled
    return spark.sql(_escape_braces(query).replace("__SOURCE__", "{source}"), source=source)


def _and(condition: str | None) -> str:
    return "" if condition is None else f" AND ({condition})"


def _escape_braces(query: str) -> str:
    """Double the braces of a query given to ``spark.sql(..., source=df)`` (a format string)."""
    return query.replace("{", "{{").replace("}", "}}")


def insert_new_rows(spark: SparkSession, path: str, rows: DataFrame, keys: list[str]) -> None:
    """Insert the rows whose ``keys`` are not in the table yet (null-safe), creating it if absent.

    A rerun with the same rows inserts nothing: the log it writes is idempotent.
    """
    if not is_delta_table(spark, path):
        save_delta(rows.limit(0).write.format("delta").mode("append"), path)
    on = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in keys)
    merge(spark, path, rows, MergeSpec(on=on, insert_all=True))
