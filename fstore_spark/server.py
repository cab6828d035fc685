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
* ``GET /health`` -- 200 ``{"status": "ok", "redis_ms": ...}`` or 503 when Redis is down.
* ``GET /openapi.json``, ``/docs`` -- the OpenAPI spec and its UI.

Errors are JSON: 422 for a malformed body (FastAPI's validation detail), 400
``{"error": "NotFoundError", "detail": "..."}`` for unknown features/views/sets or bad entity
rows, 503 when Redis is unreachable.

Definitions are cached in the process (no registry read per request); a background thread
checks the registry version every ``refresh_seconds`` and reloads them when another process
applied.

Example::

    fstore serve --port 6566
    curl -s localhost:6566/get-online-features -d '{"features": ["profile:age"],
         "entity_rows": [{"customer_id": "c1"}]}'
"""

from __future__ import annotations

import json
import math
import threading
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fstore_spark.errors import (
    DefinitionError,
    EntityRowError,
    FstoreError,
    NotFoundError,
    OnlineStoreError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fstore_spark.online import OnlineResponse
    from fstore_spark.store import FeatureStore

__all__ = ["GetOnlineFeaturesRequest", "create_app", "serve"]


class GetOnlineFeaturesRequest(BaseModel):
    """Body of ``POST /get-online-features`` (give ``features`` or ``feature_set``)."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] | None = Field(
        default=None, description="Feature references 'view:feature' or 'view:*'."
    )
    feature_set: str | None = Field(default=None, description="A registered feature set.")
    entity_rows: list[dict[str, Any]] = Field(
        min_length=1, description="One object per entity: join key -> value."
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
    """Reloads cached definitions when the registry version changes (background thread)."""

    def __init__(self, store: FeatureStore, every: float | None) -> None:
        self.store = store
        self.every = every
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.every is None or self.every <= 0:
            return
        self.thread = threading.Thread(target=self._run, name="fstore-refresh", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.every is not None
        try:
            last = self.store.registry.version()
        except Exception:
            last = None
        while not self.stop.wait(self.every):
            try:
                version = self.store.registry.version()
                if version != last:
                    self.store.refresh_online_cache()
                    self.store._serving_catalog()  # rebuild here, not in a request
                    last = version
            except Exception:  # keep serving the definitions we have
                continue

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def create_app(store: FeatureStore, *, refresh_seconds: float | None = 60.0) -> FastAPI:
    """The FastAPI application serving ``store`` (see the module docstring).

    Args:
        store: The feature store; its definitions are loaded once at start-up.
        refresh_seconds: How often to check the registry for new definitions (None: never).

    Example::

        from fastapi.testclient import TestClient
        client = TestClient(create_app(store))
        client.post("/get-online-features", json={"features": ["profile:age"],
                                                  "entity_rows": [{"customer_id": "c1"}]})
    """
    refresher = _Refresher(store, refresh_seconds)

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
    )

    @app.exception_handler(FstoreError)
    async def _fstore_error(_: Request, exc: FstoreError) -> JSONResponse:
        if isinstance(exc, NotFoundError | DefinitionError | EntityRowError):
            status = 400  # the request names something unknown or has malformed rows
        elif isinstance(exc, OnlineStoreError):
            status = 503  # Redis unreachable or timing out
        else:
            status = 500
        return JSONResponse(
            status_code=status, content={"error": type(exc).__name__, "detail": str(exc)}
        )

    @app.post(
        "/get-online-features",
        response_model=GetOnlineFeaturesResponse,
        responses={400: {"description": "Unknown feature/view/set or bad entity rows"}},
    )
    def get_online_features(body: GetOnlineFeaturesRequest) -> Response:
        """Latest values of the requested features for each entity row."""
        resp = store.get_online_features(
            body.features,
            body.entity_rows,
            feature_set=body.feature_set,
            full_feature_names=body.full_feature_names,
        )
        # serialised here, not through the response model: one json.dumps, no re-validation
        return Response(content=json.dumps(_payload(resp)), media_type="application/json")

    @app.get("/health")
    def health() -> JSONResponse:
        """Liveness and Redis reachability."""
        try:
            seconds = store.online_store.ping()
        except OnlineStoreError as exc:
            return JSONResponse(status_code=503, content={"status": "down", "detail": str(exc)})
        return JSONResponse(content={"status": "ok", "redis_ms": round(seconds * 1000, 3)})

    return app


def serve(
    store: FeatureStore,
    *,
    host: str = "127.0.0.1",
    port: int = 6566,
    refresh_seconds: float | None = 60.0,
    log_level: str = "warning",
) -> None:
    """Run the feature server with uvicorn until interrupted (``fstore serve``)."""
    import uvicorn

    uvicorn.run(
        create_app(store, refresh_seconds=refresh_seconds),
        host=host,
        port=port,
        log_level=log_level,
    )
