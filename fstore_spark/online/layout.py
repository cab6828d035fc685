r"""Key names in Redis: one namespace pointer, state and lease per view, one hash per entity.

Keys (``P`` = ``online_store.key_prefix``, ``proj`` = project, ``view`` = feature view)::

    P:proj:view:_ns            STRING  current namespace (an integer) -- the pointer key
    P:proj:view:_meta          HASH    sync state: version, as_of, ns_seq, pending_* ...
    P:proj:view:_lock          STRING  lease of the running sync job
    P:proj:view:<ns>:<entity>  HASH    one entity's latest values in namespace <ns>

One hash per (project, view, entity) -- per view, so every view has its own expiry. Fields are
the feature names (a null value is an *absent* field) plus ``@ts`` (feature timestamp, epoch
microseconds) and ``@v`` (the Delta version of the feature table the value was synced from).
``<entity>`` is the join key value (string as UTF-8, integers in decimal, booleans
``true``/``false``, dates ISO ``YYYY-MM-DD``, timestamps epoch micros); composite keys are the
parts in declared order joined by ``|``, with ``\\`` and ``|`` inside strings escaped by ``\\``.

A full reload writes a new namespace and then flips the pointer key, so readers switch from
one complete snapshot to the next atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fstore_spark.online.codec import timestamp_to_us

__all__ = ["TS_FIELD", "VERSION_FIELD", "KeyLayout", "encode_entity_key", "glob_escape"]

TS_FIELD = b"@ts"
"""Hash field of the feature timestamp (epoch micros) of an entity's values."""

VERSION_FIELD = b"@v"
"""Hash field of the Delta version the entity's values were synced from."""


@dataclass(frozen=True)
class KeyLayout:
    """Key names of a project in Redis (see the module docstring).

    Example:
        >>> k = KeyLayout("fstore", "demo")
        >>> k.data_prefix("profile", 3)
        b'fstore:demo:profile:3:'
        >>> k.pointer_key("profile"), k.meta_key("profile")
        (b'fstore:demo:profile:_ns', b'fstore:demo:profile:_meta')
    """

    prefix: str
    project: str

    def view_base(self, view: str) -> bytes:
        """``P:proj:view:``."""
        return f"{self.prefix}:{self.project}:{view}:".encode()

    def pointer_key(self, view: str) -> bytes:
        """The key holding the view's current namespace."""
        return self.view_base(view) + b"_ns"

    def meta_key(self, view: str) -> bytes:
        """The hash holding the view's sync state."""
        return self.view_base(view) + b"_meta"

    def lock_key(self, view: str) -> bytes:
        """The lease key of a running sync of the view."""
        return self.view_base(view) + b"_lock"

    def data_prefix(self, view: str, ns: int | str | bytes) -> bytes:
        """Prefix of the view's entity keys in namespace ``ns``."""
        ns_b = ns if isinstance(ns, bytes) else str(ns).encode()
        return self.view_base(view) + ns_b + b":"


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("|", "\\|")


def _key_part(value: Any, dtype: str) -> str:
    """One join key value as text (see the module docstring); TypeError on a wrong type."""
    if dtype == "string":
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if dtype in ("int32", "int64"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return str(int(value))
    if dtype == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {type(value).__name__}")
        return "true" if value else "false"
    if dtype == "date":
        d = date.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(d, datetime) or not isinstance(d, date):
            raise TypeError(f"expected a date, got {type(value).__name__}")
        return d.isoformat()
    if dtype == "timestamp":
        return str(timestamp_to_us(value))
    raise TypeError(f"join keys of dtype {dtype} are not supported")


def encode_entity_key(values: Sequence[Any], dtypes: Sequence[str]) -> bytes:
    r"""Encode join key values (declared order) as the ``<entity>`` part of a key.

    Example:
        >>> encode_entity_key(["c1"], ["string"])
        b'c1'
        >>> encode_entity_key(["a|b", 7], ["string", "int64"])
        b'a\\|b|7'

    Raises:
        TypeError, ValueError: a value does not have its join key's dtype.
    """
    if len(values) == 1:
        return _key_part(values[0], dtypes[0]).encode()
    return "|".join(
        _escape(_key_part(v, t)) if t == "string" else _key_part(v, t)
        for v, t in zip(values, dtypes, strict=True)
    ).encode()


def glob_escape(b: bytes) -> bytes:
    r"""Escape a key prefix for a Redis ``SCAN MATCH`` glob (``*?[]\`` are special).

    Example:
        >>> glob_escape(b"p:v*:1:")
        b'p:v\\*:1:'
    """
    out = bytearray()
    for ch in b:
        if ch in b"*?[]\\":
            out += b"\\"
        out.append(ch)
    return bytes(out)
