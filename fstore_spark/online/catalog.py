"""Online serving for a store: what to sync, how long values live, and one-round-trip reads.

Online reads must not touch Delta: the definitions they need are read from the registry once
into a :class:`ServingCatalog` (views, join keys, feature sets, ``online_serving`` settings)
with compiled read plans, cached in the store context until the registry changes (any write
through the context) or :meth:`OnlineServing.refresh` is called (after another process applied).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import (
    FeatureRef,
    FeatureView,
    format_duration,
    parse_duration,
    resolve_feature_refs,
)
from fstore_spark.errors import EntityRowError, NotFoundError, NotServedError
from fstore_spark.lakehouse.tables import to_utc
from fstore_spark.registry.context import StoreContext
from fstore_spark.registry.policy import CATEGORY as POLICY
from fstore_spark.registry.policy import Policies, reader
from fstore_spark.registry.snapshot import RegistrySnapshot

if TYPE_CHECKING:
    from fstore_spark.online.client import OnlineResponse, OnlineStore, ReadPlan
    from fstore_spark.online.sync import SyncResult

__all__ = ["OnlineServing", "ServingCatalog"]

_CATALOG = "online.serving_catalog"


class ServingCatalog:
    """Definitions online reads need, from one registry snapshot, plus compiled read plans."""

    def __init__(self, snap: RegistrySnapshot, plan_cache_size: int = 256) -> None:
        self.views = snap.views
        self.feature_sets = snap.feature_sets
        self.serving = snap.settings("online_serving")
        self.join_keys = {name: snap.typed_join_keys(v) for name, v in self.views.items()}
        self.policies = Policies(snap.settings(POLICY))
        # compiled plans per request shape; bounded, so clients sending ever new feature
        # lists cannot grow the process: the least recently used plan is dropped
        self._plans: OrderedDict[tuple[Any, ...], ReadPlan] = OrderedDict()
        self._plan_cache_size = plan_cache_size
        self._plans_lock = threading.Lock()

    def view(self, name: str) -> FeatureView:
        """A feature view by name (the error lists the known ones)."""
        v = self.views.get(name)
        if v is None:
            known = ", ".join(sorted(self.views)) or "(none)"
            raise NotFoundError(f"no feature view named {name!r}. Known: {known}.")
        return v

    def _set_views(self, fs_name: str) -> list[str]:
        fs = self.feature_sets.get(fs_name)
        return [] if fs is None else list(dict.fromkeys(r.view for r in fs.refs))

    def expire_after(self, view: str) -> timedelta | None:
        """Redis expiry of a view's values, after their feature timestamp: the view's ttl.

        A feature set's ``cache_ttl`` never expires keys (other sets and plain feature reads
        share them); it limits the age of the values a read of that set serves.
        """
        return self.views[view].ttl

    def sync_frequency(self) -> dict[str, timedelta]:
        """View -> shortest update_frequency of the configured sets that include it."""
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
        set_features: list[str] | None = None,
    ) -> ReadPlan:
        """The compiled read plan of a request (cached per feature list and set)."""
        key = (tuple(features or ()), feature_set, full_feature_names, tuple(set_features or ()))
        with self._plans_lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        if features is not None and not features:
            raise EntityRowError("features=[] names no feature. Fix: list 'view:feature' names.")
        max_age: dict[str, timedelta | None] = {}
        if feature_set is not None:
            refs_in = self._set_features(feature_set, max_age)
            refs_in = list(set_features) if set_features is not None else refs_in
        else:
            refs_in = list(features or [])
        for text in refs_in:
            self._check_ref(FeatureRef.parse(text) if isinstance(text, str) else text)
        plan = online.plan(
            resolve_feature_refs(refs_in, self.views),
            self.views,
            self.join_keys,
            entity_names={n: v.entities for n, v in self.views.items()},
            max_age=max_age or None,
            full_feature_names=full_feature_names,
        )
        with self._plans_lock:
            self._plans[key] = plan
            while len(self._plans) > self._plan_cache_size:
                self._plans.popitem(last=False)
        return plan

    def views_of(self, features: list[str] | None, feature_set: str | None) -> list[str]:
        """The views a request reads (a set's views, or the views of its references)."""
        if feature_set is not None:
            self._set_features(feature_set, {})  # NotFoundError for an unknown set
            return self._set_views(feature_set)
        refs = [FeatureRef.parse(t) if isinstance(t, str) else t for t in features or []]
        return list(dict.fromkeys(r.view for r in refs))

    def _set_features(self, feature_set: str, max_age: dict[str, timedelta | None]) -> list[str]:
        """A set's feature references; fills ``max_age`` from its ``cache_ttl`` setting."""
        fs = self.feature_sets.get(feature_set)
        if fs is None:
            known = ", ".join(sorted(self.feature_sets)) or "(none)"
            raise NotFoundError(f"no feature set named {feature_set!r}. Known: {known}.")
        cache_ttl = self.serving.get(feature_set, {}).get("cache_ttl")
        if cache_ttl:
            limit = parse_duration(cache_ttl)
            for v in self._set_views(feature_set):
                ttl = self.views[v].ttl if v in self.views else None
                max_age[v] = limit if ttl is None else min(limit, ttl)
        return list(fs.features)

    def _check_ref(self, ref: FeatureRef) -> None:
        """A reference to a known, online view and one of its features."""
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
            raise NotServedError(
                f"feature view {ref.view!r} is not served online (online=False). Fix: set "
                "online=True, apply, and sync it."
            )


class OnlineServing:
    """Syncs views to Redis and reads them back; serving settings per feature set."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._store: OnlineStore | None = None

    @property
    def store(self) -> OnlineStore:
        """The Redis online store of the project (connects lazily)."""
        if self._store is None:
            from fstore_spark.online.client import OnlineStore

            self._store = OnlineStore(self._ctx.config.online_store, self._ctx.config.project)
        return self._store

    def catalog(self) -> ServingCatalog:
        """The serving catalog, read once until the registry changes."""
        size = self._ctx.config.server.plan_cache_size
        return self._ctx.cached(_CATALOG, lambda: ServingCatalog(self._ctx.latest(), size))

    def refresh(self) -> None:
        """Forget cached definitions (another process changed the registry)."""
        self._ctx.forget()

    def configure(
        self, name: str, update_frequency: timedelta | str, cache_ttl: timedelta | str | None
    ) -> dict[str, Any]:
        """Store a feature set's serving settings (registry category ``online_serving``)."""
        self._ctx.registry.get("feature_set", name)  # raises NotFoundError listing the sets
        ttl = None if cache_ttl is None else format_duration(parse_duration(cache_ttl))
        settings: dict[str, Any] = {
            "feature_set": name,
            "update_frequency": format_duration(parse_duration(update_frequency)),
            "cache_ttl": ttl,
        }
        self._ctx.apply([], settings={("online_serving", name): settings})
        return settings

    def settings(self, feature_set: str) -> dict[str, Any]:
        """A feature set's serving settings (``NotFoundError`` when none are stored)."""
        return dict(self._ctx.registry.get("online_serving", feature_set).definition)

    def sync(
        self, view: str | None, mode: str, now: datetime | str | None, partitions: int | None
    ) -> list[SyncResult]:
        """Sync one view, or every online view, to Redis."""
        cat = self.catalog()
        names = [view] if view is not None else [v for v in cat.views if cat.views[v].online]
        when = None if now is None else to_utc(now)
        return [self._sync(cat, n, mode=mode, now=when, partitions=partitions) for n in names]

    def sync_due(self, now: datetime | None) -> list[SyncResult]:
        """Sync the views whose last sync is older than their sets' ``update_frequency``."""
        cat = self.catalog()
        now_dt = now or datetime.now(UTC)
        out: list[SyncResult] = []
        for name, every in cat.sync_frequency().items():
            last = self.store.state(name).synced_at_us
            if last is not None and (now_dt - _from_us(last)) < every:
                continue
            out.append(self._sync(cat, name))
        return out

    def _sync(self, cat: ServingCatalog, name: str, **options: Any) -> SyncResult:
        from fstore_spark.online.sync import sync_view

        cat.policies.check_write([name], self._ctx.identity, "sync")

        return sync_view(
            self._ctx.spark,
            self._ctx.root,
            cat.view(name),
            cat.join_keys[name],
            self.store,
            expire_after=cat.expire_after(name),
            by=self._ctx.identity,
            **options,
        )

    def read(
        self,
        features: list[str] | None,
        entity_rows: list[dict[str, Any]] | None,
        feature_set: str | None,
        entity_keys: list[Any] | None = None,
        full_feature_names: bool = False,
        set_features: list[str] | None = None,
    ) -> OnlineResponse:
        """Latest values of features (or a feature set's) for entities, one Redis round trip.

        ``set_features``: the features of a pinned version of ``feature_set`` (default the
        set's latest definition); the set's serving settings apply either way.
        """
        if (features is None) == (feature_set is None):
            raise EntityRowError("give exactly one of features=[...] or feature_set=...")
        catalog = self.catalog()
        plan = catalog.plan(self.store, features, feature_set, full_feature_names, set_features)
        if catalog.policies.by_view:
            views = [vr.view for vr in plan.views]
            catalog.policies.check_read(views, reader(self._ctx.identity))
        if entity_rows is None:
            entity_rows = _rows_from_keys(plan.join_keys, entity_keys)
        return self.store.read(plan, entity_rows)


def _rows_from_keys(
    join_keys: Sequence[str], entity_keys: list[Any] | None
) -> list[dict[str, Any]]:
    """Entity rows from plain key values (only for a single join key)."""
    if entity_keys is None:
        raise EntityRowError("give entity_rows=[{...}] (or entity_keys=[...]).")
    if len(join_keys) != 1:
        raise EntityRowError(
            f"entity_keys=[...] needs a single join key, but the request needs "
            f"{', '.join(join_keys)}. Fix: pass entity_rows=[{{...}}]."
        )
    return [{join_keys[0]: v} for v in entity_keys]


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
