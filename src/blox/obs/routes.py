"""What every blox HTTP app serves beside its API: `/healthz`, `/readyz`, `/metrics`, and v0.3's
redirect of a trailing slash.

`add_operator_routes(app, readiness=…, metrics=…)` adds the three routes (hidden from the
OpenAPI schema; `/metrics` only when there are metrics); `StripTrailingSlash` and
`CatchUnexpected` (any exception escaping the app: a logged 500 in the service's own text,
never a trace) are the ASGI middlewares both services install. Callers: `blox.css.api`,
`blox.scheduler.api`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.datastructures import URL
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blox.obs.health import Readiness

__all__ = ["CatchUnexpected", "Exposing", "StripTrailingSlash", "add_operator_routes"]

logger = logging.getLogger(__name__)


class Exposing(Protocol):
    """Metrics that render themselves for a scrape (`CssMetrics`, `SchedulerMetrics`)."""

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its content type."""
        ...


def add_operator_routes(app: FastAPI, *, readiness: Readiness, metrics: Exposing | None) -> None:
    """`GET /healthz` (alive), `/readyz` (200 or 503 with the checks), `/metrics` if given."""

    async def healthz() -> Response:
        return PlainTextResponse("ok", media_type="text/plain; charset=utf-8")

    async def readyz() -> Response:
        report = await readiness.report()
        if not report.ready:
            logger.debug("not ready: %s", ", ".join(report.failing))
        return JSONResponse(report.as_json(), status_code=200 if report.ready else 503)

    async def scrape(request: Request) -> Response:
        assert metrics is not None
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    if metrics is not None:
        app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)


class StripTrailingSlash:
    """ASGI middleware: a path ending in "/" (not "/" itself) gets a 307 to the path without it
    (v0.3 redirected trailing slashes), the query kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # The path as sent, still percent-encoded: the decoded path drops tabs and newlines
            # (urlsplit), so "/v1/tasks/%0A" would look like "/v1/tasks/" and redirect to the list.
            raw: bytes = scope.get("raw_path") or quote(scope["path"]).encode()
            path = raw.decode("latin-1")
            if len(path) > 1 and path.endswith("/"):
                target = "/" + path.strip("/")  # never "//host": that would redirect off-site
                query = URL(scope=scope).query
                redirect = RedirectResponse(target + (f"?{query}" if query else ""), 307)
                await redirect(scope, receive, send)
                return
        await self.app(scope, receive, send)


class CatchUnexpected:
    """ASGI middleware: any exception escaping the app becomes a logged 500, never a trace.

    `answer()` builds the 500 (each service has its v0.3 text); a response already begun is
    cut (re-raised), since its status line is gone.
    """

    def __init__(self, app: ASGIApp, *, answer: Callable[[], ASGIApp]) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            logger.exception("%s %s failed unexpectedly", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self.answer()(scope, receive, send)
