"""Feast's names for the same definitions, so a Feast feature repo reads as it is.

``FileSource`` is a :class:`ParquetSource` (``timestamp_field`` is its ``timestamp_column``),
``Feature`` is a :class:`Field`, and :class:`~fstore_spark.core.dtypes.ValueType` holds Feast's
type names. The objects built are the ordinary definitions: nothing else changes.

Example:
    >>> src = FileSource(name="customer_transactions", path="data/txns.parquet",
    ...                  timestamp_field="event_timestamp", created_timestamp_column="created_at")
    >>> src.kind, src.timestamp_column
    ('parquet_source', 'event_timestamp')
    >>> Feature(name="total_spent_30d", dtype=ValueType.FLOAT).dtype
    'float32'
"""

from __future__ import annotations

from collections.abc import Mapping

from fstore_spark.core.dtypes import ValueType
from fstore_spark.core.fields import Field, JSONScalar
from fstore_spark.core.sources import ParquetSource

__all__ = ["Feature", "FileSource", "ValueType"]


def FileSource(  # noqa: N802 - Feast's class name
    *,
    name: str,
    path: str,
    timestamp_field: str,
    created_timestamp_column: str | None = None,
    description: str = "",
    schema: Mapping[str, str] | None = None,
) -> ParquetSource:
    """A Parquet file or folder source, in Feast's words."""
    return ParquetSource(
        name=name,
        path=path,
        timestamp_column=timestamp_field,
        created_timestamp_column=created_timestamp_column,
        description=description,
        schema=schema,
    )


def Feature(  # noqa: N802 - Feast's class name
    *, name: str, dtype: str, description: str = "", default: JSONScalar = None
) -> Field:
    """A projected feature column, in Feast's words (``dtype`` may be a :class:`ValueType`)."""
    return Field(name=name, dtype=dtype, description=description, default=default)
