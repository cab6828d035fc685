"""HTTP feature server: ``fstore serve`` -- the online read behind FastAPI.

Endpoints:

* ``POST /get-online-features`` -- body ``{"features": ["view:feature", ...] | "feature_set":
  "name", "entity_rows": [{"customer_id": "c1"}, ...], "full_feature_names": false}``; the
  answer has Feast's shape: ``{"metadata": {"feature_names": [...]}, "results": [{"values":
  [...], "statuses": [...], "event_timestamps": [...]}, ...]}`` with one result per column
  (join keys first, then features), one entry per entity row. Same semantics as
  :meth:`FeatureStore.get_online_features`: one Redis round trip, ttl enforced at read time.
  Timestamps and dates are ISO 8601 strings; non-finite floats are ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (strict JSON has no such numbers).
* ``GET /health`` -- 200 ``{"status": "ok", "redis_ms": ...}`` or 503 when Redis is down; open
  to everyone.
* ``GET /openapi.json``, ``/docs`` -- the OpenAPI spec and its UI, served with the package's own
  Swagger UI assets (no CDN: it works offline); ``/`` redirects to ``/docs``. ``server.docs:
  false`` turns them off.

With API keys configured (``server.api_keys``), ``/get-online-features`` needs a key
(``Authorization: Bearer <key>`` or ``X-API-Key``): 401 without a valid one, 403 for a view or
set outside the key's grant (:mod:`fstore_spark.server.auth`).

Errors are JSON ``{"error": ..., "detail": ...}``: 401/403 as above; 400 for unknown
features/views/sets, a view that is not online, ``features: []`` or bad entity rows; 413 for a
body over ``server.max_body_bytes`` or more than ``server.max_entity_rows`` rows; 422 for a
malformed body (FastAPI's validation detail); 503 when Redis is unreachable. A request waits
for a pooled Redis connection (``online_store.pool_timeout_ms``) rather than failing.

Definitions are cached in the process (no registry read per request); a background thread
checks the registry version every ``refresh_seconds`` and reloads them when another process
applied, and re-reads the keys from the config file every ``server.reload_seconds`` (SIGHUP:
at once), so keys rotate without a restart.

Example::

    fstore serve --port 6566
    curl -s localhost:6566/get-online-features -d '{"features": ["profile:age"],
         "entity_rows": [{"customer_id": "c1"}]}'
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fstore_spark.errors import (
    AccessDeniedError,
    ConfigError,
    DefinitionError,
    EntityRowError,
    FstoreError,
    NotFoundError,
    OnlineStoreError,
)
from fstore_spark.registry.policy import reading_as
from fstore_spark.server.auth import Grant, KeyRing
from fstore_spark.server.limits import BodyLimit, too_large

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fstore_spark.online import OnlineResponse
    from fstore_spark.store import FeatureStore

__all__ = ["GetOnlineFeaturesRequest", "create_app", "serve"]

_log = logging.getLogger("fstore_spark.server")
_CLIENT_ERRORS = (NotFoundError, DefinitionError, EntityRowError, ValueError)


class GetOnlineFeaturesRequest(BaseModel):
    """Body of ``POST /get-online-features`` (give ``features`` or ``feature_set``)."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Feature references 'view:feature' or 'view:*'.",
        examples=[["customer_stats:txn_count_7d", "customer_stats:amount_sum_30d"]],
    )
    feature_set: str | None = Field(default=None, description="A registered feature set.")
    entity_rows: list[dict[str, Any]] = Field(
        min_length=1,
        description="One object per entity: join key -> value.",
        examples=[[{"customer_id": "c1"}, {"customer_id": "c2"}]],
    )
    full_feature_names: bool = Field(default=False, description="Name columns view__feature.")

    @model_validator(mode="after")
    def _one_of(self) -> GetOnlineFeaturesRequest:
        if (self.features is None) == (self.feature_set is None):
            raise ValueError("give exactly one of 'features' or 'feature_set'")
        return self


class _Result(BaseModel):
    values: list[Any]
    statuses: list[str]
    event_timestamps: list[str | None]


class _Metadata(BaseModel):
    feature_names: list[str]


