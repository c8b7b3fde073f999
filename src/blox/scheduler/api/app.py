"""Build the daemon scheduler's HTTP app: `create_app(store=..., catalog=...)`, no module-level app.

Routes: `GET /v1/ping` and the environment and deployment routes, plus for operators
`GET /healthz` (alive), `GET /readyz` (200 or 503 with each check, from `readiness`) and, when
`metrics` is given, `GET /metrics`, its middleware timing every request; the three are left
out of /openapi.json, and so are FastAPI's 422 answers (this API answers 400). Errors are
rendered by `errors.install`; v0.3 redirected trailing slashes, and so does
`_strip_trailing_slash` (307, query kept). Callers: the scheduler service and the tests.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from fastapi import FastAPI, Response

from blox import __version__
from blox.clock import Clock, SystemClock
from blox.obs import Readiness, RequestMetrics
from blox.obs.health import store_check
from blox.obs.routes import StripTrailingSlash, add_operator_routes
from blox.scheduler.api import errors, routes_deployments, routes_environments
from blox.scheduler.api.wire import CONTENT_TYPE
from blox.scheduler.catalog import EcsCatalog
from blox.store import Store

__all__ = ["HttpMetrics", "create_app"]

logger = logging.getLogger(__name__)


class HttpMetrics(Protocol):
    """What `/metrics` needs: request timing and an exposition (`blox.obs` metrics fit)."""

    @property
    def requests(self) -> RequestMetrics:
        """Times every request."""
        ...

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its content type."""
        ...


def create_app(
    *,
    store: Store,
    catalog: EcsCatalog,
    clock: Clock | None = None,
    readiness: Readiness | None = None,
    metrics: HttpMetrics | None = None,
) -> FastAPI:
    """The scheduler API over `store`, checking clusters and task definitions with `catalog`.

    The store stays open and owned by the caller. `clock`: the time records are stamped with
    (default: the system's). `readiness`: what `/readyz` reports (default: only "store").
    `metrics`: what `/metrics` exposes (default: no `/metrics`, no request timing).
    """
    app = FastAPI(
        title="blox-ecs daemon scheduler",
        version=__version__,
        redirect_slashes=False,
        docs_url="/docs",  # Swagger UI over /openapi.json (its scripts come from a CDN)
        redoc_url=None,
    )
    if readiness is None:
        readiness = Readiness()
        readiness.add_check("store", store_check(store))
    app.state.store = store
    app.state.catalog = catalog
    app.state.clock = clock or SystemClock()
    app.state.readiness = readiness
    app.state.metrics = metrics
    app.add_api_route("/v1/ping", _ping, methods=["GET"], response_class=Response)
    app.include_router(routes_environments.router)
    app.include_router(routes_deployments.router)
    add_operator_routes(app, readiness=readiness, metrics=metrics)
    app.add_middleware(StripTrailingSlash)
    errors.install(
        app,
        [*app.router.routes, *routes_environments.router.routes, *routes_deployments.router.routes],
    )
    if metrics is not None:
        app.add_middleware(metrics.requests.middleware)  # outermost: times redirects and 500s
    _document_400_not_422(app)
    return app


async def _ping() -> Response:
    """Ping server for health status (v0.3: an empty 200)."""
    return Response(status_code=200, media_type=CONTENT_TYPE)


def _document_400_not_422(app: FastAPI) -> None:
    """Drop FastAPI's 422 answers from the schema: validation errors are 400s here."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
