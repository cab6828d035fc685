"""Dict serialisation of definitions, derived from their dataclass fields.

Every definition class inherits :class:`Serialisable`, which gives it ``to_dict`` and
``from_dict`` without any per-class code:

* ``to_dict`` writes ``"kind"`` first (for classes with a ``kind`` class attribute), then one key
  per dataclass field in declaration order. Values are encoded by type: nested definitions as
  their own dict, tuples as lists, mappings as dicts, timedeltas as canonical duration strings
  (``"7d"``); a field may override this with an encode hook in its ``metadata`` (see
  :func:`codec`), e.g. join keys and schemas become an ordered list of ``{"name", "dtype"}``.
* ``from_dict`` checks the dict's shape (a mapping, the right ``kind``, no unknown keys, no
  missing keys), applies the fields' decode hooks, and calls the constructor, which validates
  and normalises everything else exactly as for hand-written definitions. A key may be left out
  exactly when the constructor has a default for it.

The output is the input of :func:`~fstore_spark.core.serialization.definition_hash`, which the
registry stores: changing what ``to_dict`` produces for an existing definition changes its hash.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple, Self

from fstore_spark.core.durations import format_duration
from fstore_spark.core.naming import check_sequence
from fstore_spark.errors import DefinitionError

Encoder = Callable[[Any], Any]
"""Turns a field's value into its JSON-compatible form."""

Decoder = Callable[[Any, str, str], Any]
"""Turns a serialised value back into constructor input: ``(value, what, key) -> value``."""

_CODEC = "fstore_codec"


class FieldCodec(NamedTuple):
    """Hooks that replace the default, type-driven encoding or decoding of one field."""

    encode: Encoder | None = None
    decode: Decoder | None = None


def codec(*, encode: Encoder | None = None, decode: Decoder | None = None) -> dict[str, Any]:
    """Build ``dataclasses.field`` metadata that attaches serialisation hooks to a field.

    Args:
        encode: Replaces the type-driven encoding of the field's value, or None.
        decode: Called with ``(value, what, key)`` on the serialised value when the key is
            present, before the constructor sees it; None passes the value unchanged.

    Returns:
        A metadata mapping for ``dataclasses.field(metadata=...)``.
    """
    return {_CODEC: FieldCodec(encode, decode)}


def _field_codec(field: dataclasses.Field[Any]) -> FieldCodec:
    hooks = field.metadata.get(_CODEC)
    return hooks if isinstance(hooks, FieldCodec) else FieldCodec()


class Serialisable:
    """Mixin giving a frozen definition dataclass its dict round trip.

    ``X.from_dict(x.to_dict()) == x`` holds for every definition; the dict only contains JSON
    types, so it also survives ``json.dumps``/``json.loads``.
    """

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict: ``kind`` (if any), then each field in order.

        Returns:
            A new dict; mutating it does not affect the definition.
        """
        data: dict[str, Any] = {}
        kind = _kind_of(type(self))
        if kind is not None:
            data["kind"] = kind
        for field in dataclasses.fields(self):  # type: ignore[arg-type]  # subclasses are dataclasses
            value = getattr(self, field.name)
            encode = _field_codec(field).encode or encode_value
            data[field.name] = encode(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a definition from :meth:`to_dict` output.

        Args:
            data: The serialised definition. Keys with a constructor default may be omitted;
                unknown keys are rejected.

        Returns:
            A definition equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict (not a mapping, wrong kind, unknown or missing
                keys) or invalid values.
        """
        what = f"{cls.__name__}.from_dict"
        required, optional = _keys(cls)
        values = read_shape(
            data, what=what, kind=_kind_of(cls), required=required, optional=optional
        )
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]  # subclasses are dataclasses
            decode = _field_codec(field).decode
            if decode is not None and field.name in values:
                values[field.name] = decode(values[field.name], what, field.name)
        return cls(**values)


def _kind_of(cls: type) -> str | None:
    """The ``kind`` class attribute of a top-level definition, None for nested parts."""
    kind = getattr(cls, "kind", None)
    return kind if isinstance(kind, str) else None


