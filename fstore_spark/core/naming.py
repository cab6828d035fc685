"""Names and plain-value checks shared by every definition.

Every object, column and feature name must be a *safe identifier*: usable as a Spark column name
without quoting. Feature and join-key names additionally may not collide with the columns the
store adds itself. The private ``check_*`` helpers raise :class:`DefinitionError` messages that
name the offending object (``owner``) and attribute (``role``) and say how to fix the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fstore_spark.errors import DefinitionError

__all__ = [
    "RESERVED_COLUMNS",
    "RESERVED_PREFIX",
    "SAFE_IDENTIFIER_PATTERN",
    "is_reserved_column",
    "is_safe_identifier",
]

SAFE_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""Pattern every column, feature and object name must match (ASCII, at most 128 characters)."""

# fullmatch on the unanchored body: ``$`` in SAFE_IDENTIFIER_PATTERN would also match before a
# trailing newline, which would let "amount\n" through.
_SAFE_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

RESERVED_COLUMNS = ("feature_timestamp", "created_timestamp")
"""Column names the store adds to feature tables; features and join keys may not use them."""

RESERVED_PREFIX = "_fs_"
"""Prefix of internal columns; no feature or join key may start with it."""

NAME_RULE = (
    "use 1 to 128 ASCII letters, digits and underscores, not starting with a digit "
    f"(pattern {SAFE_IDENTIFIER_PATTERN})"
)
"""How to write a valid name, quoted by error messages."""


def is_safe_identifier(value: object) -> bool:
    """Tell whether ``value`` is a string matching :data:`SAFE_IDENTIFIER_PATTERN`.

    Names that pass can be used as Spark column names without quoting, which is why every name in
    a definition must pass.

    Args:
        value: Any object; non-strings are simply not safe.

    Returns:
        True for strings such as ``"amount"`` or ``"_x1"``; False for ``"a b"``, ``"1a"``, ``""``.

    Example:
        >>> is_safe_identifier("customer_id"), is_safe_identifier("customer-id")
        (True, False)
    """
    return isinstance(value, str) and _SAFE_IDENTIFIER_RE.fullmatch(value) is not None


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


def check_name(value: object, *, owner: str, role: str = "name") -> str:
    """Return ``value`` if it is a safe identifier, else raise naming the owner and role."""
    if not is_safe_identifier(value):
        raise DefinitionError(
            f"{owner}: {role} {value!r} is not a safe identifier. Fix: {NAME_RULE}."
        )
    assert isinstance(value, str)  # narrowed by is_safe_identifier
    return value


def check_column_name(value: object, *, owner: str, role: str) -> str:
    """Check a name that becomes a column of a feature table (feature or join key)."""
    name = check_name(value, owner=owner, role=role)
    if is_reserved_column(name):
        raise DefinitionError(
            f"{owner}: {role} {name!r} is reserved. Fix: rename it; "
            f"{', '.join(repr(c) for c in RESERVED_COLUMNS)} and names starting with "
            f"{RESERVED_PREFIX!r} are columns the feature store adds itself."
        )
    return name


def check_str(value: object, *, owner: str, role: str) -> str:
    """Return ``value`` if it is a string (descriptions, owners, filters)."""
    if not isinstance(value, str):
        raise DefinitionError(
            f"{owner}: {role} must be a string, got {type(value).__name__} {value!r}. "
            "Fix: pass a string."
        )
    return value


def check_bool(value: object, *, owner: str, role: str) -> bool:
    """Return ``value`` if it is exactly True or False (not a truthy stand-in such as 1)."""
    if not isinstance(value, bool):
        raise DefinitionError(
            f"{owner}: {role} must be True or False, got {value!r}. Fix: pass a bool."
        )
    return value


def check_sequence(value: object, *, owner: str, role: str) -> tuple[Any, ...]:
    """Return a list or tuple as a tuple, rejecting strings and other non-sequences."""
    # A bare string is a Sequence too; iterating it would silently split it into characters.
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise DefinitionError(
            f"{owner}: {role} must be a list or tuple, got {value!r}. Fix: wrap it in a list."
        )
    return tuple(value)
