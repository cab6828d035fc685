"""Everything the registry knows about one object, as plain JSON-ready data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fstore_spark.errors import NotFoundError
from fstore_spark.registry.registry import Registry

__all__ = ["describe"]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def describe(registry: Registry, name: str, category: str | None = None) -> dict[str, Any]:
    """One object found by name: its entry, its definition and its history.

    Raises:
        NotFoundError: no object of that name (the message lists the known names).
    """
    matches = [e for e in registry.list(category) if e.name == name]
    if not matches:
        known = ", ".join(sorted({e.name for e in registry.list()})) or "(none)"
        raise NotFoundError(f"nothing named {name!r} in the registry. Known: {known}.")
    e = matches[0]
    return {
        "category": e.category,
        "name": e.name,
        "version": e.version,
        "definition_hash": e.definition_hash,
        "created_at": _iso(e.created_at),
        "updated_at": _iso(e.updated_at),
        "applied_by": e.applied_by,
        "definition": e.definition,
        "history": [
            {**h, "updated_at": _iso(h["updated_at"])} for h in registry.history(e.category, e.name)
        ],
    }
