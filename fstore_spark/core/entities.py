"""Entities: the business objects features describe, identified by their join keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fstore_spark.core.codec import Serialisable, codec, pairs_from_json, pairs_to_json
from fstore_spark.core.dtypes import check_dtype
from fstore_spark.core.mappings import NO_TAGS, FrozenMap, check_tags
from fstore_spark.core.naming import check_column_name, check_name, check_sequence, check_str
from fstore_spark.errors import DefinitionError

__all__ = ["Entity"]


def _decode_join_keys(value: Any, what: str, key: str) -> Any:
    """Accept a list of plain key names (all ``string``), as the constructor does, or pairs."""
    if isinstance(value, list | tuple) and all(isinstance(k, str) for k in value):
        return value
    return pairs_from_json(value, what)


@dataclass(frozen=True, kw_only=True, init=False)
class Entity(Serialisable):
    """A business object that features describe, identified by one or more join keys.

    Rules: the name and each join key are safe identifiers; there is at least one join key; join
    keys are not reserved column names and not floating point (float equality makes joins
    unreliable). A plain list of key names means every key is a ``string`` (or ``value_type``);
    without join keys, as in Feast, the entity's name is its one key, of ``value_type``.

    Serialised with ``"kind": "entity"``; join keys as an ordered list of ``{"name", "dtype"}``.

    Attributes:
        name: Unique entity name, e.g. ``"customer"``.
        join_keys: Key column -> dtype, in declared order (a :class:`FrozenMap`).
        description: Free text.
        tags: String labels, stored sorted by key.

    Example:
        >>> customer = Entity(name="customer", join_keys=["customer_id"])
        >>> customer.join_keys
        FrozenMap({'customer_id': 'string'})
        >>> line = Entity(name="order_line", join_keys={"order_id": "long", "line_no": "int"})
        >>> line.join_key_names
        ('order_id', 'line_no')
        >>> customer.to_dict()["join_keys"]
        [{'name': 'customer_id', 'dtype': 'string'}]
        >>> Entity.from_dict(customer.to_dict()) == customer
        True
    """

    kind: ClassVar[str] = "entity"
    """The serialisation kind."""

    name: str
    join_keys: Mapping[str, str] = field(
        metadata=codec(encode=pairs_to_json, decode=_decode_join_keys)
    )
    description: str = ""
    tags: Mapping[str, str] = NO_TAGS

    # An explicit __init__ because the constructor accepts a list of keys as well as a mapping,
    # while the attribute is always a mapping: a generated __init__ cannot type both.
    def __init__(
        self,
        *,
        name: str,
        join_keys: Mapping[str, str] | Sequence[str] | None = None,
        description: str = "",
        tags: Mapping[str, str] = NO_TAGS,
        value_type: str | None = None,
    ) -> None:
        owner = f"entity {name!r}"
        check_name(name, owner=owner)
        if join_keys is None or (value_type is not None and not isinstance(join_keys, Mapping)):
            keys = [name] if join_keys is None else join_keys
            join_keys = dict.fromkeys(
                [keys] if isinstance(keys, str) else keys, value_type or "string"
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", _check_join_keys(join_keys, owner=owner))
        object.__setattr__(
            self, "description", check_str(description, owner=owner, role="description")
        )
        object.__setattr__(self, "tags", check_tags(tags, owner=owner))

    @property
    def join_key_names(self) -> tuple[str, ...]:
        """Join key column names in declared order."""
        return tuple(self.join_keys)


def _check_join_keys(join_keys: object, *, owner: str) -> FrozenMap[str, str]:
    """Normalise join keys to an ordered key -> dtype map, checking each key and dtype."""
    if isinstance(join_keys, str):
        join_keys = [join_keys]
    if isinstance(join_keys, Mapping):
        raw_keys = list(join_keys.items())
    else:
        keys = check_sequence(join_keys, owner=owner, role="join_keys")
        raw_keys = [(key, "string") for key in keys]
    if not raw_keys:
        raise DefinitionError(
            f"{owner}: has no join keys. Fix: pass join_keys, e.g. ['customer_id'] or "
            '{"customer_id": "string"}.'
        )
    keys_map: dict[str, str] = {}
    for key, dtype in raw_keys:
        key = check_column_name(key, owner=owner, role="join key")
        if key.lower() in (k.lower() for k in keys_map):
            raise DefinitionError(f"{owner}: join key {key!r} is listed twice. Fix: list it once.")
        dtype = check_dtype(dtype, owner=owner, role=f"join key {key!r}")
        if dtype in ("float32", "float64"):
            raise DefinitionError(
                f"{owner}: join key {key!r} has dtype {dtype}; floating-point keys do not join "
                "reliably. Fix: use string, int32, int64, bool, timestamp or date."
            )
        keys_map[key] = dtype
    return FrozenMap(keys_map)
