"""Fields: feature columns that a feature view projects as-is from its source."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeAlias

from fstore_spark.core.codec import Serialisable
from fstore_spark.core.dtypes import INTEGER_DTYPES, check_dtype
from fstore_spark.core.naming import check_column_name, check_str
from fstore_spark.errors import DefinitionError

__all__ = ["Field", "JSONScalar"]

JSONScalar: TypeAlias = str | int | float | bool | None
"""A value that JSON represents natively, e.g. a field default."""

_DEFAULT_EXAMPLES = {
    "string": "string such as 'unknown'",
    "int32": "integer in the int32 range such as 0",
    "int64": "integer in the int64 range such as 0",
    "float32": "finite number such as 0.0",
    "float64": "finite number such as 0.0",
    "bool": "bool such as False",
    "timestamp": "ISO-8601 timestamp string such as '1970-01-01T00:00:00'",
    "date": "ISO-8601 date string such as '1970-01-01'",
}


def _fits(value: object, dtype: str) -> bool:
    """Tell whether a non-null default can be stored in a column of ``dtype``."""
    if dtype == "string":
        return isinstance(value, str)
    if dtype in INTEGER_DTYPES:
        bound = 2**31 if dtype == "int32" else 2**63
        return isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    if dtype in ("float32", "float64"):
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if dtype == "bool":
        return isinstance(value, bool)
    if not isinstance(value, str):
        return False
    parse_iso = datetime.fromisoformat if dtype == "timestamp" else date.fromisoformat
    try:
        parse_iso(value)
    except ValueError:
        return False
    return True


def _check_default(value: object, dtype: str, *, owner: str) -> JSONScalar:
    """Check that a field default is a JSON scalar that fits the field's dtype."""
    if value is None:
        return None
    if not _fits(value, dtype):
        raise DefinitionError(
            f"{owner}: default {value!r} does not fit dtype {dtype}. Fix: use None or a "
            f"{_DEFAULT_EXAMPLES[dtype]}."
        )
    assert isinstance(value, str | int | float | bool)
    return value


@dataclass(frozen=True, kw_only=True)
class Field(Serialisable):
    """A feature column projected as-is from a source by a feature view.

    Rules: the name is a safe, non-reserved identifier; the dtype is one of the canonical dtypes
    (aliases accepted); ``default`` is None or a JSON scalar that fits the dtype (timestamps and
    dates as ISO-8601 strings). The default is what serving and training return when an entity
    has no value within the view's time-to-live; None means the result stays null.

    Attributes:
        name: Feature name.
        dtype: Canonical dtype.
        description: Free text.
        default: Value used when no value is found.

    Example:
        >>> Field(name="age", dtype="int", default=-1)
        Field(name='age', dtype='int64', description='', default=-1)
        >>> Field(name="city", dtype="str").to_dict()
        {'name': 'city', 'dtype': 'string', 'description': '', 'default': None}
        >>> Field.from_dict({"name": "age", "dtype": "int64"})
        Field(name='age', dtype='int64', description='', default=None)
    """

    name: str
    dtype: str
    description: str = ""
    default: JSONScalar = None

    def __post_init__(self) -> None:
        """Validate the field and normalise its dtype."""
        owner = f"field {self.name!r}"
        check_column_name(self.name, owner=owner, role="name")
        object.__setattr__(self, "dtype", check_dtype(self.dtype, owner=owner, role="dtype"))
        check_str(self.description, owner=owner, role="description")
        _check_default(self.default, self.dtype, owner=owner)
