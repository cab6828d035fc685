"""Feature store definitions: entities, sources, feature views and feature sets, as plain data.

Definitions describe *what* to compute, never *how*: this module does not import pyspark. Every
class is a keyword-only, frozen dataclass that is validated when constructed, compares by value,
is hashable, and round-trips through a JSON-serialisable dict (``X.from_dict(x.to_dict()) == x``)
so that the registry can store, diff and version it. :func:`definition_hash` fingerprints a
definition; :func:`validate_objects` checks a whole set of definitions against each other.

Rules shared by all definitions:

* Names of objects, columns and features match ``^[A-Za-z_][A-Za-z0-9_]{0,127}$``.
* Feature and join-key names may not be ``feature_timestamp``, ``created_timestamp`` or start
  with ``_fs_``: the store adds those columns itself (compared case-insensitively, like Spark).
* Dtypes are one of :data:`DTYPES`; aliases such as ``"double"`` are normalised.
* Durations are ``"<positive integer><s|m|h|d|w>"`` strings or positive whole-second timedeltas.

Example:
    The seed definitions of the demo project:

    >>> from fstore_spark.core.definitions import (
    ...     Aggregation, DeltaSource, Entity, FeatureView, Field, validate_objects)
    >>> customer = Entity(name="customer", join_keys={"customer_id": "string"})
    >>> transactions = DeltaSource(
    ...     name="customer_transactions",
    ...     path="data/delta/customer_transactions",
    ...     timestamp_column="event_timestamp",
    ...     created_timestamp_column="created_at",
    ...     schema={"customer_id": "string", "amount": "float64"},
    ... )
    >>> transaction_features = FeatureView(
    ...     name="customer_transaction_features",
    ...     entities=[customer],
    ...     source=transactions,
    ...     ttl="90d",
    ...     aggregations=[
    ...         Aggregation(column="amount", function="sum", window="30d",
    ...                     name="total_spent_30d"),
    ...         Aggregation(column="*", function="count", window="30d",
    ...                     name="transaction_count_30d"),
    ...         Aggregation(column="amount", function="mean", window="30d",
    ...                     name="avg_transaction_value_30d"),
    ...         Aggregation(column="*", function="recency", name="last_transaction_days_ago"),
    ...     ],
    ... )
    >>> demographics = FeatureView(
    ...     name="customer_demographic_features",
    ...     entities=["customer"],
    ...     source=DeltaSource(name="customer_profiles", path="data/delta/customer_profiles",
    ...                        timestamp_column="updated_at"),
    ...     ttl="365d",
    ...     features=[Field(name="age", dtype="int64"), Field(name="city", dtype="string"),
    ...               Field(name="signup_date", dtype="date")],
    ... )
    >>> validate_objects([customer, transactions, transaction_features, demographics])
    >>> for name, dtype in transaction_features.feature_dtypes().items():
    ...     print(name, dtype)
    total_spent_30d float64
    transaction_count_30d int64
    avg_transaction_value_30d float64
    last_transaction_days_ago float64
    >>> FeatureView.from_dict(transaction_features.to_dict()) == transaction_features
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from fstore_spark.core.filters import (
    SAFE_IDENTIFIER_PATTERN,
    FilterExpr,
    columns,
    is_safe_identifier,
    parse_filter,
    to_text,
)
from fstore_spark.errors import DefinitionError

__all__ = [
    "AGG_FUNCTIONS",
    "DTYPES",
    "NUMERIC_DTYPES",
    "RESERVED_COLUMNS",
    "RESERVED_PREFIX",
    "Aggregation",
    "Definition",
    "DeltaSource",
    "Entity",
    "FeatureRef",
    "FeatureSet",
    "FeatureView",
    "Field",
    "FrozenMap",
    "JSONScalar",
    "ParquetSource",
    "Source",
    "definition_hash",
    "format_duration",
    "from_dict",
    "is_reserved_column",
    "normalize_dtype",
    "parse_duration",
    "resolve_feature_refs",
    "validate_objects",
]

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

RESERVED_COLUMNS = ("feature_timestamp", "created_timestamp")
"""Column names the store adds to feature tables; features and join keys may not use them."""

RESERVED_PREFIX = "_fs_"
"""Prefix of internal columns; no feature or join key may start with it."""

_NAME_RULE = (
    "use 1 to 128 ASCII letters, digits and underscores, not starting with a digit "
    f"(pattern {SAFE_IDENTIFIER_PATTERN})"
)


def is_reserved_column(name: str) -> bool:
    """Tell whether ``name`` is reserved for columns that the feature store adds itself.

    The comparison ignores case because Spark resolves column names case-insensitively by
    default, so ``Feature_Timestamp`` would clash with ``feature_timestamp``.

    Args:
        name: A column or feature name.

    Returns:
        True for ``feature_timestamp``, ``created_timestamp`` and names starting with ``_fs_``.

    Example:
        >>> is_reserved_column("_fs_row_id"), is_reserved_column("event_timestamp")
        (True, False)
    """
    lowered = name.lower()
    return lowered in RESERVED_COLUMNS or lowered.startswith(RESERVED_PREFIX)


def _check_name(value: object, *, owner: str, role: str = "name") -> str:
    if not is_safe_identifier(value):
        raise DefinitionError(
            f"{owner}: {role} {value!r} is not a safe identifier. Fix: {_NAME_RULE}."
        )
    assert isinstance(value, str)  # narrowed by is_safe_identifier
    return value


def _check_column_name(value: object, *, owner: str, role: str) -> str:
    """Check a name that becomes a column of a feature table (feature or join key)."""
    name = _check_name(value, owner=owner, role=role)
    if is_reserved_column(name):
        raise DefinitionError(
            f"{owner}: {role} {name!r} is reserved. Fix: rename it; "
            f"{', '.join(repr(c) for c in RESERVED_COLUMNS)} and names starting with "
            f"{RESERVED_PREFIX!r} are columns the feature store adds itself."
        )
    return name


def _check_str(value: object, *, owner: str, role: str) -> str:
    if not isinstance(value, str):
        raise DefinitionError(
            f"{owner}: {role} must be a string, got {type(value).__name__} {value!r}. "
            "Fix: pass a string."
        )
    return value


def _check_bool(value: object, *, owner: str, role: str) -> bool:
    if not isinstance(value, bool):
        raise DefinitionError(
            f"{owner}: {role} must be True or False, got {value!r}. Fix: pass a bool."
        )
    return value


# --------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------

DTYPES = ("string", "int32", "int64", "float32", "float64", "bool", "timestamp", "date")
"""Canonical dtype names used in definitions (mapped to Spark types by the Spark layer)."""

NUMERIC_DTYPES = ("int32", "int64", "float32", "float64")
"""Dtypes that ``sum``, ``mean`` and ``stddev`` accept."""

_INTEGER_DTYPES = ("int32", "int64")

_DTYPE_ALIASES = {
    "int": "int64",
    "long": "int64",
    "integer": "int32",
    "float": "float32",
    "double": "float64",
    "boolean": "bool",
    "str": "string",
}


def normalize_dtype(dtype: str) -> str:
    """Return the canonical name of a dtype, resolving aliases.

    Aliases: ``int``/``long`` → ``int64``, ``integer`` → ``int32``, ``float`` → ``float32``,
    ``double`` → ``float64``, ``boolean`` → ``bool``, ``str`` → ``string``. Matching ignores case
    and surrounding spaces.

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