_KEYS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _keys(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split the field names, in declaration order, into required and optional keys.

    A key is optional when the constructor has a default for it: this follows the constructor
    rather than the field defaults, because some constructors derive a value (an aggregation's
    name) that the stored field always holds.
    """
    if cls not in _KEYS:
        parameters = inspect.signature(cls).parameters
        names = [field.name for field in dataclasses.fields(cls)]
        required = tuple(n for n in names if parameters[n].default is inspect.Parameter.empty)
        _KEYS[cls] = (required, tuple(n for n in names if n not in required))
    return _KEYS[cls]


def encode_value(value: Any) -> Any:
    """Encode a field value by its type: definitions, tuples, mappings, timedeltas, scalars."""
    if isinstance(value, Serialisable):
        return value.to_dict()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return [encode_value(item) for item in value]
    return value


def read_shape(
    data: object,
    *,
    what: str,
    kind: str | None,
    required: tuple[str, ...],
    optional: tuple[str, ...],
) -> dict[str, Any]:
    """Check a serialised definition's shape: kind, no unknown keys, no missing keys.

    Returns:
        A copy of the dict without its ``kind`` key.
    """
    if not isinstance(data, Mapping):
        raise DefinitionError(
            f"{what}: expected a mapping, got {type(data).__name__}. "
            "Fix: pass the dict produced by to_dict()."
        )
    values = dict(data)
    if kind is not None:
        found = values.pop("kind", kind)
        if found != kind:
            raise DefinitionError(
                f"{what}: kind is {found!r}, expected {kind!r}. "
                "Fix: use the from_dict of the matching class, or the module-level from_dict()."
            )
    unknown = sorted(set(values) - set(required) - set(optional), key=str)
    if unknown:
        raise DefinitionError(
            f"{what}: unknown keys {unknown}. Fix: use only "
            f"{', '.join(('kind',) * (kind is not None) + required + optional)}."
        )
    missing = [key for key in required if key not in values]
    if missing:
        raise DefinitionError(f"{what}: missing keys {missing}. Fix: include them.")
    return values


# --------------------------------------------------------------------------------------------
# Hooks shared by several definitions
# --------------------------------------------------------------------------------------------


def pairs_to_json(mapping: Mapping[str, str] | None) -> list[dict[str, str]] | None:
    """Encode an ordered column -> dtype mapping as a list of ``{"name", "dtype"}`` entries.

    A list keeps the declared order through canonical JSON, where ``sort_keys`` would reorder a
    dict; None (an unknown schema) stays None.

    Example:
        >>> pairs_to_json({"order_id": "int64", "line_no": "int32"})
        [{'name': 'order_id', 'dtype': 'int64'}, {'name': 'line_no', 'dtype': 'int32'}]
    """
    if mapping is None:
        return None
    return [{"name": name, "dtype": dtype} for name, dtype in mapping.items()]


def pairs_from_json(value: object, what: str) -> dict[str, str]:
    """Decode :func:`pairs_to_json` output (a plain mapping is accepted as well)."""
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, list | tuple):
        raise DefinitionError(
            f"{what}: expected a list of {{'name': ..., 'dtype': ...}} entries, got {value!r}. "
            "Fix: pass the structure produced by to_dict()."
        )
    pairs: dict[str, str] = {}
    for entry in value:
        if not isinstance(entry, Mapping) or set(entry) != {"name", "dtype"}:
            raise DefinitionError(
                f"{what}: entry {entry!r} is not of the form {{'name': ..., 'dtype': ...}}. "
                "Fix: pass the structure produced by to_dict()."
            )
        if entry["name"] in pairs:
            raise DefinitionError(
                f"{what}: column {entry['name']!r} is listed twice. Fix: list it once."
            )
        pairs[entry["name"]] = entry["dtype"]
    return pairs


def nested_list(item_type: type[Serialisable]) -> Decoder:
    """A decode hook for a list of nested definitions, each rebuilt with its ``from_dict``."""

    def decode(value: Any, what: str, key: str) -> list[Serialisable]:
        return [item_type.from_dict(item) for item in check_sequence(value, owner=what, role=key)]

    return decode
