"""Feature set versions: create them pinned to Delta versions, and read them back.

A feature set version is written to the registry together with a ``feature_set_pins``
setting: the Delta version of each view's feature table when the version was created. A
feature set applied from a repo (no pins) reads, per view, the Delta version that was current
when the registry recorded it. Versions are numbered by the registry's change feed: a removed
set that is created again starts at version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fstore_spark.core import FeatureSet, definition_hash, resolve_feature_refs
from fstore_spark.core.feature_set_versions import FeatureSetVersion, parse_feature_set_id
from fstore_spark.errors import NotFoundError
from fstore_spark.lakehouse.tables import feature_table_path, table_version, table_version_at
from fstore_spark.registry.context import StoreContext
from fstore_spark.registry.snapshot import RegistrySnapshot

__all__ = ["FeatureSets", "feature_set_name"]


def feature_set_name(feature_set: str | FeatureSet | FeatureSetVersion) -> str:
    """The name in a feature set name, ``name@vN`` id, or feature set (version) object."""
    if not isinstance(feature_set, str):
        return feature_set.name
    return parse_feature_set_id(feature_set)[0]


class FeatureSets:
    """Creates feature set versions and reads them, with their pinned Delta versions."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def create(
        self,
        name: str,
        features: list[str],
        metadata: Mapping[str, str | int | float | bool] | None,
        description: str,
    ) -> FeatureSetVersion:
        """Register a new version pinned to each view's current Delta version (if changed).

        The same features, metadata and description as the latest version return that version
        unchanged. The set and its pins are one registry commit; references are validated
        before anything is written.
        """
        fs = FeatureSet(
            name=name, features=features, metadata=dict(metadata or {}), description=description
        )
        snap = self._ctx.latest()
        resolved = resolve_feature_refs(list(fs.features), snap.views)
        current = snap.entry("feature_set", name)
        digest = definition_hash(fs)
        if current is not None and current.definition_hash == digest:
            return self.version(name)
        pins = {
            v: table_version(self._ctx.spark, feature_table_path(self._ctx.root, v))
            for v in dict.fromkeys(r.view for r in resolved)
        }
        self._ctx.apply(
            [fs],
            settings={("feature_set_pins", name): {"definition_hash": digest, "views": pins}},
        )
        return self.version(name)

    def names_a_set(self, name: str) -> bool:
        """Whether ``name`` is a feature set id (``name@vN``) or a registered set's name."""
        return "@" in name or name in self._ctx.latest().feature_sets

    def pinned_features(
        self, feature_set: str | FeatureSet | FeatureSetVersion
    ) -> list[str] | None:
        """The features of the version an id names (``name@vN``, a version object), else None.

        A plain name (or a :class:`FeatureSet`) means the latest definition: None.
        """
        if isinstance(feature_set, FeatureSetVersion):
            return list(feature_set.features)
        if not isinstance(feature_set, str) or parse_feature_set_id(feature_set)[1] is None:
            return None
        return list(self.version(feature_set).features)

    def version(self, feature_set: str, version: int | None = None) -> FeatureSetVersion:
        """One version (default the latest, or the ``@vN`` of the id).

        Raises:
            NotFoundError: no such feature set or version.
        """
        name, ver = parse_feature_set_id(feature_set)
        ver = version if version is not None else ver
        index = self._index(name)
        if not index:
            self._ctx.registry.get("feature_set", name)  # raises NotFoundError listing sets
        if ver is None:
            ver = max(index)
        if ver not in index:
            raise NotFoundError(
                f"feature set {name!r} has no version {ver}; versions: "
                f"{', '.join(str(v) for v in sorted(index))}."
            )
        return self._read(name, ver, index[ver])

    def versions(self, name: str) -> list[FeatureSetVersion]:
        """Every version of a feature set, oldest first."""
        return [self._read(name, v, reg) for v, reg in sorted(self._index(name).items())]

    def _index(self, name: str) -> dict[int, int]:
        """Feature set version -> registry version that wrote it (from the change feed)."""
        index: dict[int, int] = {}
        for h in self._ctx.registry.history("feature_set", name):
            if h["change"] == "upsert":
                index[h["version"]] = h["registry_version"]
            else:  # removed: a later re-creation starts again at version 1
                index.clear()
        return index

    def _read(self, name: str, version: int, registry_version: int) -> FeatureSetVersion:
        snap = self._ctx.snapshot(registry_version)  # one read: the set, its pins, its views
        entry = snap.entry("feature_set", name)
        assert entry is not None  # the change feed says this version holds it
        fs: FeatureSet = entry.obj
        return FeatureSetVersion(
            name=name,
            version=version,
            features=tuple(fs.features),
            metadata=dict(fs.metadata),
            description=fs.description,
            view_versions=self._pins(snap, fs, entry.definition_hash, entry.updated_at),
            created_at=entry.updated_at,
            registry_version=registry_version,
        )

    def _pins(
        self, snap: RegistrySnapshot, fs: FeatureSet, digest: str, created: Any
    ) -> dict[str, int | None]:
        """The pinned Delta versions; for a set applied from a repo, those current at creation."""
        pins = snap.entry("feature_set_pins", fs.name)
        if pins is not None and pins.definition["definition_hash"] == digest:
            return dict(pins.definition["views"])
        refs = resolve_feature_refs(list(fs.features), snap.views)
        return {
            v: table_version_at(self._ctx.spark, feature_table_path(self._ctx.root, v), created)
            for v in dict.fromkeys(r.view for r in refs)
        }
