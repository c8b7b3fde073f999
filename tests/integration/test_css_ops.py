"""The CSS's operator endpoints: /readyz with its checks, /metrics in the Prometheus format.

Most cases go through `httpx.ASGITransport` over a memory store filled by the real `Processor`;
the store check is also run against a real etcd server that is stopped and started again, with
the app under uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from blox.clock import ManualClock, SystemClock
from blox.css.api import create_app
from blox.css.processor import Processor
from blox.obs import CssMetrics, Readiness
from blox.obs.health import store_check
from blox.store import Store, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from tests.integration.test_css_api import FIXTURES, FLEET_A, INSTANCE_A, STORY, T1

pytestmark = pytest.mark.integration

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
RECONCILE_WAITING = "the first reconcile has not finished"


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = await open_store("memory://", clock=ManualClock())
    yield opened
    await opened.close()


def client_of(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://css")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_readyz_by_default_checks_the_store_and_answers_200_json(store: Store) -> None:
    async with client_of(create_app(store=store)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ready": True, "checks": {"store": {"ok": True}}}


async def test_readyz_is_503_naming_the_first_reconcile_until_the_reconciler_sets_it(
    store: Store,
) -> None:
    readiness = Readiness(clock=ManualClock())
    readiness.add_check("store", store_check(store))
    reconciled = readiness.add_flag("reconcile", waiting=RECONCILE_WAITING)

    async with client_of(create_app(store=store, readiness=readiness)) as client:
        before = await client.get("/readyz")
        reconciled.set()
        after = await client.get("/readyz")

    assert before.status_code == 503
    assert before.json() == {
        "ready": False,
        "checks": {"store": {"ok": True}, "reconcile": {"ok": False, "error": RECONCILE_WAITING}},
    }
    assert after.status_code == 200 and after.json()["ready"] is True


async def test_metrics_expose_event_totals_and_latency_by_route_template_never_raw_paths(
    store: Store,
) -> None:
    metrics = CssMetrics(clock=SystemClock())
    processor = Processor(store, clock=ManualClock())
    metrics.track_events(processor.counters)
    await _populate_with(store, processor)

    async with client_of(create_app(store=store, metrics=metrics)) as client:
        assert (await client.get(f"/v1/tasks/fleet-a/{T1}")).status_code == 200
        assert (await client.get(f"/v1/instances/{FLEET_A}/{INSTANCE_A}")).status_code == 200
        assert (await client.get("/v1/tasks?status=bad")).status_code == 400
        assert (await client.get("/v1/nowhere/secret-path")).status_code == 404
        assert (await client.get("/v1/tasks/")).status_code == 307
        scrape = await client.get("/metrics")

    assert scrape.status_code == 200 and scrape.headers["content-type"] == PROMETHEUS
    found = samples(scrape.text)
    counters = processor.counters
    assert found[("blox_css_events_received_total", frozenset())] == counters.received == len(STORY)
    applied = ("blox_css_events_total", frozenset({("outcome", "applied")}))
    assert found[applied] == counters.applied > 0

    def requests(route: str, status: str) -> float:
        labels = frozenset({("method", "GET"), ("route", route), ("status", status)})
        return found[("blox_css_http_request_duration_seconds_count", labels)]

    assert requests("/v1/tasks/{path}", "200") == 1
    assert requests("/v1/instances/{path}", "200") == 1
    assert requests("/v1/tasks", "400") == 1
    assert requests("none", "404") == 1
    assert requests("none", "307") == 1
    for raw in (T1, INSTANCE_A, "secret-path", "status=bad"):
        assert raw not in scrape.text


async def _populate_with(store: Store, processor: Processor) -> None:
    """The story of test_css_api, applied by `processor` so that its counters move."""
    for name, rewrites in STORY:
        body = (FIXTURES / f"{name}.json").read_text()
        for old, new in rewrites.items():
            body = body.replace(old, new)
        await processor.process(json.dumps(json.loads(body)))


async def test_metrics_negotiate_openmetrics_when_the_scraper_asks(store: Store) -> None:
    async with client_of(create_app(store=store)) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_two_apps_in_one_process_count_their_own_requests(store: Store) -> None:
    first, second = create_app(store=store), create_app(store=store)
    async with client_of(first) as one, client_of(second) as other:
        for _ in range(3):
            await one.get("/v1/tasks")
        text = (await other.get("/metrics")).text
    assert 'route="/v1/tasks"' not in text


async def test_the_operator_routes_stay_out_of_the_openapi_document(store: Store) -> None:
    async with client_of(create_app(store=store)) as client:
        paths = set((await client.get("/openapi.json")).json()["paths"])
    assert not paths & {"/healthz", "/readyz", "/metrics"}


# A real etcd that goes away and comes back, behind a real HTTP server ----------------------


class Served:
    """The CSS API over an etcd store, under uvicorn on 127.0.0.1 in a thread of its own."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.url = f"http://127.0.0.1:{free_port()}"
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        store = await open_store(self.store_url)
        readiness = Readiness(clock=SystemClock(), timeout_s=5.0)
        readiness.add_check("store", store_check(store))
        app = create_app(store=store, readiness=readiness)
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve()
        finally:
            await store.close()

    def __enter__(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server is not None and self._server.started):
            assert time.monotonic() < deadline, "the CSS server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of this test's own, since the test stops it."""
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    yield server
    server.stop()


@pytest.mark.etcd
def test_readyz_follows_the_store_as_etcd_goes_away_and_comes_back(etcd: EtcdServer) -> None:
    with Served(etcd.url) as served, httpx.Client(base_url=served.url, trust_env=False) as http:
        assert http.get("/readyz").json() == {"ready": True, "checks": {"store": {"ok": True}}}

        etcd.stop()
        down = http.get("/readyz", timeout=30)
        assert down.status_code == 503
        error = down.json()["checks"]["store"]["error"]
        assert "unreachable" in error or "no answer" in error
        assert "Traceback" not in down.text
        assert http.get("/healthz").status_code == 200  # alive, just not ready

        etcd.start()
        assert http.get("/readyz", timeout=30).status_code == 200
        assert "blox_css_http_request_duration_seconds" in http.get("/metrics").text
