"""``FeatureStore``: the user-facing entry point.

A store is a configuration (``conf/feature_store.yaml``), a Spark session (built lazily, or the
active one), and a registry of definitions in the lakehouse. Everything downstream reads
definitions from the registry, never from ad-hoc dicts.

Example::

    from fstore_spark import FeatureStore

    store = FeatureStore(repo_path="feature_repo")   # config: conf/feature_store.yaml
    print(store.plan())                               # what `apply` would change
    store.apply()                                     # register the repo's definitions
    view = store.get_feature_view("customer_transaction_features")
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from fstore_spark.config import FeatureStoreConfig, load_config
from fstore_spark.definitions import (
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    ParquetSource,
)
from fstore_spark.errors import ConfigError, NotFoundError, PointInTimeError
from fstore_spark.registry import Plan, Registry
from fstore_spark.repo import load_definitions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fstore_spark.materialization import MaterializationResult
    from fstore_spark.online_store import OnlineResponse, OnlineStore, ReadPlan
    from fstore_spark.online_sync import SyncResult
    from fstore_spark.training import HistoricalFeatures

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["FeatureStore"]


class FeatureStore:
    """A feature store project: configuration, Spark session and registry.

    Args:
        repo_path: Folder of Python definitions (a feature repo). When ``config`` is not given,
            the configuration is ``<repo_path>/feature_store.yaml`` if present, else
            ``$FSTORE_CONFIG`` or ``conf/feature_store.yaml``.
        config: A :class:`FeatureStoreConfig` or the path of a YAML file.
        spark: A SparkSession to use; default the active one or one built from the config.

    Example::

        store = FeatureStore(config="conf/feature_store.yaml")
        store.apply([customer, transactions, customer_features])
        store.list_feature_views()
    """

    def __init__(
        self,
        repo_path: str | os.PathLike[str] | None = None,
        config: FeatureStoreConfig | str | os.PathLike[str] | None = None,
        *,
        spark: SparkSession | None = None,
    ) -> None:
        """Load the configuration; the Spark session and registry are created lazily."""
        if isinstance(config, FeatureStoreConfig):
            cfg = config
        elif config is not None:
            cfg = load_config(config)
        elif repo_path is not None and Path(repo_path, "feature_store.yaml").is_file():
            cfg = load_config(Path(repo_path, "feature_store.yaml"))
        else:
            cfg = load_config()
        if repo_path is not None:
            cfg = cfg.model_copy(update={"repo_path": str(Path(repo_path).resolve())})
        self.config = cfg
        self._spark = spark
        self._registry: Registry | None = None
        self._online: OnlineStore | None = None  # online store (issue 7)
        self._serving: _ServingCatalog | None = None  # online store (issue 7)

    # ------------------------------------------------------------------ plumbing

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (the active one, or built from ``config.spark`` on first use)."""
        if self._spark is None:
            from fstore_spark.session import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    @property
    def registry(self) -> Registry:
        """The Delta-backed registry of this project."""
        if self._registry is None:
            self._registry = Registry(
                self.spark,
                self.config.registry_path,
                max_retries=self.config.registry.max_commit_retries,
            )
        return self._registry

    @property
    def project(self) -> str:
        """Project name."""
        return self.config.project

    def table_path(self, name: str) -> str:
        """Location of a project table (e.g. a feature view's Delta table) in the lakehouse."""
        return f"{self.config.project_root}/{name}"

    def load_definitions(self) -> list[Any]:
        """Definitions from the configured feature repo and YAML files.

        Raises:
            ConfigError: neither ``repo_path`` nor ``definitions`` is configured.
        """
        if self.config.repo_path is None and not self.config.definitions:
            raise ConfigError(
                "no definitions to load: set repo_path (a folder of Python definitions) or "
                "definitions (YAML files) in the config, or pass objects to plan/apply."
            )
        return load_definitions(self.config.repo_path, self.config.definitions)

    # ------------------------------------------------------------------ plan / apply

    def plan(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Diff definitions against the registry without writing.

        Args:
            objects: Definitions; default those of the feature repo / YAML files.
            prune: Remove registered objects that are not given; default ``True`` when the
                definitions come from the repo (it is the whole truth), else ``False``.
        """
        objs, do_prune = self._objects(objects, prune)
        return self.registry.plan(objs, prune=do_prune)

    def apply(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Validate and register definitions (one registry commit; none if nothing changed).

        Args:
            objects: Definitions; default those of the feature repo / YAML files.
            prune: As for :meth:`plan`.

        Returns:
            The applied plan.

        Raises:
            DefinitionError: invalid definitions; nothing is written.
        """
        objs, do_prune = self._objects(objects, prune)
        self._serving = None  # online store (issue 7): cached definitions are stale now
        return self.registry.apply(objs, prune=do_prune)

    def _objects(self, objects: list[Any] | None, prune: bool | None) -> tuple[list[Any], bool]:
        if objects is None:
            return self.load_definitions(), True if prune is None else prune
        return list(objects), bool(prune)

    # ------------------------------------------------------------------ reading definitions

    def get_feature_view(self, name: str, *, as_of_version: int | None = None) -> FeatureView:
        """A feature view by name, optionally as of a registry version.

        Raises:
            NotFoundError: no such view (the message lists the known views).
        """
        obj = self.registry.get("feature_view", name, as_of_version=as_of_version).obj
        assert isinstance(obj, FeatureView)
        return obj

    def list_feature_views(self, *, as_of_version: int | None = None) -> list[FeatureView]:
        """All feature views, sorted by name."""
        return [e.obj for e in self.registry.list("feature_view", as_of_version=as_of_version)]

    def get_feature_set(self, name: str, *, as_of_version: int | None = None) -> FeatureSet:
        """A feature set by name.

        Raises:
            NotFoundError: no such feature set.
        """
        obj = self.registry.get("feature_set", name, as_of_version=as_of_version).obj
        assert isinstance(obj, FeatureSet)
        return obj

    def list_feature_sets(self) -> list[FeatureSet]:
        """All feature sets, sorted by name."""
        return [e.obj for e in self.registry.list("feature_set")]

    def get_entity(self, name: str) -> Entity:
        """An entity by name."""
        obj = self.registry.get("entity", name).obj
        assert isinstance(obj, Entity)
        return obj

    def list_entities(self) -> list[Entity]:
        """All entities, sorted by name."""
        return [e.obj for e in self.registry.list("entity")]

    def get_data_source(self, name: str) -> DeltaSource | ParquetSource:
        """A data source by name."""
        obj = self.registry.get("data_source", name).obj
        assert isinstance(obj, DeltaSource | ParquetSource)
        return obj

    def describe(self, name: str, category: str | None = None) -> dict[str, Any]:
        """Everything the registry knows about one object, found by name.

        Args:
            name: Object name.
            category: Restrict the search to one category when names repeat across them.

        Returns:
            ``{"category", "name", "version", "definition_hash", "created_at", "updated_at",
            "applied_by", "definition", "history"}``.

        Raises:
            NotFoundError: no object of that name.
        """
        matches = [e for e in self.registry.list(category) if e.name == name]
        if not matches:
            known = ", ".join(sorted({e.name for e in self.registry.list()})) or "(none)"
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
                {**h, "updated_at": _iso(h["updated_at"])}
                for h in self.registry.history(e.category, e.name)
            ],
        }

    # ------------------------------------------------------------------ materialization

    def _join_keys(self, view: FeatureView) -> list[str]:
        keys: list[str] = []
        for ent in view.entities:
            for k in self.get_entity(ent).join_key_names:
                if k not in keys:
                    keys.append(k)
        return keys

    def materialize(
        self, view: str, start: datetime | str, end: datetime | str
    ) -> MaterializationResult:
        """Backfill a view's feature table for ``start <= feature_timestamp <= end``.

        One Delta commit; rerunning the same range gives the same rows (idempotent).
        See :mod:`fstore_spark.aggregation` for the window semantics.
        """
        from fstore_spark.materialization import backfill

        entry = self.registry.get("feature_view", view)
        fv = entry.obj
        return backfill(
            self.spark,
            self.config.project_root,
            fv,
            self._join_keys(fv),
            start,
            end,
            view_version=entry.version,
        )

    def materialize_incremental(
        self,
        view: str,
        *,
        end: datetime | str | None = None,
        lateness: timedelta | str | None = None,
    ) -> MaterializationResult:
        """Bring a view's feature table up to ``end`` (default now), touching only new data.

        Args:
            view: Feature view name.
            end: Last instant to cover; default now.
            lateness: How late an event may arrive and still be taken (default 2 days).
        """
        from fstore_spark.definitions import parse_duration
        from fstore_spark.materialization import DEFAULT_LATENESS, incremental

        entry = self.registry.get("feature_view", view)
        fv = entry.obj
        late = DEFAULT_LATENESS if lateness is None else parse_duration(lateness)
        return incremental(
            self.spark,
            self.config.project_root,
            fv,
            self._join_keys(fv),
            end=end,
            lateness=late,
            view_version=entry.version,
        )

    # ------------------------------------------------------------------ training sets

    def get_historical_features(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        *,
        feature_set: str | None = None,
        timestamp_column: str = "event_timestamp",
        as_of: dict[str, int | datetime | str] | None = None,
        full_feature_names: bool = False,
    ) -> HistoricalFeatures:
        """Point-in-time correct features for label rows (see :mod:`fstore_spark.asof`).

        Args:
            entity_df: Spark DataFrame, pandas DataFrame or table name with the join keys and
                ``timestamp_column``.
            features: ``view:feature`` / ``view:*`` references; or give ``feature_set``.
            feature_set: Name of a registered feature set.
            timestamp_column: Label time column (UTC instants).
            as_of: Per view, a Delta version or instant of its feature table to read.
            full_feature_names: Output ``view__feature`` column names.

        Returns:
            :class:`~fstore_spark.training.HistoricalFeatures` (``.to_spark()`` is lazy).
        """
        from fstore_spark.training import get_historical_features

        if (features is None) == (feature_set is None):
            raise PointInTimeError("give exactly one of features=[...] or feature_set=...")
        refs = (
            list(features)
            if features is not None
            else list(self.get_feature_set(str(feature_set)).features)
        )
        entries = {e.name: e for e in self.registry.list("feature_view")}
        views = {name: e.obj for name, e in entries.items()}
        wanted = {r.split(":", 1)[0] for r in refs}
        keys = {v: self._join_keys(views[v]) for v in wanted if v in views}
        return get_historical_features(
            self.spark,
            self.config.project_root,
            entity_df,
            refs,
            views,
            keys,
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            view_versions={n: (e.version, e.definition_hash) for n, e in entries.items()},
        )

    def get_training_features(
        self,
        feature_list: list[str],
        entity_df: Any,
        timestamp_column: str = "event_timestamp",
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> DataFrame:
        """Seed-style training set: labels with ``start_date <= ts < end_date``, lazily.

        Returns:
            The training set as a lazy Spark DataFrame.
        """
        from pyspark.sql import functions as F

        from fstore_spark.offline_store import to_utc
        from fstore_spark.training import to_spark_df

        labels = to_spark_df(self.spark, entity_df)
        ts = F.col(timestamp_column).cast("timestamp")
        if start_date is not None:
            labels = labels.where(ts >= F.lit(to_utc(start_date).replace(tzinfo=None)))
        if end_date is not None:
            labels = labels.where(ts < F.lit(to_utc(end_date).replace(tzinfo=None)))
        return self.get_historical_features(
            labels, feature_list, timestamp_column=timestamp_column
        ).to_spark()

    def read_view(
        self,
        view: str,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """A view's feature table, now or as of a Delta version / instant (lazy)."""
        from fstore_spark.offline_store import read_feature_table

        return read_feature_table(
            self.spark,
            self.config.project_root,
            view,
            as_of_version=as_of_version,
            as_of_timestamp=as_of_timestamp,
        )

    # ------------------------------------------------------------------ online store (issue 7)
    # Thin wrappers over fstore_spark.online_store / online_sync; definitions needed by reads are
    # cached in a _ServingCatalog (one registry read), dropped on apply/configure and by
    # refresh_online_cache(), so a read costs one Redis round trip and no Delta access.

    @property
    def online_store(self) -> OnlineStore:
        """The Redis online store of this project (connects lazily)."""
        if self._online is None:
            from fstore_spark.online_store import OnlineStore

            self._online = OnlineStore(self.config.online_store, self.project)
        return self._online

    def refresh_online_cache(self) -> None:
        """Re-read the definitions that online reads use (after another process applied)."""
        self._serving = None

    def _serving_catalog(self) -> _ServingCatalog:
        cat = self._serving
        if cat is None:
            cat = _ServingCatalog(self.registry.list())
            self._serving = cat
        return cat

    def configure_online_serving(
        self,
        feature_set: str | FeatureSet,
        update_frequency: timedelta | str = "1h",
        cache_ttl: timedelta | str | None = None,
    ) -> dict[str, Any]:
        """Store how a feature set is served online (a registry ``online_serving`` entry).

        ``update_frequency`` drives :meth:`sync_online_due` (views of the set not synced for
        that long are synced); ``cache_ttl`` sets the Redis expiry of the set's views
        (``PEXPIREAT`` = feature timestamp + cache_ttl, at most the view's ttl) and the max age
        of values read through the set.

        Example::

            store.configure_online_serving("churn_features_v1", update_frequency="1h",
                                           cache_ttl="30m")

        Raises:
            NotFoundError: no such feature set.
            DefinitionError: a duration is invalid.
        """
        from fstore_spark.definitions import format_duration, parse_duration

        name = feature_set if isinstance(feature_set, str) else feature_set.name
        self.get_feature_set(name)  # raises NotFoundError listing the known sets
        settings: dict[str, Any] = {
            "feature_set": name,
            "update_frequency": format_duration(parse_duration(update_frequency)),
            "cache_ttl": None if cache_ttl is None else format_duration(parse_duration(cache_ttl)),
        }
        self._serving = None
        self.registry.apply([], settings={("online_serving", name): settings})
        return settings

    def get_online_serving(self, feature_set: str) -> dict[str, Any]:
        """The online serving settings of a feature set.

        Raises:
            NotFoundError: the feature set has no online serving configuration.
        """
        return dict(self.registry.get("online_serving", feature_set).definition)

    @overload
    def sync_online(
        self,
        view: str,
        *,
        mode: str = ...,
        now: datetime | str | None = ...,
        partitions: int | None = ...,
    ) -> SyncResult: ...

    @overload
    def sync_online(
        self,
        view: None = ...,
        *,
        mode: str = ...,
        now: datetime | str | None = ...,
        partitions: int | None = ...,
    ) -> list[SyncResult]: ...

    def sync_online(
        self,
        view: str | None = None,
        *,
        mode: str = "incremental",
        now: datetime | str | None = None,
        partitions: int | None = None,
    ) -> SyncResult | list[SyncResult]:
        """Sync a view's latest values to Redis (all online views when ``view`` is None).

        See :mod:`fstore_spark.online_sync`: incremental via the change data feed by default,
        full reload into a new namespace on the first run or with ``mode="full"``.

        Returns:
            The run's :class:`~fstore_spark.online_sync.SyncResult` (a list for all views).
        """
        from fstore_spark.offline_store import to_utc
        from fstore_spark.online_sync import sync_view

        cat = self._serving_catalog()
        names = [view] if view is not None else [v for v in cat.views if cat.views[v].online]
        results = []
        for name in names:
            fv = cat.view(name)
            results.append(
                sync_view(
                    self.spark,
                    self.config.project_root,
                    fv,
                    cat.join_keys[name],
                    self.online_store,
                    mode=mode,
                    expire_after=cat.expire_after(name),
                    now=None if now is None else to_utc(now),
                    partitions=partitions,
                )
            )
        return results[0] if view is not None else results

    def sync_online_due(self, now: datetime | None = None) -> list[SyncResult]:
        """Sync the views of configured feature sets whose last sync is ``update_frequency`` old.

        Run it from cron or a scheduler (``fstore sync --due``); views never synced are due.
        """
        from fstore_spark.online_sync import sync_view

        cat = self._serving_catalog()
        now_dt = now or datetime.now(UTC)
        out: list[SyncResult] = []
        for name, every in cat.sync_frequency().items():
            st = self.online_store.state(name)
            last = st.synced_at_us
            if last is not None and (now_dt - _from_us(last)) < every:
                continue
            out.append(
                sync_view(
                    self.spark,
                    self.config.project_root,
                    cat.view(name),
                    cat.join_keys[name],
                    self.online_store,
                    expire_after=cat.expire_after(name),
                )
            )
        return out

    def get_online_features(
        self,
        features: list[str] | str | None = None,
        entity_rows: list[dict[str, Any]] | None = None,
        *,
        feature_set: str | None = None,
        entity_keys: list[Any] | None = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Latest feature values for entities, from Redis, in one pipelined round trip.

        Args:
            features: ``view:feature`` / ``view:*`` references, or a feature set name
                (seed 004: ``get_online_features(feature_set.name, entity_keys=[...])``).
            entity_rows: One dict per entity: join key -> value (or entity name -> value for
                a single-key entity, as in Feast: ``{"customer": "c1"}``).
            feature_set: Name of a registered feature set (instead of ``features``).
            entity_keys: Plain key values, when every requested view has the same single
                join key.
            full_feature_names: Name columns ``view__feature``.

        Returns:
            :class:`~fstore_spark.online_store.OnlineResponse` (``.to_dict()``,
            ``.to_pandas()``). Values older than the view's ttl (or the set's ``cache_ttl``)
            are null with status ``OUTSIDE_MAX_AGE``; unknown entities ``NOT_FOUND``.

        Raises:
            NotFoundError: unknown view, feature or feature set (the message lists known ones).
            EntityRowError: an entity row lacks a join key or has a wrongly typed value.
            OnlineStoreError: Redis is unreachable (within the connect timeout).

        Example::

            store.get_online_features(
                features=["customer_transaction_features:total_spent_30d"],
                entity_rows=[{"customer": "customer_123"}],
            ).to_dict()
        """
        from fstore_spark.errors import EntityRowError

        if isinstance(features, str):
            feature_set, features = features, None
        if (features is None) == (feature_set is None):
            raise EntityRowError("give exactly one of features=[...] or feature_set=...")
        cat = self._serving_catalog()
        plan = cat.plan(self.online_store, features, feature_set, full_feature_names)
        if entity_rows is None:
            if entity_keys is None:
                raise EntityRowError("give entity_rows=[{...}] (or entity_keys=[...]).")
            if len(plan.join_keys) != 1:
                raise EntityRowError(
                    f"entity_keys=[...] needs a single join key, but the request needs "
                    f"{', '.join(plan.join_keys)}. Fix: pass entity_rows=[{{...}}]."
                )
            key = plan.join_keys[0]
            entity_rows = [{key: v} for v in entity_keys]
        return self.online_store.read(plan, entity_rows)


# ---------------------------------------------------------------------- online store (issue 7)


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class _ServingCatalog:
    """Definitions online reads need, from one registry read, plus compiled read plans."""

    def __init__(self, entries: list[Any]) -> None:
        self.views: dict[str, FeatureView] = {}
        entities: dict[str, Entity] = {}
        self.feature_sets: dict[str, FeatureSet] = {}
        self.serving: dict[str, dict[str, Any]] = {}
        for e in entries:
            if e.category == "feature_view":
                self.views[e.name] = e.obj
            elif e.category == "entity":
                entities[e.name] = e.obj
            elif e.category == "feature_set":
                self.feature_sets[e.name] = e.obj
            elif e.category == "online_serving":
                self.serving[e.name] = dict(e.definition)
        self.join_keys: dict[str, list[tuple[str, str]]] = {}
        for name, v in self.views.items():
            keys: list[tuple[str, str]] = []
            for ent in v.entities:
                for k, t in entities[ent].join_keys.items():
                    if k not in [n for n, _ in keys]:
                        keys.append((k, t))
            self.join_keys[name] = keys
        self._plans: dict[tuple[Any, ...], ReadPlan] = {}

    def view(self, name: str) -> FeatureView:
        v = self.views.get(name)
        if v is None:
            known = ", ".join(sorted(self.views)) or "(none)"
            raise NotFoundError(f"no feature view named {name!r}. Known: {known}.")
        return v

    def _set_views(self, fs_name: str) -> list[str]:
        fs = self.feature_sets.get(fs_name)
        return [] if fs is None else list(dict.fromkeys(r.view for r in fs.refs))

    def expire_after(self, view: str) -> timedelta | None:
        """Redis expiry of a view: max cache_ttl of the sets serving it, at most its ttl."""
        from fstore_spark.definitions import parse_duration

        ttl = self.views[view].ttl
        ttls = [
            parse_duration(cfg["cache_ttl"])
            for name, cfg in self.serving.items()
            if cfg.get("cache_ttl") and view in self._set_views(name)
        ]
        if not ttls:
            return ttl
        longest = max(ttls)
        return longest if ttl is None else min(longest, ttl)

    def sync_frequency(self) -> dict[str, timedelta]:
        """View -> shortest update_frequency of the configured sets that include it."""
        from fstore_spark.definitions import parse_duration

        out: dict[str, timedelta] = {}
        for name, cfg in sorted(self.serving.items()):
            every = parse_duration(cfg["update_frequency"])
            for v in self._set_views(name):
                if v in self.views and self.views[v].online:
                    out[v] = min(out.get(v, every), every)
        return out

    def plan(
        self,
        online: OnlineStore,
        features: list[str] | None,
        feature_set: str | None,
        full_feature_names: bool,
    ) -> ReadPlan:
        from fstore_spark.definitions import FeatureRef, parse_duration, resolve_feature_refs
        from fstore_spark.errors import OnlineStoreError

        key = (tuple(features or ()), feature_set, full_feature_names)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        max_age: dict[str, timedelta | None] = {}
        if feature_set is not None:
            fs = self.feature_sets.get(feature_set)
            if fs is None:
                known = ", ".join(sorted(self.feature_sets)) or "(none)"
                raise NotFoundError(f"no feature set named {feature_set!r}. Known: {known}.")
            refs_in: list[str] = list(fs.features)
            cache_ttl = self.serving.get(feature_set, {}).get("cache_ttl")
            if cache_ttl:
                limit = parse_duration(cache_ttl)
                for v in self._set_views(feature_set):
                    ttl = self.views[v].ttl if v in self.views else None
                    max_age[v] = limit if ttl is None else min(limit, ttl)
        else:
            refs_in = list(features or [])
        for text in refs_in:
            ref = FeatureRef.parse(text) if isinstance(text, str) else text
            fv = self.views.get(ref.view)
            if fv is None:
                known = ", ".join(sorted(self.views)) or "(none)"
                raise NotFoundError(
                    f"feature reference '{ref}': no feature view {ref.view!r}. Known: {known}."
                )
            if ref.feature != "*" and ref.feature not in fv.feature_names:
                raise NotFoundError(
                    f"feature reference '{ref}': view {ref.view!r} has no feature "
                    f"{ref.feature!r}. Known: {', '.join(fv.feature_names)}."
                )
            if not fv.online:
                raise OnlineStoreError(
                    f"feature view {ref.view!r} is not served online (online=False). Fix: set "
                    "online=True, apply, and sync it."
                )
        refs = resolve_feature_refs(refs_in, self.views)
        plan = online.plan(
            refs,
            self.views,
            self.join_keys,
            entity_names={n: v.entities for n, v in self.views.items()},
            max_age=max_age or None,
            full_feature_names=full_feature_names,
        )
        self._plans[key] = plan
        return plan


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()
