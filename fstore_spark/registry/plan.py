"""Registry entries and plans: what an apply would change, computed without writing.

A plan compares the definitions to apply with the registry's current entries: each object is
added, changed (with the fields that differ and the views whose materialized data the change
invalidates), removed (only when pruning) or unchanged. The catalog the apply would leave is
validated as a whole first, so an invalid apply writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from fstore_spark.core import (
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    ParquetSource,
    definition_hash,
    from_dict,
    validate_objects,
)
from fstore_spark.errors import DefinitionError, RegistryError

__all__ = [
    "CATEGORIES",
    "DEFINITION_CATEGORIES",
    "Category",
    "Change",
    "Plan",
    "RegistryEntry",
    "category_of",
    "compute_plan",
    "definition_digest",
]

Category = Literal[
    "entity",
    "data_source",
    "feature_view",
    "feature_set",
    "online_serving",
    "feature_set_pins",
    "ab_test",
    "transformation",
    "schedule",
    "access_policy",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
DEFINITION_CATEGORIES = ("entity", "data_source", "feature_view", "feature_set")

# Fields of a feature view whose change makes already materialized feature tables wrong.
_MATERIALIZATION_KEYS = ("source", "entities", "aggregations", "cadence", "features")


def category_of(obj: Any) -> Category:
    """Return the registry category of a definition object.

    Raises:
        DefinitionError: ``obj`` is not a definition.
    """
    if isinstance(obj, Entity):
        return "entity"
    if isinstance(obj, DeltaSource | ParquetSource):
        return "data_source"
    if isinstance(obj, FeatureView):
        return "feature_view"
    if isinstance(obj, FeatureSet):
        return "feature_set"
    raise DefinitionError(
        f"cannot register {obj!r}: expected an Entity, DeltaSource, ParquetSource, FeatureView "
        "or FeatureSet."
    )


@dataclass(frozen=True)
class RegistryEntry:
    """One object as stored in the registry.

    Attributes:
        category: Registry category (``entity``, ``data_source``, ``feature_view``...).
        name: Object name, unique within its category.
        version: Per-object version, 1 for the first definition, +1 per change.
        definition: The decoded JSON definition (``to_dict()`` form).
        definition_hash: SHA-256 of the canonical definition.
        created_at: When version 1 was applied (UTC).
        updated_at: When this version was applied (UTC).
        applied_by: Who applied this version.
    """

    category: str
    name: str
    version: int
    definition: dict[str, Any]
    definition_hash: str
    created_at: datetime
    updated_at: datetime
    applied_by: str

    @property
    def obj(self) -> Any:
        """The definition object (``Entity``, ``FeatureView``...) or, for settings, the dict."""
        if self.category in DEFINITION_CATEGORIES:
            return from_dict(self.definition)
        return self.definition


@dataclass(frozen=True)
class Change:
    """One line of a :class:`Plan`.

    Attributes:
        action: ``add``, ``change``, ``remove`` or ``unchanged``.
        category: Registry category.
        name: Object name.
        old_version: Current version (``None`` for an add).
        new_version: Version after the apply (``None`` for a remove).
        changed_fields: Top-level definition fields that differ.
        invalidates: Whether already materialized feature data is no longer valid (a view's
            source, entities, aggregations, cadence or features changed, or a source a view
            reads changed), so the view must be backfilled again.
        definition: The new definition (``None`` for a remove).
    """

    action: Literal["add", "change", "remove", "unchanged"]
    category: str
    name: str
    old_version: int | None
    new_version: int | None
    changed_fields: tuple[str, ...] = ()
    invalidates: tuple[str, ...] = ()
    definition: dict[str, Any] | None = None

    def __str__(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-", "unchanged": " "}[self.action]
        ver = {
            "add": f"v{self.new_version}",
            "change": f"v{self.old_version} -> v{self.new_version}",
            "remove": f"v{self.old_version}",
            "unchanged": f"v{self.old_version}",
        }[self.action]
        text = f"{sign} {self.category} {self.name} ({ver})"
        if self.changed_fields:
            text += f" changed: {', '.join(self.changed_fields)}"
        if self.invalidates:
            text += f"  [invalidates materialized data of: {', '.join(self.invalidates)}]"
        return text


@dataclass(frozen=True)
class Plan:
    """The difference between the registry and a set of definitions.

    Attributes:
        changes: One :class:`Change` per object, in a stable order (category, name).
        registry_version: The Delta version of the registry the plan was computed from
            (``None`` when the registry does not exist yet).
    """

    changes: tuple[Change, ...]
    registry_version: int | None
    _expected: Mapping[tuple[str, str], int | None] = field(default_factory=dict, repr=False)

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would write anything."""
        return any(c.action != "unchanged" for c in self.changes)

    def of(self, action: str) -> list[Change]:
        """Changes with the given action (``add``, ``change``, ``remove``, ``unchanged``)."""
        return [c for c in self.changes if c.action == action]

    @property
    def invalidated_views(self) -> tuple[str, ...]:
        """Feature views whose materialized data the plan invalidates."""
        seen: dict[str, None] = {}
        for c in self.changes:
            for v in c.invalidates:
                seen.setdefault(v, None)
        return tuple(seen)

    def __str__(self) -> str:
        lines = [str(c) for c in self.changes if c.action != "unchanged"]
        counts = {a: len(self.of(a)) for a in ("add", "change", "remove", "unchanged")}
        summary = (
            f"Plan: {counts['add']} to add, {counts['change']} to change, "
            f"{counts['remove']} to remove, {counts['unchanged']} unchanged."
        )
        if not lines:
            return "No changes. " + summary
        if self.invalidated_views:
            summary += (
                " Materialized data invalidated for: " + ", ".join(self.invalidated_views) + "."
            )
        return "\n".join([*lines, summary])


