"""The read client of the Redis online store: fast pipelined reads, sync state, maintenance.

Reads send one pipelined round trip: ``HMGET`` of just the requested fields for every
(view, entity), then one ``MGET`` of the views' pointer keys to check that the cached
namespaces are still current (after a full reload flipped a pointer, the read is repeated once
with the new namespace). The layout of the keys is in :mod:`fstore_spark.online.layout` and
documented for operators in ``docs/online_store.md``.

Example::

    store = OnlineStore(config.online_store, project="fraud")
    plan = store.plan(refs, views, join_keys)
    resp = store.read(plan, [{"customer_id": "c1"}])
    resp.to_dict()     # {'customer_id': ['c1'], 'age': [42]}
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import FeatureRef, FeatureView
from fstore_spark.errors import DefinitionError, NotFoundError
from fstore_spark.online.codec import bulk_string, micros
from fstore_spark.online.connection import ConnectionSpec, redis_errors
from fstore_spark.online.layout import KeyLayout
from fstore_spark.online.read_plan import ReadPlan, compile_plan, decode_replies, entity_keys
from fstore_spark.online.response import OnlineResponse, Status
from fstore_spark.online.sync_state import SyncState

if TYPE_CHECKING:
    import redis

    from fstore_spark.config import OnlineStoreConfig

__all__ = ["OnlineResponse", "OnlineStore", "ReadPlan", "Status"]


class OnlineStore:
    """Client side of the Redis online store: reads, state, maintenance.

    Thread-safe: one connection pool; each read takes one connection for its round trip.
    Namespaces of views are cached and re-checked by every read (see the module docstring).

    Args:
        config: The ``online_store`` section.
        project: Project name (part of every key).

    Example::

        online = OnlineStore(cfg.online_store, "demo")
        plan = online.plan(refs, views, join_keys)
        online.read(plan, [{"customer_id": "c1"}, {"customer_id": "c2"}]).to_dict()
    """

    def __init__(self, config: OnlineStoreConfig, project: str) -> None:
        """Create the pool lazily; nothing is sent to Redis until the first call."""
        self.config = config
        self.conn_spec = ConnectionSpec.from_config(config)
        self.layout = KeyLayout(config.key_prefix, project)
        self._client: redis.Redis | None = None
        self._ns: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> redis.Redis:
        """The pooled ``redis.Redis`` client (bytes replies)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.conn_spec.client()
        return self._client

    def close(self) -> None:
        """Close pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def ping(self) -> float:
        """Round trip to Redis in seconds.

        Raises:
            OnlineStoreError: Redis is unreachable (within ``connect_timeout_ms``).
        """
        t0 = time.perf_counter()
        try:
            self.client.ping()
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "connect") from exc
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ state

    def state(self, view: str) -> SyncState:
        """The view's sync state (empty before its first sync)."""
        try:
            h: Any = self.client.hgetall(self.layout.meta_key(view))
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the sync state") from exc
        return SyncState.from_hash(h)

    def stored_dtypes(self, view: str) -> dict[str, str]:
        """Feature dtypes recorded by the last sync (fallback when the registry lacks them)."""
        try:
            raw = self.client.hget(self.layout.meta_key(view), "dtypes")
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the sync state") from exc
        return {} if raw is None else dict(json.loads(raw))

    # ------------------------------------------------------------------ reads

    def plan(
        self,
        refs: Sequence[FeatureRef],
        views: Mapping[str, FeatureView],
        join_keys: Mapping[str, Sequence[tuple[str, str]]],
        *,
        entity_names: Mapping[str, Sequence[str]] | None = None,
        max_age: Mapping[str, timedelta | None] | None = None,
        full_feature_names: bool = False,
    ) -> ReadPlan:
        """Compile a request shape (resolved references) into a :class:`ReadPlan`.

        Args:
            refs: Resolved ``view:feature`` references, in output order.
            views: Feature views by name.
            join_keys: View -> ``(join key, dtype)`` in declared order.
            entity_names: View -> its entity names (``{"customer": ...}`` is accepted in an
                entity row for an entity with a single join key, as in Feast).
            max_age: View -> max age at read time (default the view's ttl).
            full_feature_names: Name output columns ``view__feature``.

        Raises:
            NotFoundError: a feature's dtype is neither declared nor recorded by a sync.
        """
        view_dtypes: dict[str, dict[str, str]] = {}
        for r in refs:
            if r.view not in view_dtypes:
                view_dtypes[r.view] = self._view_dtypes(views[r.view])
        return compile_plan(
            self.layout,
            refs,
            views,
            join_keys,
            view_dtypes,
            entity_names=entity_names,
            max_age=max_age,
            full_feature_names=full_feature_names,
        )

    def _view_dtypes(self, view: FeatureView) -> dict[str, str]:
        """The view's feature dtypes, from its definition or else from its last sync."""
        try:
            return view.feature_dtypes()
        except DefinitionError:
            # an aggregation over a column whose dtype the source does not declare: use what
            # the sync recorded from the feature table's Spark schema
            stored = self.stored_dtypes(view.name)
            missing = [f for f in view.feature_names if f not in stored]
            if missing:
                raise NotFoundError(
                    f"feature view {view.name!r}: the dtypes of {missing} are not declared and "
                    "no sync has recorded them yet. Fix: declare the source schema or run "
                    f"`fstore sync {view.name}` first."
                ) from None
            return stored

    def _pointers(self, plan: ReadPlan) -> list[bytes | None]:
        """The views' current namespaces, read with one ``MGET`` (and cached)."""
        try:
            got: list[Any] = list(self.client.mget([vr.pointer for vr in plan.views]))
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "read the namespace pointers") from exc
        for vr, ns in zip(plan.views, got, strict=True):
            self._ns[vr.view] = ns
        return list(got)

    def _request(self, plan: ReadPlan, keys: list[list[bytes]], ns: list[bytes | None]) -> bytes:
        """The RESP bytes of one read request.

        ``HMGET`` per (view with a namespace, entity), then ``MGET`` of every view's pointer key.
        """
        parts: list[bytes] = []
        for vr, vkeys, vns in zip(plan.views, keys, ns, strict=True):
            if vns is None:
                continue
            prefix = vr.base + vns + b":"
            head, tail = vr.hmget_argc, vr.hmget_tail
            for k in vkeys:
                full = prefix + k
                parts.append(b"%s$%d\r\n%s\r\n%s" % (head, len(full), full, tail))
        pointers = [vr.pointer for vr in plan.views]
        parts.append(b"*%d\r\n$4\r\nMGET\r\n" % (len(pointers) + 1))
        parts.extend(bulk_string(p) for p in pointers)
        return b"".join(parts)

    def _send(self, request: bytes, n_replies: int) -> list[Any]:
        """Send one packed request on a pooled connection; read ``n_replies`` replies."""
        pool = self.client.connection_pool
        try:
            conn: Any = pool.get_connection()
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "connect") from exc
        try:
            conn.send_packed_command([request], check_health=False)
            return [conn.read_response() for _ in range(n_replies)]
        except redis_errors() as exc:
            conn.disconnect()
            raise self.conn_spec.error(exc, "read features") from exc
        finally:
            pool.release(conn)

    def _round_trip(
        self, plan: ReadPlan, keys: list[list[bytes]], ns: list[bytes | None]
    ) -> tuple[list[list[Any]], list[bytes | None]]:
        """One pipelined round trip: HMGET per (view, entity) under ``ns``, then MGET pointers.

        Returns:
            Per view, per row, the ``HMGET`` reply (None for a view without a namespace: never
            synced); and the pointers as they are now.
        """
        n_cmd = sum(len(vkeys) for vkeys, vns in zip(keys, ns, strict=True) if vns is not None)
        replies = self._send(self._request(plan, keys, ns), n_cmd + 1)
        out: list[list[Any]] = []
        pos = 0
        for vkeys, vns in zip(keys, ns, strict=True):
            if vns is None:
                out.append([None] * len(vkeys))
            else:
                out.append(replies[pos : pos + len(vkeys)])
                pos += len(vkeys)
        return out, list(replies[-1])

    def read(
        self,
        plan: ReadPlan,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        now: datetime | None = None,
    ) -> OnlineResponse:
        """Read the plan's features for ``entity_rows`` in one pipelined round trip.

        Args:
            plan: From :meth:`plan`.
            entity_rows: One dict per entity: join key (or single-key entity name) -> value.
            now: The read instant for max-age checks and recency (default: the clock).

        Returns:
            Values typed by the registry's dtypes, with per-value statuses.

        Raises:
            EntityRowError: a row lacks a join key or has a value of the wrong type.
            OnlineStoreError: Redis is unreachable or times out.
        """
        keys = entity_keys(plan, entity_rows)
        ns = [self._ns.get(vr.view) for vr in plan.views]
        if any(vr.view not in self._ns for vr in plan.views):
            ns = self._pointers(plan)
        replies, pointers = self._round_trip(plan, keys, ns)
        if pointers != ns:  # a full reload flipped a namespace since we cached it: read again
            for vr, p in zip(plan.views, pointers, strict=True):
                self._ns[vr.view] = p
            ns = pointers
            replies, pointers = self._round_trip(plan, keys, ns)
        now_us = time.time_ns() // 1000 if now is None else micros(now)
        return decode_replies(plan, entity_rows, replies, now_us)

    def read_raw(self, view: str, entity_key: bytes) -> dict[bytes, bytes]:
        """The whole stored hash of one entity in the view's current namespace (debugging)."""
        try:
            ns: Any = self.client.get(self.layout.pointer_key(view))
            if ns is None:
                return {}
            h: Any = self.client.hgetall(self.layout.data_prefix(view, ns) + entity_key)
            return dict(h)
        except redis_errors() as exc:
            raise self.conn_spec.error(exc, "read features") from exc
