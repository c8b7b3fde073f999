"""Build the cluster state service's HTTP app: `create_app(store=...)`, no module-level app.

Routes: `GET /v1/tasks[/{cluster}/{arn}]`, `GET /v1/instances[/{cluster}/{arn}]`,
`GET /v1/stream/tasks`, `GET /v1/stream/instances` (heartbeat every `heartbeat_s`) and
`GET /healthz`. Errors are rendered by `errors.install`; v0.3 redirected trailing slashes, and
so does `_strip_trailing_slash` (307, query kept). Callers: the CSS service and the tests.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from blox import __version__
from blox.css.api import errors, routes_instances, routes_streams, routes_tasks
from blox.store import Store

__all__ = ["create_app"]


def create_app(*, store: Store, heartbeat_s: float = routes_streams.HEARTBEAT_S) -> FastAPI:
    """The CSS read API over `store`; the store stays open and owned by the caller.

    `heartbeat_s`: how long a stream stays silent before it sends a bare-newline heartbeat.
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
    app.state.store = store
    app.state.heartbeat_s = heartbeat_s
    app.include_router(routes_tasks.router)
    app.include_router(routes_instances.router)
    app.include_router(routes_streams.router)
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_middleware(BaseHTTPMiddleware, dispatch=_strip_trailing_slash)
    errors.install(app)
    return app


async def _healthz() -> Response:
    return PlainTextResponse("ok", media_type="text/plain; charset=utf-8")


async def _strip_trailing_slash(request: Request, call_next: RequestResponseEndpoint) -> Response:
    path = request.url.path
    if len(path) > 1 and path.endswith("/"):
        target = "/" + path.strip("/")  # never "//host": that would redirect off-site
        query = request.url.query
        return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)
    return await call_next(request)