class GetOnlineFeaturesResponse(BaseModel):
    """Answer of ``POST /get-online-features`` (documented in the OpenAPI spec)."""

    metadata: _Metadata
    results: list[_Result]


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def _payload(resp: OnlineResponse) -> dict[str, Any]:
    names = list(resp.join_keys) + list(resp.values)
    results: list[dict[str, Any]] = []
    n = len(next(iter(resp.join_keys.values()), []))
    for vals in resp.join_keys.values():
        results.append(
            {
                "values": [_json_value(v) for v in vals],
                "statuses": ["PRESENT"] * n,
                "event_timestamps": [None] * n,
            }
        )
    for name, vals in resp.values.items():
        results.append(
            {
                "values": [_json_value(v) for v in vals],
                "statuses": resp.statuses[name],
                "event_timestamps": [
                    None if t is None else t.isoformat() for t in resp.timestamps[name]
                ],
            }
        )
    return {"metadata": {"feature_names": names}, "results": results}


class _Refresher:
    """Reloads definitions when the registry changes and keys when the config file does.

    One background thread: the registry version is checked every ``every`` seconds, the keys
    every ``keys_every`` seconds; :meth:`now` (SIGHUP) does both at once.
    """

    def __init__(
        self, store: FeatureStore, keys: KeyRing, every: float | None, keys_every: float
    ) -> None:
        self.store = store
        self.keys = keys
        self.every = every if every and every > 0 else None
        self.keys_every = keys_every
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="fstore-refresh", daemon=True)
        self.thread.start()

    def now(self) -> None:
        """Reload keys and definitions at once (the SIGHUP handler)."""
        self.wake.set()

    def _run(self) -> None:
        last = self._registry_version() if self.every is not None else None
        tick = min(self.keys_every, self.every or self.keys_every)
        due_keys = due_registry = time.monotonic()
        while not self.stop.is_set():
            woken = self.wake.wait(tick)
            self.wake.clear()
            if self.stop.is_set():
                return
            now = time.monotonic()
            if woken or now - due_keys >= self.keys_every:
                self.keys.reload()
                due_keys = now
            if self.every is not None and (woken or now - due_registry >= self.every):
                last = self._reload_definitions(last)
                due_registry = now

    def _registry_version(self) -> int | None:
        try:
            return self.store.registry.version()
        except Exception:
            return None

    def _reload_definitions(self, last: int | None) -> int | None:
        try:
            version = self.store.registry.version()
            if version != last:
                self.store.refresh_online_cache()
                self.store._serving_catalog()  # rebuild here, not in a request
            return version
        except Exception:  # keep serving the definitions we have
            return last

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def _status_of(exc: FstoreError) -> int:
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, _CLIENT_ERRORS):
        return 400  # the request names something unknown, not online, or has bad rows
    if isinstance(exc, OnlineStoreError):
        return 503  # Redis unreachable or timing out
    return 500


def _error(status: int, error: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": error, "detail": detail}, headers=headers or None
    )


def create_app(store: FeatureStore, *, refresh_seconds: float | None = 60.0) -> FastAPI:
    """The FastAPI application serving ``store`` (see the module docstring).

    Keys and limits come from the store's ``server`` config section.

    Args:
        store: The feature store; its definitions are loaded once at start-up.
        refresh_seconds: How often to check the registry for new definitions (None: never).

    Example::

        from fastapi.testclient import TestClient
        client = TestClient(create_app(store))
        client.post("/get-online-features", json={"features": ["profile:age"],
                                                  "entity_rows": [{"customer_id": "c1"}]},
                    headers={"Authorization": "Bearer <key>"})
    """
    cfg = store.config.server
    keys = KeyRing(cfg, store.config.config_file)
    refresher = _Refresher(store, keys, refresh_seconds, cfg.reload_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store._serving_catalog()  # load definitions before the first request
        refresher.start()
        try:
            yield
        finally:
            refresher.close()

    app = FastAPI(
        title="fstore_spark feature server",
        version="1",
        description="Latest feature values from the Redis online store.",
        lifespan=lifespan,
        docs_url=None,  # served below, from the package's own assets
        redoc_url=None,
        openapi_url="/openapi.json" if cfg.docs else None,
    )
    if cfg.docs:
        _docs(app)
    app.state.reload_now = refresher.now
    app.state.keys = keys
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)

    @app.exception_handler(FstoreError)
    async def _fstore_error(_: Request, exc: FstoreError) -> JSONResponse:
        return _error(_status_of(exc), type(exc).__name__, str(exc))

    _routes(app, store, keys)
    return app


