"""One read of the registry, and the answers every service derives from it.

A :class:`RegistrySnapshot` is the registry's content at one version: views, entities, feature
sets and settings, with the rules that combine them (a view's join keys come from its entities,
in declared order). It is the only place those rules live, so training sets, online reads and
A/B tests can never disagree about a view's keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fstore_spark.core import (
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    ParquetSource,
)
from fstore_spark.errors import NotFoundError
from fstore_spark.registry.registry import RegistryEntry

__all__ = ["RegistrySnapshot", "join_keys_of", "typed_join_keys_of"]


def typed_join_keys_of(view: FeatureView, entities: Mapping[str, Entity]) -> list[tuple[str, str]]:
    """``(column, dtype)`` of a view's join keys, from its entities, in declared order.

    A key shared by two entities appears once, where it first appears.

    Raises:
        NotFoundError: the view names an entity that is not registered.
    """
    keys: list[tuple[str, str]] = []
    for name in view.entities:
        if name not in entities:
            raise NotFoundError(f"feature view {view.name!r} refers to unknown entity {name!r}.")
        for key, dtype in entities[name].join_keys.items():
            if key not in [k for k, _ in keys]:
                keys.append((key, dtype))
    return keys


def join_keys_of(view: FeatureView, entities: Mapping[str, Entity]) -> list[str]:
    """Join key column names of a view (see :func:`typed_join_keys_of`)."""
    return [k for k, _ in typed_join_keys_of(view, entities)]


@dataclass(frozen=True)
class RegistrySnapshot:
    """The registry as of one version: definitions by category, settings, and derived keys.

    Attributes:
        version: Registry (Delta) version read; ``None`` before the first apply, or when the
            latest entries were read without their version (:meth:`StoreContext.latest`).
        entries: Every registry entry, as read.
    """

    version: int | None
    entries: tuple[RegistryEntry, ...]
    _by_key: dict[tuple[str, str], RegistryEntry] = field(init=False, repr=False, compare=False)
    _objects: dict[tuple[str, str], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key = {(e.category, e.name): e for e in self.entries}
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_objects", {})

    @classmethod
    def of(cls, version: int | None, entries: Iterable[RegistryEntry]) -> RegistrySnapshot:
        """A snapshot from entries read at ``version``."""
        return cls(version=version, entries=tuple(entries))

    def entry(self, category: str, name: str) -> RegistryEntry | None:
        """The entry of one object, or ``None``."""
        return self._by_key.get((category, name))

    def _objs(self, category: str) -> dict[str, Any]:
        """Decoded objects of a category by name (decoded once per snapshot)."""
        out = {}
        for e in self.entries:
            if e.category == category:
                key = (category, e.name)
                if key not in self._objects:
                    self._objects[key] = e.obj
                out[e.name] = self._objects[key]
        return out

    @property
    def views(self) -> dict[str, FeatureView]:
        """Feature views by name."""
        return self._objs("feature_view")

    @property
    def entities(self) -> dict[str, Entity]:
        """Entities by name."""
        return self._objs("entity")

    @property
    def feature_sets(self) -> dict[str, FeatureSet]:
        """Feature sets by name."""
        return self._objs("feature_set")

    @property
    def sources(self) -> dict[str, DeltaSource | ParquetSource]:
        """Data sources by name."""
        return self._objs("data_source")

    def settings(self, category: str) -> dict[str, dict[str, Any]]:
        """Setting entries of a category (``online_serving``, ``ab_test``...) by name."""
        return {e.name: dict(e.definition) for e in self.entries if e.category == category}

    def view(self, name: str) -> FeatureView:
        """A feature view by name.

        Raises:
            NotFoundError: no such view (the message lists the known ones).
        """
        views = self.views
        if name not in views:
            known = ", ".join(sorted(views)) or "(none)"
            raise NotFoundError(f"no feature view named {name!r}. Known: {known}.")
        return views[name]

    def join_keys(self, view: str | FeatureView) -> list[str]:
        """Join key columns of a view, in declared order."""
        fv = self.view(view) if isinstance(view, str) else view
        return join_keys_of(fv, self.entities)

    def typed_join_keys(self, view: str | FeatureView) -> list[tuple[str, str]]:
        """``(column, dtype)`` join keys of a view, in declared order."""
        fv = self.view(view) if isinstance(view, str) else view
        return typed_join_keys_of(fv, self.entities)

    def keys_by_view(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Join keys of each registered view among ``names``."""
        views = self.views
        return {v: join_keys_of(views[v], self.entities) for v in names if v in views}

    def view_versions(self) -> dict[str, tuple[int, str]]:
        """View name -> (registry object version, definition hash)."""
        return {
            e.name: (e.version, e.definition_hash)
            for e in self.entries
            if e.category == "feature_view"
        }
