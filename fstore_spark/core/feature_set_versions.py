"""Feature set versions as plain data: the ``name@vN`` id and what a version pins.

A feature set's version increases when its features or metadata change; each version records,
per view, the Delta version of the feature table that was current when it was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fstore_spark.errors import DefinitionError

__all__ = ["FeatureSetVersion", "parse_feature_set_id"]


def parse_feature_set_id(ref: str) -> tuple[str, int | None]:
    """Split ``"name"`` or ``"name@v3"`` into ``(name, version or None)``.

    Raises:
        DefinitionError: a malformed version suffix.
    """
    if "@" not in ref:
        return ref, None
    name, _, ver = ref.partition("@")
    text = ver[1:] if ver[:1] in ("v", "V") else ver
    if not text.isdigit() or int(text) < 1:
        raise DefinitionError(
            f"feature set id {ref!r}: expected 'name' or 'name@v<N>' with N >= 1."
        )
    return name, int(text)


@dataclass(frozen=True)
class FeatureSetVersion:
    """One version of a feature set, with the Delta version of every view it reads.

    A feature set's version increases when its features or metadata change
    (:meth:`fstore_spark.FeatureStore.create_feature_set`); each version records, per view,
    the Delta version of the feature table that was current when the version was created
    (``None`` for a view not yet materialized then: its latest data is read). Training sets built
    from a version read those Delta versions, so the same version gives the same features.

    Attributes:
        name: Feature set name.
        version: Feature set version (1, 2, ...).
        features: Feature references, in order.
        metadata: Free metadata (author, purpose...).
        description: Free text.
        view_versions: View name to pinned Delta version of its feature table.
        created_at: When this version was created (UTC).
        registry_version: Registry (Delta) version that holds this feature set version.
    """

    name: str
    version: int
    features: tuple[str, ...]
    metadata: Mapping[str, Any]
    description: str
    view_versions: Mapping[str, int | None]
    created_at: datetime | None
    registry_version: int | None

    @property
    def id(self) -> str:
        """``name@v<version>``: accepted wherever a feature set is named."""
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "features": list(self.features),
            "metadata": dict(self.metadata),
            "description": self.description,
            "view_versions": dict(self.view_versions),
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "registry_version": self.registry_version,
        }
