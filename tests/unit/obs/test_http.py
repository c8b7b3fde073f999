"""RequestMetrics: route templates (never raw paths), bounded methods, time to first byte."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry

from blox.clock import ManualClock
from blox.obs import RequestMetrics
from blox.obs.http import route_of

NAME = "test_http_request_duration_seconds"


class Boom(Exception):
    """What the failing endpoint raises."""


def build(clock: ManualClock) -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, prefix="test", clock=clock)
    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        await clock.advance(0.3)  # the handler "takes" 0.3 s of the injected clock
        return {"item": item}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            await clock.advance(3600)  # a long-lived stream: not part of its latency
            yield b"later\n"

        return StreamingResponse(body())

    @app.get("/boom")
    async def boom() -> None:
        raise Boom("escaped every handler")

    app.add_middleware(metrics.middleware)
    return app, registry


def count(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value(f"{NAME}_count", labels)


async def test_requests_are_labelled_by_route_template_method_and_status() -> None:
    clock = ManualClock()
    app, registry = build(clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/items/a", "/items/b", "/items/arn:aws:ecs:x"):
            assert (await client.get(path)).status_code == 200
        assert (await client.get("/nowhere/at-all")).status_code == 404
        assert (await client.request("BREW", "/items/a")).status_code == 405

    route = {"route": "/items/{item}"}
    assert count(registry, method="GET", status="200", **route) == 3.0
    assert count(registry, method="GET", route="none", status="404") == 1.0
    assert count(registry, method="other", status="405", **route) == 1.0
    text = "\n".join(str(s) for m in registry.collect() for s in m.samples)
    assert "/items/a" not in text and "arn:aws" not in text and "nowhere" not in text


async def test_latency_is_measured_on_the_injected_clock() -> None:
    clock = ManualClock()
    app, registry = build(clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/items/a")

    labels = {"method": "GET", "route": "/items/{item}", "status": "200"}
    assert registry.get_sample_value(f"{NAME}_sum", labels) == pytest.approx(0.3)
    assert registry.get_sample_value(f"{NAME}_bucket", {**labels, "le": "0.25"}) == 0.0
    assert registry.get_sample_value(f"{NAME}_bucket", {**labels, "le": "0.5"}) == 1.0


async def test_a_stream_counts_until_its_headers_not_until_it_ends() -> None:
    clock = ManualClock()
    app, registry = build(clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/stream")).text == "first\nlater\n"

    labels = {"method": "GET", "route": "/stream", "status": "200"}
    assert registry.get_sample_value(f"{NAME}_sum", labels) == 0.0


async def test_an_exception_escaping_the_app_is_counted_as_a_500_and_still_raised() -> None:
    clock = ManualClock()
    app, registry = build(clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(Boom):
            await client.get("/boom")

    assert count(registry, method="GET", route="/boom", status="500") == 1.0


def test_route_of_reads_the_template_of_the_matched_route_or_says_none() -> None:
    app = FastAPI()

    @app.get("/v1/tasks/{path:path}")
    async def task(path: str) -> None:
        return None

    assert route_of({"type": "http", "route": app.router.routes[-1]}) == "/v1/tasks/{path}"
    assert route_of({"type": "http"}) == "none"
