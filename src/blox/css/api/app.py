"""Build the cluster state service's HTTP app: `create_app(store=...)`, no module-level app.

Routes: `GET /v1/tasks[/{cluster}/{arn}]`, `GET /v1/instances[/{cluster}/{arn}]`,
`GET /v1/stream/tasks`, `GET /v1/stream/instances` (heartbeat every `heartbeat_s`), and for
operators `GET /healthz` (alive), `GET /readyz` (200 or 503 with each check, from `readiness`)
and `GET /metrics` (Prometheus text from `metrics`, whose middleware times every request); the
three are left out of /openapi.json. Errors are rendered by `errors.install`; v0.3 redirected
trailing slashes, and so does `_StripTrailingSlash` (307, query kept), a plain ASGI middleware
so that a stream's chunks pass through it untouched. The streams of each kind share one store
watch (`app.state.hubs`, see `hub`): it starts with a kind's first stream, stops with its last,
and is stopped when the app's lifespan ends. Callers: the CSS service and the tests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from blox import __version__
from blox.clock import Clock, SystemClock
from blox.css.api import errors, feed, hub, routes_instances, routes_streams, routes_tasks
from blox.obs import CssMetrics, Readiness
from blox.obs.health import store_check
from blox.obs.routes import StripTrailingSlash, add_operator_routes
from blox.store import Store

__all__ = ["close", "create_app"]

logger = logging.getLogger(__name__)


def create_app(
    *,
    store: Store,
    heartbeat_s: float = routes_streams.HEARTBEAT_S,
    readiness: Readiness | None = None,
    metrics: CssMetrics | None = None,
    stream_ring_lines: int = feed.RING_LINES,
    clock: Clock | None = None,
) -> FastAPI:
    """The CSS read API over `store`; the store stays open and owned by the caller.

    `heartbeat_s`: how long a stream stays silent before it sends a bare-newline heartbeat.
    `readiness`: what `/readyz` reports, as given (default: only "store", answering
    `revision()`). `metrics`: what `/metrics` exposes (default: a registry of this app's own).
    `stream_ring_lines`: how many recent lines of each kind the streams share; a stream further
    behind than that replays from the store (see `hub`). `clock`: paces the streams' wake-ups
    (default: the system clock).
    """
    if heartbeat_s <= 0:
        raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
    app = FastAPI(
        title="blox-ecs cluster state service",
        version=__version__,
        redirect_slashes=False,
        docs_url="/docs",  # Swagger UI over /openapi.json (its scripts come from a CDN)
        redoc_url=None,
        lifespan=_lifespan,
    )
    if readiness is None:
        readiness = Readiness()
        readiness.add_check("store", store_check(store))
    clock = clock if clock is not None else SystemClock()
    metrics = metrics if metrics is not None else CssMetrics(clock=clock)
    app.state.store = store
    app.state.heartbeat_s = heartbeat_s
    app.state.readiness = readiness
    app.state.metrics = metrics
    app.state.hubs = routes_streams.hubs(store, clock=clock, ring_lines=stream_ring_lines)
    app.include_router(routes_tasks.router)
    app.include_router(routes_instances.router)
    app.include_router(routes_streams.router)
    add_operator_routes(app, readiness=readiness, metrics=metrics)
    app.add_middleware(StripTrailingSlash)
    errors.install(app)
    app.add_middleware(metrics.requests.middleware)  # outermost: times redirects and 500s too
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Stop the streams' shared watches when the app stops (when the server runs a lifespan)."""
    try:
        yield
    finally:
        close(app)


def close(app: FastAPI) -> None:
    """Stop the shared stream watches of an app from `create_app`; open streams go on alone.

    For servers run with `lifespan="off"`: the watches also stop with the last stream.
    """
    streams: dict[str, hub.Hub] = app.state.hubs
    for kind_hub in streams.values():
        kind_hub.close()
