"""Where a project's own tables live: paths under its root, or catalog tables.

By default every table the store writes is a Delta table at a path under the project root
(``<root>/features/<view>``, ``<root>/_tiles/<view>``, ``<root>/_registry``...). With
``lakehouse.schema`` (and optionally ``lakehouse.catalog``) configured, the same tables are
catalog tables named after those paths — ``<catalog>.<schema>.<project>_features_<view>``,
``..._tiles_<view>``, ``..._registry`` — created and read by name, so any session on the same
metastore (Unity Catalog, a Hive metastore) finds them.

The rest of the package keeps passing root-based locations: the store binds its root to its
catalog schema once (:func:`bind`), and every function of :mod:`fstore_spark.lakehouse` that
takes a location resolves it with :func:`resolve`. Sources stay where they are (a path, or a
``table`` name given in the source's definition): only the store's own tables move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "Location",
    "TableSpace",
    "bind",
    "create_schema",
    "quote_name",
    "resolve",
    "space_of",
]

# the folders under a project root that hold the store's own tables
_OWNED = (
    "features",
    "_tiles",
    "_registry",
    "_quarantine",
    "_statistics",
    "_monitoring",
    "_experiments",
    "_entity_snapshots",
)


@dataclass(frozen=True)
class TableSpace:
    """A catalog schema holding one project's tables, their names prefixed by the project."""

    catalog: str | None
    schema: str
    project: str

    @property
    def qualified_schema(self) -> str:
        """``catalog.schema`` (or ``schema``), each part quoted for SQL."""
        parts = [self.schema] if self.catalog is None else [self.catalog, self.schema]
        return quote_name(parts)

    def table(self, relative: str) -> str:
        """The quoted catalog name of the table at ``relative`` under the project root."""
        parts = [p.strip("_") for p in relative.strip("/").split("/")]
        name = "_".join([self.project, *parts]).lower()
        return self.qualified_schema + "." + quote_name([re.sub(r"[^0-9a-z_]+", "_", name)])


class Location(NamedTuple):
    """A resolved table location: a catalog name (``by_name``) or a path."""

    ref: str
    by_name: bool


_BOUND: dict[str, TableSpace] = {}


def quote_name(parts: list[str]) -> str:
    """Dot-joined SQL identifiers, each in backticks."""
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)


def bind(root: str, space: TableSpace | None) -> None:
    """Make the store's tables under ``root`` catalog tables of ``space`` (None: paths again)."""
    key = root.rstrip("/")
    if space is None:
        _BOUND.pop(key, None)
    else:
        _BOUND[key] = space


def space_of(root: str) -> TableSpace | None:
    """The catalog schema ``root`` is bound to, if any."""
    return _BOUND.get(root.rstrip("/"))


def resolve(location: str) -> Location:
    """The catalog name of a store table under a bound root, else the path unchanged."""
    for root, space in _BOUND.items():
        if location.startswith(root + "/"):
            relative = location[len(root) + 1 :]
            if relative.split("/", 1)[0] in _OWNED:
                return Location(space.table(relative), True)
    return Location(location, False)


def create_schema(spark: SparkSession, space: TableSpace) -> None:
    """Create the catalog schema of a table space unless it exists (the catalog must exist)."""
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {space.qualified_schema}")
