"""What every service of a store shares: configuration, Spark session, registry, snapshots.

The context builds the session and the registry lazily, hands out registry snapshots, and is
the one place that forgets cached definitions: every registry write goes through
:meth:`StoreContext.apply`, which drops the latest snapshot and every cache derived from it
(the online serving catalog, started A/B tests...). A service that caches something derived
from the registry keeps it in :meth:`StoreContext.cached`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from fstore_spark.lakehouse.names import TableSpace, bind, create_schema
from fstore_spark.registry.policy import CATEGORY as POLICY
from fstore_spark.registry.policy import Policies, reader
from fstore_spark.registry.registry import Plan, Registry, current_identity
from fstore_spark.registry.snapshot import RegistrySnapshot
from fstore_spark.registry.source_tables import check_against_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fstore_spark.config import FeatureStoreConfig

__all__ = ["StoreContext"]

_T = TypeVar("_T")
_POLICIES = "registry.policies"


class StoreContext:
    """Configuration, a lazily built Spark session and registry, and registry-derived caches.

    Args:
        config: The store's configuration.
        spark: A session to use; default the active one or one built from ``config.spark``.
    """

    def __init__(self, config: FeatureStoreConfig, spark: SparkSession | None = None) -> None:
        self.config = config
        self._spark = spark
        self._registry: Registry | None = None
        self._cache: dict[str, Any] = {}
        self._space = _table_space(config)
        bind(config.project_root, self._space)
        self._schema_ready = self._space is None
        self._identity: str | None = None

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (the active one, or built from ``config.spark`` on first use).

        With a catalog schema configured, the schema is created on first use.
        """
        if self._spark is None:
            from fstore_spark.session import get_spark

            self._spark = get_spark(self.config.spark)
        if not self._schema_ready and self._space is not None:
            create_schema(self._spark, self._space)
            self._schema_ready = True
        return self._spark

    @property
    def identity(self) -> str:
        """Who this store acts as, recorded with each change it makes (see ``current_identity``)."""
        if self._identity is None:
            on_databricks = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))
            spark = self.spark if on_databricks and not self.config.identity else None
            self._identity = current_identity(self.config.identity, spark)
        return self._identity

    @property
    def registry(self) -> Registry:
        """The Delta-backed registry of the project; its changes are recorded as ``identity``."""
        if self._registry is None:
            self._registry = Registry(
                self.spark,
                self.config.registry_path,
                max_retries=self.config.registry.max_commit_retries,
                user=self.identity,
                on_write=self.forget,
            )
        return self._registry

    def policies(self, snap: RegistrySnapshot | None = None) -> Policies:
        """The access policies in force (of ``snap`` when it is the latest registry state)."""
        if snap is not None:
            return Policies(snap.settings(POLICY))
        return self.cached(_POLICIES, lambda: Policies(self.latest().settings(POLICY)))

    def check_read(self, views: Iterable[str], snap: RegistrySnapshot | None = None) -> None:
        """Raise ``AccessDeniedError`` unless this identity may read ``views``."""
        self.policies(snap).check_read(views, reader(self.identity))

    def check_write(self, views: Iterable[str], doing: str) -> None:
        """Raise ``AccessDeniedError`` unless this identity owns ``views`` (when owned)."""
        self.policies().check_write(views, self.identity, doing)

    @property
    def root(self) -> str:
        """The project's folder in the lakehouse (``<lakehouse.root>/<project>``)."""
        return self.config.project_root

    def table_path(self, name: str) -> str:
        """Location of a project table in the lakehouse."""
        return f"{self.config.project_root}/{name}"

    def snapshot(self, as_of_version: int | None = None) -> RegistrySnapshot:
        """The registry now (a fresh, consistent read), or as of a registry version."""
        version = self.registry.version() if as_of_version is None else as_of_version
        if version is None:  # nothing applied yet
            return RegistrySnapshot.of(None, [])
        return RegistrySnapshot.of(version, self.registry.list(as_of_version=version))

    def latest(self) -> RegistrySnapshot:
        """The registry now, in one read, when its version number is not needed (``None``)."""
        return RegistrySnapshot.of(None, self.registry.list())

    def plan(self, objects: list[Any], *, prune: bool = False) -> Plan:
        """What :meth:`apply` would change, after the same checks against existing tables."""
        check_against_tables(self.spark, self.root, objects, lambda: self.latest().entities)
        return self.registry.plan(objects, prune=prune)

    def apply(
        self,
        objects: list[Any],
        *,
        prune: bool = False,
        settings: Mapping[tuple[str, str], Any] | None = None,
    ) -> Plan:
        """Write definitions and settings to the registry, then forget derived caches.

        Sources whose tables exist are checked against them first
        (:func:`~fstore_spark.registry.source_tables.check_against_tables`).
        """
        check_against_tables(self.spark, self.root, objects, lambda: self.latest().entities)
        try:
            return self.registry.apply(objects, prune=prune, settings=settings)
        finally:
            self.forget()

    def cached(self, key: str, build: Callable[[], _T]) -> _T:
        """A value derived from the registry, built once until the next :meth:`forget`."""
        if key not in self._cache:
            self._cache[key] = build()
        value: _T = self._cache[key]
        return value

    def forget(self) -> None:
        """Drop every cache derived from the registry (after a write, or another process's)."""
        self._cache.clear()


def _table_space(config: FeatureStoreConfig) -> TableSpace | None:
    """The catalog schema holding the project's tables, or None (tables are paths)."""
    lake = config.lakehouse
    if lake.schema_name is None:
        return None
    return TableSpace(catalog=lake.catalog, schema=lake.schema_name, project=config.project)
