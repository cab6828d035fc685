"""Dtype names used in definitions, independent of any engine.

Definitions declare column types with short canonical names (:data:`DTYPES`); the Spark layer maps
them to Spark types. Common spellings from SQL and Python (``double``, ``long``, ``str``...) are
accepted as aliases and normalised, so stored definitions always hold the canonical name.
"""

from __future__ import annotations

from enum import StrEnum

from fstore_spark.errors import DefinitionError

__all__ = ["DTYPES", "NUMERIC_DTYPES", "ValueType", "normalize_dtype"]

DTYPES = ("string", "int32", "int64", "float32", "float64", "bool", "timestamp", "date")
"""Canonical dtype names used in definitions (mapped to Spark types by the Spark layer)."""

NUMERIC_DTYPES = ("int32", "int64", "float32", "float64")
"""Dtypes that ``sum``, ``mean`` and ``stddev`` accept."""

INTEGER_DTYPES = ("int32", "int64")
"""Integer dtypes (``sum`` over them stays an integer)."""

_DTYPE_ALIASES = {
    "int": "int64",
    "long": "int64",
    "integer": "int32",
    "float": "float32",
    "double": "float64",
    "boolean": "bool",
    "str": "string",
    "unix_timestamp": "timestamp",
}


class ValueType(StrEnum):
    """Feast's value type names, usable wherever a dtype is (``Field(dtype=ValueType.FLOAT)``)."""

    STRING = "string"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT = "float32"
    DOUBLE = "float64"
    BOOL = "bool"
    UNIX_TIMESTAMP = "timestamp"


def normalize_dtype(dtype: str) -> str:
    """Return the canonical name of a dtype, resolving aliases.

    Aliases: ``int``/``long`` → ``int64``, ``integer`` → ``int32``, ``float`` → ``float32``,
    ``double`` → ``float64``, ``boolean`` → ``bool``, ``str`` → ``string``,
    ``unix_timestamp`` → ``timestamp``; Feast's names (``STRING``, ``INT64``...) and
    :class:`ValueType` members too. Matching ignores case and surrounding spaces.

    Args:
        dtype: A canonical dtype or an alias.

    Returns:
        One of :data:`DTYPES`.

    Raises:
        DefinitionError: If ``dtype`` is not a known dtype or alias; the message lists them.

    Example:
        >>> normalize_dtype("double"), normalize_dtype("INT")
        ('float64', 'int64')
    """
    if isinstance(dtype, ValueType):
        return dtype.value
    if isinstance(dtype, str):
        key = dtype.strip().lower()
        if key in DTYPES:
            return key
        if key in _DTYPE_ALIASES:
            return _DTYPE_ALIASES[key]
    raise DefinitionError(
        f"unknown dtype {dtype!r}. Fix: use one of {', '.join(DTYPES)} "
        f"(aliases: {', '.join(f'{a}={c}' for a, c in _DTYPE_ALIASES.items())})."
    )


def check_dtype(value: object, *, owner: str, role: str) -> str:
    """Normalise a dtype, prefixing any error with the owner and role it belongs to."""
    try:
        return normalize_dtype(value)  # type: ignore[arg-type]  # any object is rejected inside
    except DefinitionError as exc:
        raise DefinitionError(f"{owner}: {role}: {exc}") from exc
