"""Build the cluster state service's HTTP app: `create_app(store=...)`, no module-level app.

Routes: `GET /v1/tasks[/{cluster}/{arn}]`, `GET /v1/instances[/{cluster}/{arn}]`,
`GET /v1/stream/tasks`, `GET /v1/stream/instances` (heartbeat every `heartbeat_s`), and for
operators `GET /healthz` (alive), `GET /readyz` (200 or 503 with each check, from `readiness`)
and `GET /metrics` (Prometheus text from `metrics`, whose middleware times every request); the
three are left out of /openapi.json. Errors are rendered by `errors.install`; v0.3 redirected
trailing slashes, and so does `_strip_trailing_slash` (307, query kept). Callers: the CSS
service and the tests.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from blox import __version__
from blox.clock import SystemClock
from blox.css.api import errors, routes_instances, routes_streams, routes_tasks
from blox.obs import CssMetrics, Readiness
from blox.obs.health import store_check
from blox.store import Store

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    *,
    store: Store,
    heartbeat_s: float = routes_streams.HEARTBEAT_S,
    readiness: Readiness | None = None,
    metrics: CssMetrics | None = None,
) -> FastAPI:
    """The CSS read API over `store`; the store stays open and owned by the caller.

    `heartbeat_s`: how long a stream stays silent before it sends a bare-newline heartbeat.
    `readiness`: what `/readyz` reports, as given (default: only "store", answering
    `revision()`). `metrics`: what `/metrics` exposes (default: a registry of this app's own).
    """
    if heartbeat_s <= 0:
        raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
    app = FastAPI(
        title="blox-ecs cluster state service",
        version=__version__,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    if readiness is None:
        readiness = Readiness()
        readiness.add_check("store", store_check(store))
    metrics = metrics if metrics is not None else CssMetrics(clock=SystemClock())
    app.state.store = store
    app.state.heartbeat_s = heartbeat_s
    app.state.readiness = readiness
    app.state.metrics = metrics
    app.include_router(routes_tasks.router)
    app.include_router(routes_instances.router)
    app.include_router(routes_streams.router)
    for path, endpoint in (("/healthz", _healthz), ("/readyz", _readyz), ("/metrics", _metrics)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(BaseHTTPMiddleware, dispatch=_strip_trailing_slash)
    errors.install(app)
    app.add_middleware(metrics.requests.middleware)  # outermost: times redirects and 500s too
    return app


async def _healthz() -> Response:
    return PlainTextResponse("ok", media_type="text/plain; charset=utf-8")


async def _readyz(request: Request) -> Response:
    readiness: Readiness = request.app.state.readiness
    report = await readiness.report()
    if not report.ready:
        logger.debug("not ready: %s", ", ".join(report.failing))
    return JSONResponse(report.as_json(), status_code=200 if report.ready else 503)


async def _metrics(request: Request) -> Response:
    metrics: CssMetrics = request.app.state.metrics
    body, content_type = metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


async def _strip_trailing_slash(request: Request, call_next: RequestResponseEndpoint) -> Response:
    # The path as sent, still percent-encoded: `request.url.path` drops tabs and newlines
    # (urlsplit), so "/v1/tasks/%0A" would look like "/v1/tasks/" and redirect to the list.
    raw: bytes = request.scope.get("raw_path") or quote(request.scope["path"]).encode()
    path = raw.decode("latin-1")
    if len(path) > 1 and path.endswith("/"):
        target = "/" + path.strip("/")  # never "//host": that would redirect off-site
        query = request.url.query
        return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)
    return await call_next(request)
