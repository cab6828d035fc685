"""Definitions against the tables they read: checked when they are applied, before any write.

A source declares its timestamp columns and, optionally, its columns and their dtypes; a view
reads its entities' join keys, its projected features and its aggregations' columns from the
source. When the source's table already exists, :func:`check_against_tables` reads its schema
(no data) and reports every definition that the table cannot satisfy, so that a typo or a
changed table fails at ``apply`` with the column named, not at the first materialization. A
source whose table does not exist yet is not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fstore_spark.core import DeltaSource, Entity, FeatureView, ParquetSource, Source
from fstore_spark.core.dtypes import INTEGER_DTYPES
from fstore_spark.core.filter_nodes import columns
from fstore_spark.errors import DefinitionError
from fstore_spark.lakehouse.tables import definition_dtypes, source_table_schema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

__all__ = ["check_against_tables", "compatible_dtype"]

_TIME_TYPES = ("timestamp", "timestamp_ntz", "date", "string")
_FAMILIES = (set(INTEGER_DTYPES), {"float32", "float64"})


def compatible_dtype(declared: str, actual: str | None) -> bool:
    """Whether a column of dtype ``actual`` reads as ``declared`` without losing meaning.

    The same dtype, or the same family (``int32``/``int64``, ``float32``/``float64``), or an
    integer column declared as a float.
    """
    if actual is None:
        return False
    if declared == actual or any({declared, actual} <= f for f in _FAMILIES):
        return True
    return declared.startswith("float") and actual in INTEGER_DTYPES


def check_against_tables(
    spark: SparkSession,
    project_root: str,
    objects: Iterable[Any],
    registered: Callable[[], Mapping[str, Entity]],
) -> None:
    """Check every source in ``objects`` (declared or embedded in a view) against its table.

    Args:
        spark: Session used to read the tables' schemas.
        project_root: Where relative source paths live.
        objects: The definitions being applied.
        registered: The registered entities by name, for views whose entities are not among
            ``objects`` (called only then).

    Raises:
        DefinitionError: one line per problem, each naming the definition, the column and
            the fix; nothing was written.
    """
    objs = list(objects)
    views = [o for o in objs if isinstance(o, FeatureView)]
    sources: dict[str, Source] = {v.source.name: v.source for v in views}
    sources.update({o.name: o for o in objs if isinstance(o, DeltaSource | ParquetSource)})
    entities = {o.name: o for o in objs if isinstance(o, Entity)}
    problems: list[str] = []
    for source in sources.values():
        schema = source_table_schema(spark, source, project_root)
        if schema is None:
            continue
        problems += _source_problems(source, schema)
        for view in views:
            if view.source.name != source.name:
                continue
            if any(e not in entities for e in view.entities):
                entities = {**registered(), **entities}
            problems += _view_problems(view, source, definition_dtypes(schema), entities)
    if problems:
        raise DefinitionError(
            "definitions do not match their tables (nothing was applied):\n"
            + "\n".join(f"- {p}" for p in problems)
        )


def _where(source: Source) -> str:
    if isinstance(source, DeltaSource) and source.table is not None:
        return f"table {source.table}"
    return f"path {source.path}"


def _source_problems(source: Source, schema: StructType) -> list[str]:
    """Timestamp columns and declared columns missing from the table, or of another type."""
    label = f"source {source.name!r} ({_where(source)})"
    names = {f.name.lower(): f for f in schema.fields}
    dtypes = {k.lower(): v for k, v in definition_dtypes(schema).items()}
    have = ", ".join(f.name for f in schema.fields)
    out = []
    for role, col in (
        ("timestamp_column", source.timestamp_column),
        ("created_timestamp_column", source.created_timestamp_column),
    ):
        if col is None:
            continue
        found = names.get(col.lower())
        if found is None:
            out.append(f"{label}: {role} {col!r} is not a column of the table ({have}).")
        elif found.dataType.typeName() not in _TIME_TYPES:
            out.append(
                f"{label}: {role} {col!r} is {found.dataType.simpleString()}, not a timestamp. "
                "Fix: point it at a timestamp, date or string column."
            )
    for col, declared in (source.schema or {}).items():
        if col.lower() not in names:
            out.append(
                f"{label}: declared column {col!r} is not a column of the table ({have}). "
                "Fix: correct the schema, or add the column to the table."
            )
        elif not compatible_dtype(declared, dtypes.get(col.lower())):
            actual = names[col.lower()].dataType.simpleString()
            out.append(
                f"{label}: column {col!r} is declared {declared} but the table has {actual}. "
                "Fix: declare the table's type, or cast the column in the table."
            )
    return out


def _view_problems(
    view: FeatureView, source: Source, dtypes: Mapping[str, str], entities: Mapping[str, Entity]
) -> list[str]:
    """Join keys, projected features and aggregated or filtered columns the table lacks."""
    label = f"feature view {view.name!r}"
    lowered = {k.lower(): v for k, v in dtypes.items()}
    where = f"the table of source {source.name!r} ({_where(source)})"
    out = []
    keys = [k for e in view.entities if e in entities for k in entities[e].join_key_names]
    for key in dict.fromkeys(keys):
        if key.lower() not in lowered:
            out.append(f"{label}: join key {key!r} is not a column of {where}.")
    for f in view.features if not view.is_aggregated else ():
        if f.name.lower() not in lowered:
            out.append(f"{label}: feature {f.name!r} is not a column of {where}.")
        elif not compatible_dtype(f.dtype, lowered[f.name.lower()]):
            out.append(
                f"{label}: feature {f.name!r} is declared {f.dtype} but {where} has "
                f"{lowered[f.name.lower()]}. Fix: declare {lowered[f.name.lower()]}."
            )
    for agg in view.aggregations:
        used = [] if agg.column == "*" else [agg.column]
        used += [] if agg.filter_expr is None else list(columns(agg.filter_expr))
        for col in dict.fromkeys(used):
            if col.lower() not in lowered:
                out.append(
                    f"{label}: aggregation {agg.name!r} reads column {col!r}, which is not a "
                    f"column of {where}."
                )
    return out
