"""Entry points of the dict form: rebuild any definition by kind, fingerprint a definition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from fstore_spark.core.entities import Entity
from fstore_spark.core.feature_sets import FeatureSet
from fstore_spark.core.sources import DeltaSource, ParquetSource
from fstore_spark.core.views import FeatureView
from fstore_spark.errors import DefinitionError

__all__ = ["Definition", "definition_hash", "from_dict"]

Definition: TypeAlias = Entity | DeltaSource | ParquetSource | FeatureView | FeatureSet
"""Any top-level definition (what the registry stores)."""

_KINDS: dict[
    str,
    type[Entity] | type[DeltaSource] | type[ParquetSource] | type[FeatureView] | type[FeatureSet],
] = {cls.kind: cls for cls in (Entity, DeltaSource, ParquetSource, FeatureView, FeatureSet)}


class _Serialisable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def from_dict(data: Mapping[str, Any]) -> Definition:
    """Rebuild any top-level definition from its ``to_dict()`` output, dispatching on ``kind``.

    Args:
        data: A dict with ``"kind"`` one of ``entity``, ``delta_source``, ``parquet_source``,
            ``feature_view``, ``feature_set``.

    Returns:
        The definition.

    Raises:
        DefinitionError: If the kind is missing or unknown, or the dict is invalid for its kind.

    Example:
        >>> from_dict({"kind": "entity", "name": "customer", "join_keys": ["customer_id"]})
        Entity(name='customer', join_keys=FrozenMap({'customer_id': 'string'}), \
description='', tags=FrozenMap({}))
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise DefinitionError(
            f"from_dict: unknown kind {kind!r}. Fix: pass a dict produced by to_dict(), whose "
            f"kind is one of {', '.join(_KINDS)}."
        )
    return cls.from_dict(data)


def definition_hash(obj: _Serialisable) -> str:
    """Fingerprint a definition: SHA-256 hex of its canonical JSON.

    Canonical JSON is ``to_dict()`` dumped with sorted keys, no whitespace, ASCII only; so equal
    definitions always hash equally, across processes and Python versions, and any change to a
    definition (including a description) changes the hash. The registry uses it to detect
    changes; lineage uses it to pin what a model was trained with.

    Args:
        obj: Any definition (or a :class:`~fstore_spark.core.fields.Field` or
            :class:`~fstore_spark.core.aggregations.Aggregation`).

    Returns:
        64 lowercase hexadecimal characters.

    Example:
        >>> a = Entity(name="customer", join_keys=["customer_id"])
        >>> definition_hash(a) == definition_hash(Entity.from_dict(a.to_dict()))
        True
        >>> len(definition_hash(a))
        64
    """
    canonical = json.dumps(
        obj.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