def _dtype(value: object, *, owner: str, role: str) -> str:
    try:
        return normalize_dtype(value)  # type: ignore[arg-type]  # any object is rejected inside
    except DefinitionError as exc:
        raise DefinitionError(f"{owner}: {role}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"([0-9]+)([smhdw])")
_UNIT_SECONDS = {"w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION_EXAMPLES = "'15m', '12h', '7d', '30d', '90d', '2w' or '90s'"


def parse_duration(value: str | timedelta) -> timedelta:
    """Parse a duration such as ``"30d"`` into a :class:`~datetime.timedelta`.

    Strings are ``<positive integer><unit>`` with unit ``s`` (seconds), ``m`` (minutes), ``h``
    (hours), ``d`` (days) or ``w`` (weeks) — no spaces, signs, decimals or compound forms.
    Timedeltas are returned unchanged if positive and a whole number of seconds (windows and
    time-to-live values are compared to timestamps at second precision).

    Args:
        value: A duration string or timedelta.

    Returns:
        A positive timedelta.

    Raises:
        DefinitionError: For ``"30x"``, ``"0d"``, ``"-5d"``, ``""``, ``"7.5d"``, ``"d"``, zero or
            negative timedeltas, sub-second parts, or other types.

    Example:
        >>> parse_duration("30d")
        datetime.timedelta(days=30)
        >>> parse_duration("15m")
        datetime.timedelta(seconds=900)
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0) or value.microseconds:
            raise DefinitionError(
                f"invalid duration {value!r}: it must be positive and a whole number of seconds. "
                f"Fix: use e.g. timedelta(days=30) or a string such as {_DURATION_EXAMPLES}."
            )
        return value
    match = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise DefinitionError(
            f"invalid duration {value!r}. Fix: write a positive whole number followed by one "
            f"unit of s, m, h, d or w, such as {_DURATION_EXAMPLES}."
        )
    try:
        return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    except OverflowError as exc:
        raise DefinitionError(
            f"invalid duration {value!r}: too large. Fix: use a duration below 999999999 days."
        ) from exc


def format_duration(value: timedelta) -> str:
    """Render a duration as its canonical, shortest string in days, hours, minutes or seconds.

    The largest of ``d``, ``h``, ``m``, ``s`` that divides the duration exactly is used. Weeks are
    accepted by :func:`parse_duration` but written in days, because windows are usually named that
    way (``"7d"``, ``"28d"``). ``parse_duration(format_duration(td)) == td`` always holds.

    Args:
        value: A positive timedelta of whole seconds.

    Returns:
        For example ``"7d"``, ``"12h"``, ``"15m"`` or ``"90s"``.

    Raises:
        DefinitionError: If the timedelta is not positive or has a sub-second part.

    Example:
        >>> format_duration(timedelta(weeks=1)), format_duration(timedelta(seconds=90))
        ('7d', '90s')
    """
    seconds = int(parse_duration(value).total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def _duration(value: object, *, owner: str, role: str) -> timedelta:
    try:
        return parse_duration(value)  # type: ignore[arg-type]  # any object is rejected inside
    except DefinitionError as exc:
        raise DefinitionError(f"{owner}: {role}: {exc}") from exc


def _optional_duration(value: timedelta | None) -> str | None:
    return None if value is None else format_duration(value)


# --------------------------------------------------------------------------------------------
# Immutable mappings
# --------------------------------------------------------------------------------------------

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


_NO_TAGS: FrozenMap[str, str] = FrozenMap()


def _tags(value: object, *, owner: str, role: str = "tags") -> FrozenMap[str, str]:
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


def _dtype_map(value: object, *, owner: str, role: str) -> FrozenMap[str, str]:
    """Validate a column -> dtype mapping, keeping the declared column order."""
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: {role} must be a mapping of column name to dtype, got {value!r}. "
            'Fix: pass e.g. {"customer_id": "string", "amount": "float64"}.'
        )
    return FrozenMap(
        (
            _check_name(column, owner=owner, role=f"{role} column"),
            _dtype(dtype, owner=owner, role=f"{role} column {column!r}"),
        )
        for column, dtype in value.items()
    )


def _pairs_to_json(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    # A list keeps the declared order through canonical JSON (sort_keys would reorder a dict).
    return [{"name": name, "dtype": dtype} for name, dtype in mapping.items()]


def _pairs_from_json(value: object, *, what: str) -> dict[str, str]:
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


# --------------------------------------------------------------------------------------------
# from_dict helpers
# --------------------------------------------------------------------------------------------


def _read(
    data: object,
    *,
    what: str,
    kind: str | None,
    required: tuple[str, ...],
    optional: tuple[str, ...],
) -> dict[str, Any]:
    """Check a serialised definition's shape: kind, no unknown keys, no missing keys."""
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


def _sequence(value: object, *, owner: str, role: str) -> tuple[Any, ...]:
    # A bare string is a Sequence too; iterating it would silently split it into characters.
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise DefinitionError(
            f"{owner}: {role} must be a list or tuple, got {value!r}. Fix: wrap it in a list."
        )
    return tuple(value)


# --------------------------------------------------------------------------------------------
# Entity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, init=False)
class Entity:
    """A business object that features describe, identified by one or more join keys.

    Rules: the name and each join key are safe identifiers; there is at least one join key; join
    keys are not reserved column names and not floating point (float equality makes joins
    unreliable). A plain list of key names means every key is a ``string``.

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
    """

    name: str
    join_keys: Mapping[str, str]
    description: str = ""
    tags: Mapping[str, str] = _NO_TAGS

    # An explicit __init__ because the constructor accepts a list of keys as well as a mapping,
    # while the attribute is always a mapping: a generated __init__ cannot type both.
    def __init__(
        self,
        *,
        name: str,
        join_keys: Mapping[str, str] | Sequence[str],
        description: str = "",
        tags: Mapping[str, str] = _NO_TAGS,
    ) -> None:
        owner = f"entity {name!r}"
        _check_name(name, owner=owner)
        if isinstance(join_keys, str):
            join_keys = [join_keys]
        if isinstance(join_keys, Mapping):
            raw_keys = list(join_keys.items())
        else:
            keys = _sequence(join_keys, owner=owner, role="join_keys")
            raw_keys = [(key, "string") for key in keys]
        if not raw_keys:
            raise DefinitionError(
                f"{owner}: has no join keys. Fix: pass join_keys, e.g. ['customer_id'] or "
                '{"customer_id": "string"}.'
            )
        keys_map: dict[str, str] = {}
        for key, dtype in raw_keys:
            key = _check_column_name(key, owner=owner, role="join key")
            if key.lower() in (k.lower() for k in keys_map):
                raise DefinitionError(
                    f"{owner}: join key {key!r} is listed twice. Fix: list it once."
                )
            dtype = _dtype(dtype, owner=owner, role=f"join key {key!r}")
            if dtype in ("float32", "float64"):
                raise DefinitionError(
                    f"{owner}: join key {key!r} has dtype {dtype}; floating-point keys do not join "
                    "reliably. Fix: use string, int32, int64, bool, timestamp or date."
                )
            keys_map[key] = dtype
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", FrozenMap(keys_map))
        object.__setattr__(
            self, "description", _check_str(description, owner=owner, role="description")
        )
        object.__setattr__(self, "tags", _tags(tags, owner=owner))

    @property
    def kind(self) -> str:
        """The serialisation kind, ``"entity"``."""
        return "entity"

    @property
    def join_key_names(self) -> tuple[str, ...]:
        """Join key column names in declared order."""
        return tuple(self.join_keys)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict (join keys as an ordered list).

        Returns:
            ``{"kind": "entity", "name", "join_keys": [{"name", "dtype"}...], "description",
            "tags"}``.

        Example:
            >>> Entity(name="customer", join_keys=["customer_id"]).to_dict()["join_keys"]
            [{'name': 'customer_id', 'dtype': 'string'}]
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "join_keys": _pairs_to_json(self.join_keys),
            "description": self.description,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        """Rebuild an entity from :meth:`to_dict` output.

        Args:
            data: The serialised entity; unknown keys are rejected.

        Returns:
            An entity equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> e = Entity(name="customer", join_keys=["customer_id"])
            >>> Entity.from_dict(e.to_dict()) == e
            True
        """
        values = _read(
            data,
            what="Entity.from_dict",
            kind="entity",
            required=("name", "join_keys"),
            optional=("description", "tags"),
        )
        join_keys = values["join_keys"]
        # A list of plain key names (all "string") is accepted as in the constructor.
        if not (isinstance(join_keys, list | tuple) and all(isinstance(k, str) for k in join_keys)):
            values["join_keys"] = _pairs_from_json(join_keys, what="Entity.from_dict")
        return cls(**values)


# --------------------------------------------------------------------------------------------
# Field
# --------------------------------------------------------------------------------------------

JSONScalar: TypeAlias = str | int | float | bool | None


def _check_default(value: object, dtype: str, *, owner: str) -> JSONScalar:
    """Check that a field default is a JSON scalar that fits the field's dtype."""
    if value is None:
        return None
    fits = False
    if dtype == "string":
        fits = isinstance(value, str)
    elif dtype in _INTEGER_DTYPES:
        bound = 2**31 if dtype == "int32" else 2**63
        fits = isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    elif dtype in ("float32", "float64"):
        fits = (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    elif dtype == "bool":
        fits = isinstance(value, bool)
    elif isinstance(value, str):
        parse_iso = datetime.fromisoformat if dtype == "timestamp" else date.fromisoformat
        try:
            parse_iso(value)
            fits = True
        except ValueError:
            fits = False
    if not fits:
        raise DefinitionError(
            f"{owner}: default {value!r} does not fit dtype {dtype}. Fix: use None or a "
            f"{_DEFAULT_EXAMPLES[dtype]}."
        )
    assert isinstance(value, str | int | float | bool)
    return value


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


@dataclass(frozen=True, kw_only=True)
class Field:
    """A feature column projected as-is from a source by a :class:`FeatureView`.

    Rules: the name is a safe, non-reserved identifier; the dtype is one of :data:`DTYPES` (aliases
    accepted); ``default`` is None or a JSON scalar that fits the dtype (timestamps and dates as
    ISO-8601 strings). The default is what serving and training return when an entity has no
    value within the view's time-to-live; None means the result stays null.

    Attributes:
        name: Feature name.
        dtype: Canonical dtype.
        description: Free text.
        default: Value used when no value is found.

    Example:
        >>> Field(name="age", dtype="int", default=-1)
        Field(name='age', dtype='int64', description='', default=-1)
    """

    name: str
    dtype: str
    description: str = ""
    default: JSONScalar = None

    def __post_init__(self) -> None:
        """Validate the field and normalise its dtype."""
        owner = f"field {self.name!r}"
        _check_column_name(self.name, owner=owner, role="name")
        object.__setattr__(self, "dtype", _dtype(self.dtype, owner=owner, role="dtype"))
        _check_str(self.description, owner=owner, role="description")
        _check_default(self.default, self.dtype, owner=owner)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict.

        Returns:
            ``{"name", "dtype", "description", "default"}``.

        Example:
            >>> Field(name="city", dtype="str").to_dict()
            {'name': 'city', 'dtype': 'string', 'description': '', 'default': None}
        """
        return {
            "name": self.name,
            "dtype": self.dtype,
            "description": self.description,
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Field:
        """Rebuild a field from :meth:`to_dict` output.

        Args:
            data: The serialised field; unknown keys are rejected.

        Returns:
            A field equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> Field.from_dict({"name": "age", "dtype": "int64"})
            Field(name='age', dtype='int64', description='', default=None)
        """
        values = _read(
            data,
            what="Field.from_dict",
            kind=None,
            required=("name", "dtype"),
            optional=("description", "default"),
        )
        return cls(**values)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------

_SOURCE_OPTIONAL = ("created_timestamp_column", "partition_column", "schema", "description")


def _validate_source_columns(
    owner: str,
    timestamp_column: object,
    created_timestamp_column: object,
    partition_column: object,
    schema: object,
    description: object,
) -> FrozenMap[str, str] | None:
    """Shared checks of Delta and Parquet sources; returns the normalised schema."""
    _check_name(timestamp_column, owner=owner, role="timestamp_column")
    if created_timestamp_column is not None:
        _check_name(created_timestamp_column, owner=owner, role="created_timestamp_column")
        if created_timestamp_column == timestamp_column:
            raise DefinitionError(
                f"{owner}: created_timestamp_column {created_timestamp_column!r} is the same as "
                "timestamp_column. Fix: set it to the column recording when a row was written, "
                "or leave it None."
            )
    if partition_column is not None:
        _check_name(partition_column, owner=owner, role="partition_column")
    _check_str(description, owner=owner, role="description")
    if schema is None:
        return None
    normalised = _dtype_map(schema, owner=owner, role="schema")
    for column, role, allowed in (
        (timestamp_column, "timestamp_column", ("timestamp", "date")),
        (created_timestamp_column, "created_timestamp_column", ("timestamp",)),
    ):
        declared = normalised.get(column) if isinstance(column, str) else None
        if declared is not None and declared not in allowed:
            raise DefinitionError(
                f"{owner}: {role} {column!r} is declared in the schema as {declared}. "
                f"Fix: declare it as {' or '.join(allowed)}, or choose another column."
            )
    return normalised


def _source_common_dict(
    source: DeltaSource | ParquetSource,
) -> dict[str, Any]:
    return {
        "timestamp_column": source.timestamp_column,
        "created_timestamp_column": source.created_timestamp_column,
        "partition_column": source.partition_column,
        "schema": None if source.schema is None else _pairs_to_json(source.schema),
        "description": source.description,
    }


def _source_values_from_dict(values: dict[str, Any], what: str) -> dict[str, Any]:
    if values.get("schema") is not None:
        values["schema"] = _pairs_from_json(values["schema"], what=what)
    return values


@dataclass(frozen=True, kw_only=True)
class DeltaSource:
    """Event rows stored in a Delta table, read by path or by catalog table name.

    Rules: exactly one of ``path`` and ``table``; ``table`` is ``name``, ``schema.name`` or
    ``catalog.schema.name`` with safe identifiers; column names are safe identifiers;
    ``created_timestamp_column`` differs from ``timestamp_column``. ``schema`` is optional and may
    be partial; when it lists the timestamp columns their dtypes must be timestamps (or a date for
    the event timestamp). Aggregation columns are checked against it by :func:`validate_objects`.

    Attributes:
        name: Unique source name.
        path: Storage path of the Delta table (absolute, relative, or a URI such as ``s3://``).
        table: Catalog table name.
        timestamp_column: When each event happened; used for windows and point-in-time joins.
        created_timestamp_column: When each row was written; breaks ties between rows with the
            same event time (latest write wins) and guards against late-arriving data.
        partition_column: Column the table is partitioned by, used for pruning.
        schema: Declared column -> dtype mapping (a :class:`FrozenMap`), or None if unknown.
        description: Free text.

    Example:
        >>> DeltaSource(name="orders", table="main.sales.orders", timestamp_column="ts").kind
        'delta_source'
    """

    name: str
    path: str | None = None
    table: str | None = None
    timestamp_column: str
    created_timestamp_column: str | None = None
    partition_column: str | None = None
    schema: Mapping[str, str] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the source and normalise its schema."""
        owner = f"delta source {self.name!r}"
        _check_name(self.name, owner=owner)
        if (self.path is None) == (self.table is None):
            raise DefinitionError(
                f"{owner}: exactly one of path and table must be set, got path={self.path!r} and "
                f"table={self.table!r}. Fix: pass path='...' for a storage location or "
                "table='catalog.schema.table' for a catalog table."
            )
        if self.path is not None and (not isinstance(self.path, str) or not self.path.strip()):
            raise DefinitionError(
                f"{owner}: path {self.path!r} is not a non-empty string. Fix: pass the table's "
                "storage path, e.g. 'data/delta/orders' or 's3://bucket/orders'."
            )
        if self.table is not None:
            parts = self.table.split(".") if isinstance(self.table, str) else []
            if not 1 <= len(parts) <= 3 or not all(is_safe_identifier(p) for p in parts):
                raise DefinitionError(
                    f"{owner}: table {self.table!r} is not a valid table name. Fix: use "
                    "'table', 'schema.table' or 'catalog.schema.table', each part: "
                    f"{_NAME_RULE}."
                )
        schema = _validate_source_columns(
            owner,
            self.timestamp_column,
            self.created_timestamp_column,
            self.partition_column,
            self.schema,
            self.description,
        )
        object.__setattr__(self, "schema", schema)

    @property
    def kind(self) -> str:
        """The serialisation kind, ``"delta_source"``."""
        return "delta_source"

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict (schema as an ordered list, or None).

        Returns:
            ``{"kind": "delta_source", "name", "path", "table", "timestamp_column", ...}``.

        Example:
            >>> DeltaSource(name="s", path="/d/s", timestamp_column="ts").to_dict()["path"]
            '/d/s'
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "table": self.table,
            **_source_common_dict(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeltaSource:
        """Rebuild a Delta source from :meth:`to_dict` output.

        Args:
            data: The serialised source; unknown keys are rejected.

        Returns:
            A source equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> s = DeltaSource(name="s", table="db.events", timestamp_column="ts")
            >>> DeltaSource.from_dict(s.to_dict()) == s
            True
        """
        what = "DeltaSource.from_dict"
        values = _read(
            data,
            what=what,
            kind="delta_source",
            required=("name", "timestamp_column"),
            optional=("path", "table", *_SOURCE_OPTIONAL),
        )
        return cls(**_source_values_from_dict(values, what))


@dataclass(frozen=True, kw_only=True)
class ParquetSource:
    """Event rows stored as Parquet files under a path (e.g. an export from another system).

    Rules are those of :class:`DeltaSource`, with a mandatory ``path`` and no catalog table.

    Attributes:
        name: Unique source name.
        path: Directory or file glob of the Parquet data.
        timestamp_column: When each event happened.
        created_timestamp_column: When each row was written (tie-breaker), or None.
        partition_column: Column the files are partitioned by, or None.
        schema: Declared column -> dtype mapping (a :class:`FrozenMap`), or None if unknown.
        description: Free text.

    Example:
        >>> ParquetSource(name="clicks", path="data/raw/clicks", timestamp_column="ts").kind
        'parquet_source'
    """

    name: str
    path: str
    timestamp_column: str
    created_timestamp_column: str | None = None
    partition_column: str | None = None
    schema: Mapping[str, str] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the source and normalise its schema."""
        owner = f"parquet source {self.name!r}"
        _check_name(self.name, owner=owner)
        if not isinstance(self.path, str) or not self.path.strip():
            raise DefinitionError(
                f"{owner}: path {self.path!r} is not a non-empty string. Fix: pass the location "
                "of the Parquet files, e.g. 'data/raw/clicks'."
            )
        schema = _validate_source_columns(
            owner,
            self.timestamp_column,
            self.created_timestamp_column,
            self.partition_column,
            self.schema,
            self.description,
        )
        object.__setattr__(self, "schema", schema)

    @property
    def kind(self) -> str:
        """The serialisation kind, ``"parquet_source"``."""
        return "parquet_source"

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict (schema as an ordered list, or None).

        Returns:
            ``{"kind": "parquet_source", "name", "path", "timestamp_column", ...}``.

        Example:
            >>> ParquetSource(name="s", path="/p", timestamp_column="ts").to_dict()["kind"]
            'parquet_source'
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            **_source_common_dict(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParquetSource:
        """Rebuild a Parquet source from :meth:`to_dict` output.

        Args:
            data: The serialised source; unknown keys are rejected.

        Returns:
            A source equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> s = ParquetSource(name="s", path="/p", timestamp_column="ts", schema={"x": "int"})
            >>> ParquetSource.from_dict(s.to_dict()) == s
            True
        """
        what = "ParquetSource.from_dict"
        values = _read(
            data,
            what=what,
            kind="parquet_source",
            required=("name", "path", "timestamp_column"),
            optional=_SOURCE_OPTIONAL,
        )
        return cls(**_source_values_from_dict(values, what))


Source: TypeAlias = DeltaSource | ParquetSource
"""Any source of event rows."""


def _source_from_dict(data: object, *, what: str) -> Source:
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "delta_source":
        return DeltaSource.from_dict(data)  # type: ignore[arg-type]  # checked to be a Mapping
    if kind == "parquet_source":
        return ParquetSource.from_dict(data)  # type: ignore[arg-type]  # checked to be a Mapping
    raise DefinitionError(
        f"{what}: source has kind {kind!r}. Fix: serialise the source with its to_dict(), which "
        "sets kind to 'delta_source' or 'parquet_source'."
    )


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------

AGG_FUNCTIONS = (
    "sum",
    "count",
    "mean",
    "min",
    "max",
    "stddev",
    "last",
    "count_distinct",
    "approx_count_distinct",
    "recency",
)
"""Aggregation functions a :class:`FeatureView` can compute over a window."""

# Functions whose result type does not depend on the input column.
_COUNT_LIKE = ("count", "count_distinct", "approx_count_distinct", "recency")
_ANY_EVENT_FUNCTIONS = ("count", "recency")  # the only ones that accept column "*"
_NEEDS_NUMERIC = ("sum", "mean", "stddev")
_ORDERABLE_DTYPES = (*NUMERIC_DTYPES, "timestamp", "date", "string")


@dataclass(frozen=True, kw_only=True, init=False)
class Aggregation:
    """One windowed aggregate of a source column, computed per entity at every cadence step.

    Functions (``function``):

    * ``sum``, ``mean``, ``stddev`` (sample): numeric columns; nulls are ignored.
    * ``min``, ``max``: numeric, timestamp, date or string columns.
    * ``count``: non-null values of ``column``, or all events for ``column="*"``.
    * ``count_distinct``, ``approx_count_distinct``: distinct non-null values; both are computed
      exactly by the engine (see :mod:`fstore_spark.offline.aggregation`), "approx" is accepted for
      compatibility with other feature stores.
    * ``last``: value of the latest event (by event time, then created time) in the window.
    * ``recency``: days (fractional) from the latest event with a non-null ``column`` — or any
      event for ``"*"`` — to the emission time.

    The window ``(t - window, t]`` ends at each emission time ``t``; ``window=None`` aggregates
    the entity's whole history up to ``t`` ("lifetime"). ``filter`` restricts the rows
    aggregated; it is parsed with :func:`fstore_spark.core.filters.parse_filter` and stored in
    canonical form.

    Attributes:
        column: Source column, or ``"*"`` (only for ``count`` and ``recency``).
        function: One of :data:`AGG_FUNCTIONS` (given in any case, stored lower-case).
        window: Window length, or None for lifetime.
        name: Output feature name; defaults to ``f"{function}_{column}_{window}"`` (``"events"``
            stands for ``"*"``, ``"lifetime"`` for no window), e.g. ``"sum_amount_30d"``.
        filter: Canonical filter text, or None.
        description: Free text.

    Example:
        >>> agg = Aggregation(column="amount", function="sum", window="30d",
        ...                   filter="status = 'settled'")
        >>> agg.name, agg.window, agg.output_dtype("int32")
        ('sum_amount_30d', datetime.timedelta(days=30), 'int64')
        >>> Aggregation(column="*", function="count").name
        'count_events_lifetime'
    """

    column: str
    function: str
    window: timedelta | None = None
    name: str
    filter: str | None = None
    description: str = ""

    # An explicit __init__ because the window may be given as a string while the attribute is
    # always a timedelta, and the name may be omitted while the attribute always holds one.
    def __init__(
        self,
        *,
        column: str,
        function: str,
        window: timedelta | str | None = None,
        name: str | None = None,
        filter: str | None = None,
        description: str = "",
    ) -> None:
        label = name if name is not None else f"{function}({column})"
        owner = f"aggregation {label!r}"
        if not isinstance(function, str) or function.lower() not in AGG_FUNCTIONS:
            raise DefinitionError(
                f"{owner}: unknown function {function!r}. Fix: use one of "
                f"{', '.join(AGG_FUNCTIONS)} (e.g. 'mean' rather than 'avg')."
            )
        function = function.lower()
        if column == "*":
            if function not in _ANY_EVENT_FUNCTIONS:
                raise DefinitionError(
                    f"{owner}: column '*' (any event) only works with count and recency, not "
                    f"{function}. Fix: name the source column to aggregate."
                )
        else:
            _check_name(column, owner=owner, role="column")
        window_td = None if window is None else _duration(window, owner=owner, role="window")
        if name is None:
            column_part = "events" if column == "*" else column
            window_part = "lifetime" if window_td is None else format_duration(window_td)
            name = f"{function}_{column_part}_{window_part}"
            if not is_safe_identifier(name):
                raise DefinitionError(
                    f"{owner}: the default name {name[:40]!r}... is longer than 128 characters. "
                    "Fix: pass a shorter name=..."
                )
        owner = f"aggregation {name!r}"
        _check_column_name(name, owner=owner, role="name")
        if filter is not None:
            _check_str(filter, owner=owner, role="filter")
            try:
                filter = to_text(parse_filter(filter))
            except DefinitionError as exc:
                raise DefinitionError(f"{owner}: {exc}") from exc
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "window", window_td)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "filter", filter)
        object.__setattr__(
            self, "description", _check_str(description, owner=owner, role="description")
        )

    @property
    def filter_expr(self) -> FilterExpr | None:
        """The parsed filter (an immutable AST for the Spark layer), or None without a filter."""
        return None if self.filter is None else parse_filter(self.filter)

    @property
    def is_lifetime(self) -> bool:
        """True when the aggregate covers the whole history (no window)."""
        return self.window is None

    def check_input_dtype(self, dtype: str) -> None:
        """Check that the aggregated column's dtype suits the function.

        ``sum``, ``mean`` and ``stddev`` need a numeric column; ``min`` and ``max`` a numeric,
        timestamp, date or string column; the other functions accept any dtype.

        Args:
            dtype: The column's dtype (aliases accepted).

        Raises:
            DefinitionError: If the function cannot aggregate that dtype, or the dtype is unknown.

        Example:
            >>> Aggregation(column="city", function="mean").check_input_dtype("string")
            Traceback (most recent call last):
            ...
            fstore_spark.errors.DefinitionError: aggregation 'mean_city_lifetime': function mean \
needs a numeric column, but 'city' is string. Fix: aggregate a numeric column (int32, int64, \
float32, float64) or use count, count_distinct, approx_count_distinct, last or recency.
        """
        owner = f"aggregation {self.name!r}"
        dtype = _dtype(dtype, owner=owner, role=f"dtype of column {self.column!r}")
        if self.function in _NEEDS_NUMERIC and dtype not in NUMERIC_DTYPES:
            raise DefinitionError(
                f"{owner}: function {self.function} needs a numeric column, but {self.column!r} "
                f"is {dtype}. Fix: aggregate a numeric column ({', '.join(NUMERIC_DTYPES)}) or "
                "use count, count_distinct, approx_count_distinct, last or recency."
            )
        if self.function in ("min", "max") and dtype not in _ORDERABLE_DTYPES:
            raise DefinitionError(
                f"{owner}: function {self.function} needs an orderable column, but "
                f"{self.column!r} is {dtype}. Fix: aggregate a column of type "
                f"{', '.join(_ORDERABLE_DTYPES)}, or use count or last."
            )

    def output_dtype(self, input_dtype: str | None) -> str:
        """Return the dtype of the aggregate given the dtype of its input column.

        ``sum`` gives ``int64`` for integer input, else ``float64``; the counts give ``int64``;
        ``mean``, ``stddev`` and ``recency`` give ``float64``; ``min``, ``max`` and ``last`` keep
        the input dtype.

        Args:
            input_dtype: The aggregated column's dtype, or None when unknown (or for ``"*"``);
                only the count-like functions (``count``, ``count_distinct``,
                ``approx_count_distinct``, ``recency``) resolve without it.

        Returns:
            One of :data:`DTYPES`.

        Raises:
            DefinitionError: If the input dtype does not suit the function, or is needed but
                unknown.

        Example:
            >>> Aggregation(column="amount", function="max").output_dtype("double")
            'float64'
            >>> Aggregation(column="*", function="recency").output_dtype(None)
            'float64'
        """
        if input_dtype is None:
            if self.function not in _COUNT_LIKE:
                raise DefinitionError(
                    f"aggregation {self.name!r}: the output type of {self.function} depends on "
                    f"the dtype of column {self.column!r}, which is unknown. Fix: declare the "
                    f"source schema, e.g. schema={{{self.column!r}: 'float64', ...}}."
                )
            return "float64" if self.function == "recency" else "int64"
        self.check_input_dtype(input_dtype)
        dtype = normalize_dtype(input_dtype)
        if self.function == "sum":
            return "int64" if dtype in _INTEGER_DTYPES else "float64"
        if self.function in ("count", "count_distinct", "approx_count_distinct"):
            return "int64"
        if self.function in ("mean", "stddev", "recency"):
            return "float64"
        return dtype  # min, max, last

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict (window as a duration string or None).

        Returns:
            ``{"column", "function", "window", "name", "filter", "description"}``.

        Example:
            >>> Aggregation(column="amount", function="sum", window="7d").to_dict()["window"]
            '7d'
        """
        return {
            "column": self.column,
            "function": self.function,
            "window": _optional_duration(self.window),
            "name": self.name,
            "filter": self.filter,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Aggregation:
        """Rebuild an aggregation from :meth:`to_dict` output.

        Args:
            data: The serialised aggregation; unknown keys are rejected.

        Returns:
            An aggregation equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> Aggregation.from_dict({"column": "amount", "function": "sum", "window": "30d"})
            ... # doctest: +ELLIPSIS
            Aggregation(column='amount', function='sum', window=datetime.timedelta(days=30), ...)
        """
        values = _read(
            data,
            what="Aggregation.from_dict",
            kind=None,
            required=("column", "function"),
            optional=("window", "name", "filter", "description"),
        )
        return cls(**values)


# --------------------------------------------------------------------------------------------
# FeatureView
# --------------------------------------------------------------------------------------------

_DEFAULT_CADENCE = timedelta(days=1)


@dataclass(frozen=True, kw_only=True, init=False)
class FeatureView:
    """A named group of features about one or more entities, computed from one source.

    A view either *projects* source columns (``features=[Field(...)]``) or *aggregates* events
    over windows (``aggregations=[Aggregation(...)]``), never both. Rules:

    * at least one entity (given as names or :class:`Entity` objects; only names are kept);
    * feature names are unique (ignoring case, as Spark does), safe, not reserved, and differ
      from the source's timestamp and created-timestamp columns;
    * ``ttl`` — how old a value may be and still be served or joined — is a positive duration, or
      None for no limit;
    * ``cadence`` is the step between emitted aggregate rows (default one day); every window must
      be a whole multiple of it, so that windows end on emission times. It only applies to
      aggregated views.

    Checks that need other definitions (unknown entities, feature names equal to join keys, the
    source schema) are done by :func:`validate_objects`.

    Attributes:
        name: Unique view name.
        entities: Entity names, in declared order.
        source: The source the view reads.
        ttl: Maximum age of a value at lookup time, or None for unlimited.
        features: Projected fields (empty for aggregated views).
        aggregations: Aggregations (empty for projection views).
        cadence: Emission step of aggregated views.
        tags: String labels, stored sorted by key.
        owner: Responsible person or team.
        description: Free text.
        online: Whether the view's latest values are synced to the online store.

    Example:
        >>> src = DeltaSource(name="profiles", path="/d/profiles", timestamp_column="updated_at")
        >>> view = FeatureView(name="profile", entities=["customer"], source=src, ttl="365d",
        ...                    features=[Field(name="age", dtype="int")])
        >>> view.feature_names, view.is_aggregated, view.ttl
        (('age',), False, datetime.timedelta(days=365))
    """

    name: str
    entities: tuple[str, ...]
    source: Source
    ttl: timedelta | None = None
    features: tuple[Field, ...] = ()
    aggregations: tuple[Aggregation, ...] = ()
    cadence: timedelta = _DEFAULT_CADENCE
    tags: Mapping[str, str] = _NO_TAGS
    owner: str = ""
    description: str = ""
    online: bool = True

    # An explicit __init__ because the constructor accepts friendlier inputs (Entity objects,
    # duration strings, lists) than the normalised attribute types it stores.
    def __init__(
        self,
        *,
        name: str,
        entities: Sequence[str | Entity],
        source: Source,
        ttl: timedelta | str | None = None,
        features: Sequence[Field] = (),
        aggregations: Sequence[Aggregation] = (),
        cadence: timedelta | str = _DEFAULT_CADENCE,
        tags: Mapping[str, str] = _NO_TAGS,
        owner: str = "",
        description: str = "",
        online: bool = True,
    ) -> None:
        label = f"feature view {name!r}"
        _check_name(name, owner=label)
        entity_names: list[str] = []
        for entity in _sequence(entities, owner=label, role="entities"):
            entity_name = entity.name if isinstance(entity, Entity) else entity
            _check_name(entity_name, owner=label, role="entity")
            if entity_name in entity_names:
                raise DefinitionError(
                    f"{label}: entity {entity_name!r} is listed twice. Fix: list it once."
                )
            entity_names.append(entity_name)
        if not entity_names:
            raise DefinitionError(
                f"{label}: has no entities. Fix: pass entities=['customer'] (the entities whose "
                "join keys identify the rows)."
            )
        if not isinstance(source, DeltaSource | ParquetSource):
            raise DefinitionError(
                f"{label}: source must be a DeltaSource or ParquetSource, got {source!r}. "
                "Fix: pass a source object."
            )
        ttl_td = None if ttl is None else _duration(ttl, owner=label, role="ttl")
        fields = _sequence(features, owner=label, role="features")
        aggs = _sequence(aggregations, owner=label, role="aggregations")
        for item, cls, role in [(f, Field, "features") for f in fields] + [
            (a, Aggregation, "aggregations") for a in aggs
        ]:
            if not isinstance(item, cls):
                raise DefinitionError(
                    f"{label}: {role} contains {item!r}, which is not a {cls.__name__}. "
                    f"Fix: pass {cls.__name__}(...) objects."
                )
        if fields and aggs:
            raise DefinitionError(
                f"{label}: has both features and aggregations; a view either projects features "
                "or aggregates events, not both. Fix: split it into two views."
            )
        if not fields and not aggs:
            raise DefinitionError(
                f"{label}: declares no features. Fix: pass features=[Field(...)] to project "
                "source columns or aggregations=[Aggregation(...)] to aggregate events."
            )
        cadence_td = _duration(cadence, owner=label, role="cadence")
        if fields and cadence_td != _DEFAULT_CADENCE:
            raise DefinitionError(
                f"{label}: cadence {format_duration(cadence_td)!r} only applies to aggregated "
                "views; a projection view serves source rows as they are. Fix: remove cadence."
            )
        for agg in aggs:
            if agg.window is not None and agg.window % cadence_td:
                raise DefinitionError(
                    f"{label}: aggregation {agg.name!r} has window "
                    f"{format_duration(agg.window)!r}, which is not a multiple of the cadence "
                    f"{format_duration(cadence_td)!r}, so windows would not end on emission "
                    "times. Fix: use a window that is a whole number of cadence steps, or a "
                    "smaller cadence."
                )
        seen: dict[str, str] = {}
        source_columns = [source.timestamp_column, source.created_timestamp_column]
        for feature_name in [f.name for f in fields] + [a.name for a in aggs]:
            # Case-insensitive, like Spark's default column resolution.
            previous = seen.get(feature_name.lower())
            if previous is not None:
                raise DefinitionError(
                    f"{label}: feature name {feature_name!r} is used twice"
                    + (
                        f" (as {previous!r} and {feature_name!r})"
                        if previous != feature_name
                        else ""
                    )
                    + ". Fix: give each feature a unique name."
                )
            seen[feature_name.lower()] = feature_name
            for column in source_columns:
                if column is not None and column.lower() == feature_name.lower():
                    raise DefinitionError(
                        f"{label}: feature {feature_name!r} has the same name as the timestamp "
                        f"column {column!r} of source {source.name!r}. Fix: rename the feature "
                        f"(e.g. {feature_name + '_value'!r})."
                    )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "entities", tuple(entity_names))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "ttl", ttl_td)
        object.__setattr__(self, "features", fields)
        object.__setattr__(self, "aggregations", aggs)
        object.__setattr__(self, "cadence", cadence_td)
        object.__setattr__(self, "tags", _tags(tags, owner=label))
        object.__setattr__(self, "owner", _check_str(owner, owner=label, role="owner"))
        object.__setattr__(
            self, "description", _check_str(description, owner=label, role="description")
        )
        object.__setattr__(self, "online", _check_bool(online, owner=label, role="online"))

    @property
    def kind(self) -> str:
        """The serialisation kind, ``"feature_view"``."""
        return "feature_view"

    @property
    def is_aggregated(self) -> bool:
        """True if the view aggregates events, False if it projects columns."""
        return bool(self.aggregations)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the view's features, in declared order."""
        if self.is_aggregated:
            return tuple(agg.name for agg in self.aggregations)
        return tuple(f.name for f in self.features)

    def feature_dtypes(self, source_schema: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return feature name -> dtype, in declared order.

        For projection views these are the fields' dtypes. For aggregated views the output dtypes
        are derived from the input column dtypes, taken from ``source_schema`` if given (e.g. the
        schema Spark reports), else from the source's declared schema.

        Args:
            source_schema: Column -> dtype of the source (aliases accepted), or None. Columns
                that no aggregation reads are ignored.

        Returns:
            An insertion-ordered dict of feature dtypes.

        Raises:
            DefinitionError: If a function needs an input dtype that is unknown (only count-like
                functions resolve without it) or does not suit the function.

        Example:
            >>> src = DeltaSource(name="tx", path="/d/tx", timestamp_column="ts")
            >>> view = FeatureView(name="v", entities=["customer"], source=src,
            ...                    aggregations=[Aggregation(column="amount", function="sum")])
            >>> view.feature_dtypes({"amount": "int"})
            {'sum_amount_lifetime': 'int64'}
        """
        if not self.is_aggregated:
            return {f.name: f.dtype for f in self.features}
        label = f"feature view {self.name!r}"
        schema = source_schema if source_schema is not None else self.source.schema
        # Only the aggregated columns' dtypes are normalised (by output_dtype), so a full schema
        # reported by Spark may contain other columns with any name or type.
        lowered = {column.lower(): dtype for column, dtype in (schema or {}).items()}
        result: dict[str, str] = {}
        for agg in self.aggregations:
            input_dtype = None if agg.column == "*" else lowered.get(agg.column.lower())
            try:
                result[agg.name] = agg.output_dtype(input_dtype)
            except DefinitionError as exc:
                raise DefinitionError(f"{label} (source {self.source.name!r}): {exc}") from exc
        return result

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict, with the source embedded.

        Returns:
            ``{"kind": "feature_view", "name", "entities", "source", "ttl", "features",
            "aggregations", "cadence", "tags", "owner", "description", "online"}``.

        Example:
            >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
            >>> FeatureView(name="v", entities=["c"], source=src,
            ...             features=[Field(name="x", dtype="int")]).to_dict()["ttl"] is None
            True
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "entities": list(self.entities),
            "source": self.source.to_dict(),
            "ttl": _optional_duration(self.ttl),
            "features": [f.to_dict() for f in self.features],
            "aggregations": [a.to_dict() for a in self.aggregations],
            "cadence": format_duration(self.cadence),
            "tags": dict(self.tags),
            "owner": self.owner,
            "description": self.description,
            "online": self.online,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureView:
        """Rebuild a feature view from :meth:`to_dict` output.

        Args:
            data: The serialised view; unknown keys are rejected.

        Returns:
            A view equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
            >>> v = FeatureView(name="v", entities=["c"], source=src, ttl="1d",
            ...                 features=[Field(name="x", dtype="int")])
            >>> FeatureView.from_dict(v.to_dict()) == v
            True
        """
        what = "FeatureView.from_dict"
        values = _read(
            data,
            what=what,
            kind="feature_view",
            required=("name", "entities", "source"),
            optional=(
                "ttl",
                "features",
                "aggregations",
                "cadence",
                "tags",
                "owner",
                "description",
                "online",
            ),
        )
        values["source"] = _source_from_dict(values["source"], what=what)
        if "features" in values:
            items = _sequence(values["features"], owner=what, role="features")
            values["features"] = [Field.from_dict(item) for item in items]
        if "aggregations" in values:
            items = _sequence(values["aggregations"], owner=what, role="aggregations")
            values["aggregations"] = [Aggregation.from_dict(item) for item in items]
        return cls(**values)


# --------------------------------------------------------------------------------------------
# Feature references and feature sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FeatureRef:
    """A reference ``view:feature`` to one feature, or ``view:*`` to all features of a view.

    Attributes:
        view: Feature view name (a safe identifier).
        feature: Feature name (a safe identifier) or ``"*"``.

    Example:
        >>> ref = FeatureRef.parse("customer_transaction_features:total_spent_30d")
        >>> ref.view, str(ref)
        ('customer_transaction_features', 'customer_transaction_features:total_spent_30d')
    """

    view: str
    feature: str

    def __post_init__(self) -> None:
        """Validate both parts."""
        text = f"{self.view}:{self.feature}"
        owner = f"feature reference {text!r}"
        _check_name(self.view, owner=owner, role="view name")
        if self.feature != "*":
            _check_name(self.feature, owner=owner, role="feature name")

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        """Parse ``"view:feature"`` or ``"view:*"``.

        Args:
            text: The reference; no spaces, exactly one colon.

        Returns:
            The reference.

        Raises:
            DefinitionError: If there is no colon or more than one, a part is empty, or a part
                is not a safe identifier (``*`` is allowed as the feature).

        Example:
            >>> FeatureRef.parse("profile:*")
            FeatureRef(view='profile', feature='*')
        """
        fix = "Fix: write it as 'view:feature' or 'view:*', e.g. 'customer_profile:age'."
        if not isinstance(text, str):
            raise DefinitionError(f"feature reference {text!r} is not a string. {fix}")
        if ":" not in text:
            raise DefinitionError(f"feature reference {text!r} has no colon. {fix}")
        view, _, feature = text.partition(":")
        if ":" in feature:
            raise DefinitionError(f"feature reference {text!r} has more than one colon. {fix}")
        if not view or not feature:
            raise DefinitionError(f"feature reference {text!r} has an empty part. {fix}")
        return cls(view=view, feature=feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


def _metadata(value: object, *, owner: str) -> FrozenMap[str, str | int | float | bool]:
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


_NO_METADATA: FrozenMap[str, str | int | float | bool] = FrozenMap()


@dataclass(frozen=True, kw_only=True)
class FeatureSet:
    """A named, ordered selection of features from one or more views, e.g. a model's inputs.

    Rules: at least one reference; each is ``view:feature`` or ``view:*`` (checked with
    :meth:`FeatureRef.parse`); none is listed twice. Whether the views and features exist, and
    whether two views contribute features with the same name, is checked by
    :func:`validate_objects` and :func:`resolve_feature_refs`.

    Attributes:
        name: Unique feature set name (may not equal a feature view name).
        features: Reference strings in declared order (a tuple).
        metadata: String keys to string, integer, finite float or bool values, sorted by key.
        description: Free text.

    Example:
        >>> fs = FeatureSet(name="churn_inputs",
        ...                 features=["customer_transaction_features:*", "profile:age"])
        >>> [str(ref) for ref in fs.refs]
        ['customer_transaction_features:*', 'profile:age']
    """

    name: str
    features: Sequence[str]
    metadata: Mapping[str, str | int | float | bool] = _NO_METADATA
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the references and normalise the containers."""
        owner = f"feature set {self.name!r}"
        _check_name(self.name, owner=owner)
        references = _sequence(self.features, owner=owner, role="features")
        if not references:
            raise DefinitionError(
                f"{owner}: selects no features. Fix: list references such as 'view:feature' or "
                "'view:*'."
            )
        canonical: list[str] = []
        for reference in references:
            try:
                text = str(FeatureRef.parse(reference))
            except DefinitionError as exc:
                raise DefinitionError(f"{owner}: {exc}") from exc
            if text in canonical:
                raise DefinitionError(
                    f"{owner}: feature reference {text!r} is listed twice. Fix: list it once."
                )
            canonical.append(text)
        object.__setattr__(self, "features", tuple(canonical))
        object.__setattr__(self, "metadata", _metadata(self.metadata, owner=owner))
        _check_str(self.description, owner=owner, role="description")

    @property
    def kind(self) -> str:
        """The serialisation kind, ``"feature_set"``."""
        return "feature_set"

    @property
    def refs(self) -> tuple[FeatureRef, ...]:
        """The references parsed, in declared order (``view:*`` not yet expanded)."""
        return tuple(FeatureRef.parse(text) for text in self.features)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-compatible dict.

        Returns:
            ``{"kind": "feature_set", "name", "features", "metadata", "description"}``.

        Example:
            >>> FeatureSet(name="s", features=["v:a"], metadata={"v": 1}).to_dict()["metadata"]
            {'v': 1}
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "features": list(self.features),
            "metadata": dict(self.metadata),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSet:
        """Rebuild a feature set from :meth:`to_dict` output.

        Args:
            data: The serialised feature set; unknown keys are rejected.

        Returns:
            A feature set equal to the one serialised.

        Raises:
            DefinitionError: On a malformed dict or invalid values.

        Example:
            >>> s = FeatureSet(name="s", features=["v:a", "w:*"])
            >>> FeatureSet.from_dict(s.to_dict()) == s
            True
        """
        values = _read(
            data,
            what="FeatureSet.from_dict",
            kind="feature_set",
            required=("name", "features"),
            optional=("metadata", "description"),
        )
        return cls(**values)


# --------------------------------------------------------------------------------------------
# Serialisation entry points
# --------------------------------------------------------------------------------------------

Definition: TypeAlias = Entity | DeltaSource | ParquetSource | FeatureView | FeatureSet
"""Any top-level definition (what the registry stores)."""

_KINDS: dict[
    str,
    type[Entity] | type[DeltaSource] | type[ParquetSource] | type[FeatureView] | type[FeatureSet],
] = {
    "entity": Entity,
    "delta_source": DeltaSource,
    "parquet_source": ParquetSource,
    "feature_view": FeatureView,
    "feature_set": FeatureSet,
}


class _Serialisable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def from_dict(data: Mapping[str, Any]) -> Definition:
    """Rebuild any top-level definition from its :meth:`to_dict` output, dispatching on ``kind``.

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
        obj: Any definition (or :class:`Field` / :class:`Aggregation`).

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


# --------------------------------------------------------------------------------------------
# Cross-object validation
# --------------------------------------------------------------------------------------------


def _collision_message(feature: str, first: FeatureRef, second: FeatureRef) -> str:
    return (
        f"feature {second.feature!r} is selected from both feature views {first.view!r} and "
        f"{second.view!r}; one training set cannot hold two columns named {feature!r}. Fix: "
        f"select only one of them (e.g. keep '{first.view}:{first.feature}' and list the "
        f"features of {second.view!r} you need instead of '{second.view}:*'), or rename one."
    )


def _resolve(
    refs: Sequence[str | FeatureRef], views: Mapping[str, FeatureView]
) -> tuple[list[FeatureRef], list[str]]:
    """Expand and check references; return the resolved list and the problems found."""
    resolved: list[FeatureRef] = []
    problems: list[str] = []
    owners: dict[str, FeatureRef] = {}  # lower-cased feature name -> the ref that provides it
    known_views = ", ".join(sorted(views)) or "(none)"
    for raw in refs:
        ref = raw if isinstance(raw, FeatureRef) else FeatureRef.parse(raw)
        view = views.get(ref.view)
        if view is None:
            problems.append(
                f"feature reference '{ref}': unknown feature view {ref.view!r}. "
                f"Fix: use one of the known feature views: {known_views}."
            )
            continue
        if ref.feature == "*":
            names = view.feature_names
        elif ref.feature in view.feature_names:
            names = (ref.feature,)
        else:
            problems.append(
                f"feature reference '{ref}': feature view {ref.view!r} has no feature "
                f"{ref.feature!r}. Fix: use one of its features: {', '.join(view.feature_names)}."
            )
            continue
        for name in names:
            candidate = FeatureRef(view=ref.view, feature=name)
            if candidate in resolved:
                continue  # listed twice, e.g. via 'v:*' and 'v:x': keep the first position
            # Case-insensitive: Spark would treat 'Age' and 'age' as the same column.
            previous = owners.get(name.lower())
            if previous is not None:
                problems.append(_collision_message(name, previous, candidate))
                continue
            owners[name.lower()] = candidate
            resolved.append(candidate)
    return resolved, problems


def resolve_feature_refs(
    refs: Sequence[str | FeatureRef], views: Mapping[str, FeatureView]
) -> list[FeatureRef]:
    """Expand and check feature references against the known views.

    ``view:*`` expands to the view's features in declared order; references are de-duplicated
    keeping the first occurrence; every view and feature must exist; and no two views may
    contribute features of the same name (ignoring case), since they would become two columns of
    the same name in a training set.

    Args:
        refs: Reference strings (or :class:`FeatureRef` objects) in the desired order.
        views: Feature views by name.

    Returns:
        Concrete references (no ``*``), in order.

    Raises:
        DefinitionError: Listing every unknown view, unknown feature and name collision, with the
            available views or features.

    Example:
        >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
        >>> v = FeatureView(name="profile", entities=["customer"], source=src,
        ...                 features=[Field(name="age", dtype="int"),
        ...                           Field(name="city", dtype="str")])
        >>> [str(r) for r in resolve_feature_refs(["profile:city", "profile:*"], {"profile": v})]
        ['profile:city', 'profile:age']
    """
    resolved, problems = _resolve(refs, views)
    if problems:
        raise DefinitionError(_problems_message("cannot resolve the feature references", problems))
    return resolved


def _problems_message(title: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"{title}: {len(problems)} problem(s):\n{lines}"


def _source_diff(first: Source, second: Source, labels: tuple[str, str]) -> str:
    """Describe how two same-named sources differ, e.g. "path: declared '/a', view's '/b'"."""
    a, b = first.to_dict(), second.to_dict()
    differences = [
        f"{key}: {labels[0]} {a.get(key)!r}, {labels[1]} {b.get(key)!r}"
        for key in a | b
        if a.get(key) != b.get(key)
    ]
    return "; ".join(differences)


def _kind_label(obj: Entity | FeatureView | FeatureSet) -> str:
    if isinstance(obj, Entity):
        return "entity"
    return "feature view" if isinstance(obj, FeatureView) else "feature set"


def _check_sources(sources: list[Source], views: list[FeatureView], problems: list[str]) -> None:
    declared: dict[str, Source] = {}
    for source in sources:
        previous = declared.setdefault(source.name, source)
        if previous != source:
            diff = _source_diff(previous, source, ("first", "second"))
            problems.append(
                f"source {source.name!r}: two different sources have this name ({diff}). "
                "Fix: give each source its own name, or keep a single definition."
            )
    embedded: dict[str, tuple[Source, str]] = {}
    for view in views:
        source = view.source
        declared_source = declared.get(source.name)
        if declared_source is not None:
            if declared_source != source:
                diff = _source_diff(declared_source, source, ("declared", "view's"))
                problems.append(
                    f"feature view {view.name!r}: its source {source.name!r} differs from the "
                    f"declared source of that name ({diff}). Fix: pass the declared source "
                    "object, or give the view's source its own name."
                )
            continue
        first_source, first_view = embedded.setdefault(source.name, (source, view.name))
        if first_source != source:
            diff = _source_diff(first_source, source, (repr(first_view), repr(view.name)))
            problems.append(
                f"source {source.name!r}: feature views {first_view!r} and {view.name!r} use two "
                f"different sources with this name ({diff}). Fix: give each source its own "
                "name, or use the same source object in both views."
            )


def _check_view(view: FeatureView, entities: Mapping[str, Entity], problems: list[str]) -> None:
    label = f"feature view {view.name!r}"
    known = ", ".join(sorted(entities)) or "(none declared)"
    features = {name.lower(): name for name in view.feature_names}
    for entity_name in view.entities:
        entity = entities.get(entity_name)
        if entity is None:
            problems.append(
                f"{label}: references unknown entity {entity_name!r}. Fix: declare "
                f"Entity(name={entity_name!r}, join_keys=[...]) or use one of the known "
                f"entities: {known}."
            )
            continue
        for key in entity.join_key_names:
            feature = features.get(key.lower())
            if feature is not None:
                problems.append(
                    f"{label}: feature {feature!r} has the same name as join key {key!r} of "
                    f"entity {entity_name!r}. Fix: rename the feature (e.g. "
                    f"{feature + '_value'!r})."
                )
    schema = view.source.schema
    if not view.is_aggregated or schema is None:
        return
    lowered = {column.lower(): dtype for column, dtype in schema.items()}
    declared_columns = ", ".join(schema)
    for agg in view.aggregations:
        referenced = [] if agg.column == "*" else [agg.column]
        expr = agg.filter_expr
        referenced += [] if expr is None else [c for c in columns(expr) if c not in referenced]
        missing = [column for column in referenced if column.lower() not in lowered]
        for column in missing:
            role = "aggregates column" if column == agg.column else "filters on column"
            problems.append(
                f"{label}: aggregation {agg.name!r} {role} {column!r}, which is not in the "
                f"declared schema of source {view.source.name!r} (columns: {declared_columns}). "
                "Fix: add the column to the source schema, or use an existing column."
            )
        if agg.column != "*" and agg.column.lower() in lowered:
            try:
                agg.check_input_dtype(lowered[agg.column.lower()])
            except DefinitionError as exc:
                problems.append(f"{label}: {exc}")


def validate_objects(
    objects: Iterable[Entity | DeltaSource | ParquetSource | FeatureView | FeatureSet],
) -> None:
    """Check a complete set of definitions against each other.

    Each definition is already valid on its own (checked at construction); this function checks
    what needs several of them:

    * names are unique within a kind (sources of both kinds share one namespace), and no feature
      view shares its name with a feature set;
    * a source name denotes one definition: a view's source must equal the declared source of
      that name (a source only embedded in views counts as declared);
    * views reference declared entities, and no feature is named like one of their join keys;
    * when a source declares a schema, aggregation and filter columns exist in it and suit the
      aggregation function;
    * feature sets reference existing views and features, with no feature name coming from two
      views.

    Args:
        objects: The definitions, e.g. everything a project declares.

    Raises:
        DefinitionError: One message listing every problem found, one per line, each naming the
            object and the fix.

    Example:
        >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
        >>> v = FeatureView(name="profile", entities=["customer"], source=src,
        ...                 features=[Field(name="age", dtype="int")])
        >>> validate_objects([v])
        Traceback (most recent call last):
        ...
        fstore_spark.errors.DefinitionError: invalid definitions: 1 problem(s):
          - feature view 'profile': references unknown entity 'customer'. Fix: declare \
Entity(name='customer', join_keys=[...]) or use one of the known entities: (none declared).
    """
    problems: list[str] = []
    entities: dict[str, Entity] = {}
    sources: list[Source] = []
    views: dict[str, FeatureView] = {}
    view_list: list[FeatureView] = []
    feature_sets: dict[str, FeatureSet] = {}
    set_list: list[FeatureSet] = []
    counts: dict[tuple[str, str], int] = {}
    for obj in objects:
        if isinstance(obj, DeltaSource | ParquetSource):
            sources.append(obj)
            continue
        if isinstance(obj, Entity):
            entities.setdefault(obj.name, obj)
        elif isinstance(obj, FeatureView):
            views.setdefault(obj.name, obj)
            view_list.append(obj)
        elif isinstance(obj, FeatureSet):
            feature_sets.setdefault(obj.name, obj)
            set_list.append(obj)
        else:
            problems.append(
                f"{obj!r} is not a definition. Fix: pass only Entity, DeltaSource, ParquetSource, "
                "FeatureView and FeatureSet objects."
            )
            continue
        key = (_kind_label(obj), obj.name)
        counts[key] = counts.get(key, 0) + 1
    for (kind, name), count in counts.items():
        if count > 1:
            problems.append(
                f"{kind} {name!r}: declared {count} times. Fix: give each {kind} a unique name, "
                "or remove the duplicates."
            )
    for name in views:
        if name in feature_sets:
            problems.append(
                f"feature view {name!r} and feature set {name!r} share a name. Fix: rename one; "
                "views and feature sets are looked up by name in the same namespace."
            )
    _check_sources(sources, view_list, problems)
    for view in view_list:
        _check_view(view, entities, problems)
    for feature_set in set_list:
        _, set_problems = _resolve(feature_set.refs, views)
        problems.extend(f"feature set {feature_set.name!r}: {p}" for p in set_problems)
    if problems:
        raise DefinitionError(_problems_message("invalid definitions", problems))
