"""HTTP request latency for our FastAPI apps: a histogram and the ASGI middleware that fills it.

`RequestMetrics` is built by a service's metrics (`CssMetrics.requests`); its `middleware`
class is added by `create_app` as the outermost middleware, so that redirects, 404s and the
500s rendered by the error middleware are timed too.

Invariants (cardinality): `route` is the matched route's template (`/v1/tasks/{path}`), or
`none` when nothing matched, never the raw path; `method` is a standard method or `other`;
`status` is the status sent. Latency is the time to the response's first byte, so a stream
that stays open for hours counts as the moment its headers went out.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blox.clock import Clock

__all__ = ["METHODS", "UNMATCHED", "RequestMetrics", "route_of"]

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED: Final = "none"
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestMetrics:
    """`<prefix>_http_request_duration_seconds{method, route, status}` in `registry`."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str, clock: Clock) -> None:
        self.clock = clock
        self.latency = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Seconds from receiving a request to sending its response headers.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request; an unknown method is counted as `other`."""
        label = method if method in METHODS else "other"
        self.latency.labels(method=label, route=route, status=str(status)).observe(
            max(0.0, seconds)
        )

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """`app` wrapped so that every HTTP request is timed (for `add_middleware`)."""
        return _Timed(app, self)


def route_of(scope: Scope) -> str:
    """The template of the route that matched `scope`, or `UNMATCHED`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class _Timed:
    """ASGI middleware: observe each HTTP request when its headers are sent (or it fails)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.metrics.clock.monotonic()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            self.metrics.observe(
                method=str(scope.get("method", "")),
                route=route_of(scope),
                status=status,
                seconds=self.metrics.clock.monotonic() - started,
            )

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            if not observed:  # the app raised (or the client left) before any header
                observe(500)