def _docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI from local assets: works offline) and ``/`` redirecting to it."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="fstore_spark feature server",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")


def _authorize(store: FeatureStore, keys: KeyRing, request: Request, body: Any) -> Grant:
    """The caller's grant, after checking it covers what ``body`` reads.

    Raises:
        _Refused: 401 (no valid key) or 403 (outside the grant).
    """
    grant = keys.authenticate(request.headers)
    if grant is None:
        raise _Refused(
            _error(
                401,
                "Unauthorized",
                "a valid API key is required. Fix: send 'Authorization: Bearer <key>' "
                "(or 'X-API-Key: <key>') with a key listed in server.api_keys.",
                **{"WWW-Authenticate": "Bearer"},
            )
        )
    views = store._serving_catalog().views_of(body.features, body.feature_set)
    reason = grant.refused(views, body.feature_set)
    if reason is not None:
        raise _Refused(_error(403, "Forbidden", reason))
    return grant


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _routes(app: FastAPI, store: FeatureStore, keys: KeyRing) -> None:
    limit = store.config.server.max_entity_rows

    @app.exception_handler(_Refused)
    async def _refused(_: Request, exc: _Refused) -> JSONResponse:
        return exc.response

    @app.post(
        "/get-online-features",
        response_model=GetOnlineFeaturesResponse,
        responses={
            400: {"description": "Unknown feature/view/set, a view not online, bad rows"},
            401: {"description": "No valid API key"},
            403: {"description": "A view or feature set outside the key's grant"},
            413: {"description": "Body or entity rows over the server's limits"},
            503: {"description": "Redis unreachable"},
        },
    )
    def get_online_features(body: GetOnlineFeaturesRequest, request: Request) -> Response:
        """Latest values of the requested features for each entity row."""
        t0 = time.perf_counter()
        grant = _authorize(store, keys, request, body)
        if len(body.entity_rows) > limit:
            detail = (
                f"{len(body.entity_rows)} entity rows exceed server.max_entity_rows ({limit}). "
                "Fix: split the request."
            )
            return JSONResponse(status_code=413, content=too_large(detail))
        with reading_as(grant.name):  # views' access policies list key names as readers
            resp = store.get_online_features(
                body.features,
                body.entity_rows,
                feature_set=body.feature_set,
                full_feature_names=body.full_feature_names,
            )
        _log.debug(
            "get-online-features by %s: %d rows in %.1f ms",
            grant.name,
            len(body.entity_rows),
            (time.perf_counter() - t0) * 1000,
        )
        # serialised here, not through the response model: one json.dumps, no re-validation
        return Response(content=json.dumps(_payload(resp)), media_type="application/json")

    @app.get("/health")
    def health() -> JSONResponse:
        """Liveness and Redis reachability (no key needed)."""
        try:
            seconds = store.online_store.ping()
        except OnlineStoreError as exc:
            return JSONResponse(status_code=503, content={"status": "down", "detail": str(exc)})
        return JSONResponse(content={"status": "ok", "redis_ms": round(seconds * 1000, 3)})


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def serve(
    store: FeatureStore,
    *,
    host: str = "127.0.0.1",
    port: int = 6566,
    refresh_seconds: float | None = 60.0,
    log_level: str = "warning",
) -> None:
    """Run the feature server with uvicorn until interrupted (``fstore serve``).

    SIGHUP reloads the keys and definitions at once.

    Raises:
        ConfigError: ``host`` is not loopback, no API key is configured and
            ``server.anonymous`` is not true (the server would be open to the network).
    """
    import uvicorn

    cfg = store.config.server
    if cfg.allows_anonymous and cfg.anonymous is None and not _loopback(host):
        raise ConfigError(
            f"serving on {host} without API keys would let anyone read every feature. Fix: "
            "configure server.api_keys (see docs/security.md), or set server.anonymous: true "
            "to serve without keys on purpose."
        )
    app = create_app(store, refresh_seconds=refresh_seconds)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: app.state.reload_now())
    uvicorn.run(app, host=host, port=port, log_level=log_level)
