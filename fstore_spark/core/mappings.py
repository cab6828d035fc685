"""Immutable mappings held by definitions (join keys, schemas, tags, metadata) and their checks.

Definitions are frozen and hashable, so every mapping they hold is a :class:`FrozenMap`. Mappings
whose order is meaningful (join keys, schema columns) keep the declared order; mappings whose
order is not (tags, metadata) are stored sorted by key, so that reordering them changes neither
equality nor the definition hash.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeAlias, TypeVar

from fstore_spark.core.dtypes import check_dtype
from fstore_spark.core.naming import check_name
from fstore_spark.errors import DefinitionError

__all__ = ["FrozenMap"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class FrozenMap(Mapping[_K, _V], Generic[_K, _V]):
    """An immutable, hashable, insertion-ordered mapping.

    Definitions store their mappings (join keys, schemas, tags) in this type so that they stay
    immutable and hashable. Two ``FrozenMap`` objects are equal only if their items are equal *in
    the same order*, because declared order is meaningful (join keys, schema columns); compared
    with a plain dict, order is ignored as for any mapping.

    Args:
        items: A mapping or an iterable of ``(key, value)`` pairs.

    Example:
        >>> m = FrozenMap({"b": 1, "a": 2})
        >>> list(m), m["a"], m == {"a": 2, "b": 1}, m == FrozenMap({"a": 2, "b": 1})
        (['b', 'a'], 2, True, False)
    """

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = ()) -> None:
        self._data: dict[_K, _V] = dict(items)

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return tuple(self._data.items()) == tuple(other._data.items())
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


MetadataValue: TypeAlias = str | int | float | bool
"""A value of feature-set metadata."""

NO_TAGS: FrozenMap[str, str] = FrozenMap()
NO_METADATA: FrozenMap[str, MetadataValue] = FrozenMap()


def check_tags(value: object, *, owner: str, role: str = "tags") -> FrozenMap[str, str]:
    """Validate string-to-string tags; store them sorted so that key order never matters."""
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: {role} must be a mapping of strings to strings, got {value!r}. "
            'Fix: pass e.g. {"team": "risk"}.'
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key or not isinstance(item, str):
            raise DefinitionError(
                f"{owner}: {role} entry {key!r}: {item!r} is not a non-empty string key with a "
                'string value. Fix: pass e.g. {"team": "risk"}.'
            )
    return FrozenMap(sorted(value.items()))


def check_metadata(value: object, *, owner: str) -> FrozenMap[str, MetadataValue]:
    """Validate metadata (JSON scalars except null and non-finite floats), sorted by key."""
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: metadata must be a mapping, got {value!r}. "
            'Fix: pass e.g. {"model": "churn", "version": 3}.'
        )
    for key, item in value.items():
        valid = isinstance(item, str | int | float | bool) and not (
            isinstance(item, float) and not math.isfinite(item)
        )
        if not isinstance(key, str) or not key or not valid:
            raise DefinitionError(
                f"{owner}: metadata entry {key!r}: {item!r} is invalid. Fix: use non-empty "
                "string keys and string, integer, finite float or bool values."
            )
    return FrozenMap(sorted(value.items()))


def check_dtype_map(value: object, *, owner: str, role: str) -> FrozenMap[str, str]:
    """Validate a column -> dtype mapping, keeping the declared column order."""
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: {role} must be a mapping of column name to dtype, got {value!r}. "
            'Fix: pass e.g. {"customer_id": "string", "amount": "float64"}.'
        )
    return FrozenMap(
        (
            check_name(column, owner=owner, role=f"{role} column"),
            check_dtype(dtype, owner=owner, role=f"{role} column {column!r}"),
        )
        for column, dtype in value.items()
    )
