"""Small helpers the quality modules share: Spark type names, quoting, JSON-friendly values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_NUMERIC_PREFIXES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_FLOAT_PREFIXES = ("float", "double")


def is_numeric(dtype: str) -> bool:
    """Whether a Spark type name (``df.dtypes``) is a number type."""
    return dtype.startswith(_NUMERIC_PREFIXES)


def is_float(dtype: str) -> bool:
    """Whether a Spark type name is a floating-point type (the ones that can hold NaN)."""
    return dtype.startswith(_FLOAT_PREFIXES)


def quoted(column: str) -> str:
    """A column name as a backquoted Spark identifier (dots and spaces stay part of the name)."""
    return f"`{column.replace('`', '``')}`"


def plain(v: Any) -> Any:
    """A value as JSON can hold it: datetimes as ISO text, tuples as lists, the rest as text."""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple):
        return [plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)