def compute_plan(
    current: Mapping[tuple[str, str], RegistryEntry],
    registry_version: int | None,
    objects: list[Any],
    settings: Mapping[tuple[str, str], Mapping[str, Any]],
    prune: bool,
) -> Plan:
    """The plan that takes the registry from ``current`` to the given objects and settings.

    Raises:
        DefinitionError: an object is defined twice differently, or the resulting catalog is
            invalid.
        RegistryError: a settings key names a definition category.
    """
    desired = _desired(objects, settings)
    kept = _kept_by_history(current)
    final = _final_catalog(current, desired, prune, kept)
    validate_objects(
        [from_dict(d) for (cat, _), d in sorted(final.items()) if cat in DEFINITION_CATEGORIES]
    )
    views_by_source: dict[str, list[str]] = {}
    for (cat, name), d in final.items():
        if cat == "feature_view":
            views_by_source.setdefault(d["source"]["name"], []).append(name)
    changes: list[Change] = []
    expected: dict[tuple[str, str], int | None] = {}
    for key in sorted(set(current) | set(desired)):
        old = current.get(key)
        expected[key] = None if old is None else old.version
        change = _change(key, old, desired.get(key), prune and key not in kept, views_by_source)
        if change is not None:
            changes.append(change)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    changes.sort(key=lambda c: (order[c.category], c.name))  # type: ignore[index]
    return Plan(tuple(changes), registry_version, expected)


def _desired(
    objects: list[Any], settings: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The entries the apply asks for: definitions (with embedded sources) and settings."""
    desired: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[str] = []
    for obj in _with_embedded_sources(objects):
        key: tuple[str, str] = (category_of(obj), obj.name)
        d = obj.to_dict()
        if key in desired and desired[key] != d:
            problems.append(
                f"{key[0]} {key[1]!r} is defined twice with different definitions. "
                "Fix: give each a unique name or keep one."
            )
        desired[key] = d
    if problems:
        raise DefinitionError("\n".join(problems))
    for (cat, name), value in settings.items():
        if cat not in CATEGORIES or cat in DEFINITION_CATEGORIES:
            raise RegistryError(f"settings category {cat!r} is not a settings category.")
        desired[(cat, name)] = dict(value)
    return desired


def _kept_by_history(current: Mapping[tuple[str, str], RegistryEntry]) -> set[tuple[str, str]]:
    """Definitions a prune never removes: feature sets created with ``create_feature_set``.

    Their versions are pinned history (training sets and models refer to them); they are not
    the feature repo's to delete. A prune that would remove a view one of them uses fails
    validation instead.
    """
    return {("feature_set", name) for cat, name in current if cat == "feature_set_pins"}


def _final_catalog(
    current: Mapping[tuple[str, str], RegistryEntry],
    desired: Mapping[tuple[str, str], dict[str, Any]],
    prune: bool,
    kept: set[tuple[str, str]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The catalog after the apply: what stays plus what is applied."""
    final: dict[tuple[str, str], dict[str, Any]] = {}
    for key, entry in current.items():
        if prune and key[0] in DEFINITION_CATEGORIES and key not in desired and key not in kept:
            continue
        final[key] = entry.definition
    final.update(desired)
    return final


def _change(
    key: tuple[str, str],
    old: RegistryEntry | None,
    new: dict[str, Any] | None,
    prune: bool,
    views_by_source: Mapping[str, list[str]],
) -> Change | None:
    """One object's line of the plan (``None`` when it is neither given nor registered)."""
    cat, name = key
    if new is not None:
        if old is None:
            return Change("add", cat, name, None, 1, definition=new)
        if definition_digest(new) == old.definition_hash:
            return Change("unchanged", cat, name, old.version, old.version)
        fields = tuple(
            k for k in sorted(set(new) | set(old.definition)) if new.get(k) != old.definition.get(k)
        )
        return Change(
            "change",
            cat,
            name,
            old.version,
            old.version + 1,
            changed_fields=fields,
            invalidates=_invalidates(cat, name, fields, views_by_source),
            definition=new,
        )
    if old is None:
        return None
    if prune and cat in DEFINITION_CATEGORIES:
        gone = (name,) if cat == "feature_view" else ()
        return Change("remove", cat, name, old.version, None, invalidates=gone)
    return Change("unchanged", cat, name, old.version, old.version)


def definition_digest(d: Mapping[str, Any]) -> str:
    """:func:`definition_hash` of a definition already in its ``to_dict()`` form."""

    class _D:
        def to_dict(self) -> dict[str, Any]:
            return dict(d)

    return definition_hash(_D())


def _invalidates(
    category: str, name: str, fields: Sequence[str], views_by_source: Mapping[str, list[str]]
) -> tuple[str, ...]:
    if category == "feature_view" and any(f in _MATERIALIZATION_KEYS for f in fields):
        return (name,)
    if category == "data_source" and any(f != "description" for f in fields):
        return tuple(sorted(views_by_source.get(name, [])))
    return ()


def _with_embedded_sources(objects: Iterable[Any]) -> list[Any]:
    """Objects plus the sources embedded in the views, each once, in first-seen order."""
    out: list[Any] = []
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        items = [obj.source, obj] if isinstance(obj, FeatureView) else [obj]
        for item in items:
            key = (category_of(item), item.name, definition_digest(item.to_dict()))
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out
