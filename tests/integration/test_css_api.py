"""The CSS v0.3 read API against its contract: routes, filters, every error, and a fuzz.

Most cases go through `httpx.ASGITransport` over a memory and a SQLite store filled by the real
`Processor`; one uvicorn server on 127.0.0.1 serves the smoke test and the hypothesis fuzz.
Acceptance scenarios 12, 13, 14 and 16 (shared/spec/acceptance-scenarios.md) are marked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

import blox.css.api
from blox.clock import ManualClock
from blox.contract import css, texts
from blox.css.api import create_app
from blox.css.processor import Processor
from blox.model import ecs
from blox.store import Store, errors, keys, open_store
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecs-events"
A, OTHER = "111122223333", "444455556666"
ARN = f"arn:aws:ecs:us-east-1:{A}"
ARN_O = f"arn:aws:ecs:us-east-1:{OTHER}"
FLEET_A, FLEET_A_O = f"{ARN}:cluster/fleet-a", f"{ARN_O}:cluster/fleet-a"
T1 = f"{ARN}:task/fleet-a/357f8a30d7761a1100ff311968bba316"
TASKS = {
    "T1": (FLEET_A, T1),
    "FG": (FLEET_A, f"{ARN}:task/fleet-a/b58bf0498b812d6d83bf817741ed1557"),
    "LEG": (FLEET_A, f"{ARN}:task/332e1700-d4d9-4b91-ad76-394cd2637adf"),
    "T2": (FLEET_A, f"{ARN}:task/fleet-a/cbb51d5f81894f775fce97dbf308a3f9"),
    "T1o": (FLEET_A_O, T1.replace(A, OTHER)),
    "T1b": (f"{ARN}:cluster/fleet-b", T1.replace("fleet-a", "fleet-b")),
}
INSTANCE_A = f"{ARN}:container-instance/fleet-a/0ae71c5f39e191095278da7bb8a0aece"
INSTANCES = {
    "A": (FLEET_A, INSTANCE_A),
    "B": (FLEET_A, f"{ARN}:container-instance/fleet-a/3e47de6e169f233c5ae6e90052a38b8d"),
    "Ao": (FLEET_A_O, INSTANCE_A.replace(A, OTHER)),
}
GONE = f"{ARN}:task/fleet-a/{'e' * 32}"
# The fixtures' story (fixtures README), then copies in another account and another cluster.
STORY = [
    ("task-running-legacy-arn", {}),
    ("instance-active", {}),
    ("task-pending", {}),
    ("task-running", {}),
    ("task-running-fargate", {}),
    ("instance-draining", {}),
    ("task-stopped", {}),
    ("instance-deregistered", {}),
    ("instance-agent-disconnected", {}),
    ("task-stopped-oom", {}),
    ("task-running", {A: OTHER}),
    ("instance-draining", {A: OTHER}),
    ("task-pending", {"fleet-a": "fleet-b"}),
]
JSON = "application/json; charset=UTF-8"
TEXT = "text/plain; charset=utf-8"


async def populate(store: Store) -> None:
    """Apply the story through the real processor, plus one tombstoned task."""
    processor = Processor(store, clock=ManualClock())
    for name, rewrites in STORY:
        body = (FIXTURES / f"{name}.json").read_text()
        for old, new in rewrites.items():
            body = body.replace(old, new)
        await processor.process(json.dumps(json.loads(body)))
    gone = ecs.Record(
        kind="task",
        cluster_arn=FLEET_A,
        arn=GONE,
        version=3,
        detail={"taskArn": GONE, "clusterArn": FLEET_A, "lastStatus": "RUNNING"},
        deleted_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    await store.put(keys.task(FLEET_A, GONE), ecs.encode(gone))


def asgi_client(store: Store) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(store=store), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://css")


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    opened = await open_store(url, clock=ManualClock())
    await populate(opened)
    yield opened
    await opened.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(store) as opened:
        yield opened


def labels(response: httpx.Response, table: dict[str, tuple[str, str]], arn: str) -> set[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    by_pair = {pair: label for label, pair in table.items()}
    return {
        by_pair[(i["entity"]["clusterARN"], i["entity"][arn])] for i in response.json()["items"]
    }


def assert_error(response: httpx.Response, status: int, text: str) -> None:
    assert (response.status_code, response.text) == (status, f"{text}\n")
    assert response.headers["content-type"] == TEXT


# Scenario 12 -----------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", ["fleet-a", FLEET_A])
async def test_scenario_12_a_task_is_fetched_by_cluster_and_arn(
    client: httpx.AsyncClient, store: Store, cluster: str
) -> None:
    response = await client.get(f"/v1/tasks/{cluster}/{T1}")
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    entry = await store.get(keys.task(FLEET_A, T1))
    assert entry is not None
    expected = css.task_public(ecs.decode(entry.value), entry.mod_revision)
    assert response.json() == json.loads(css.dump(expected))
    entity = response.json()["entity"]
    assert (entity["taskARN"], entity["lastStatus"], entity["startedBy"]) == (
        T1,
        "STOPPED",
        "blox-env-logs-rev3",
    )
    assert response.json()["metadata"] == {"entityVersion": str(entry.mod_revision)}


@pytest.mark.parametrize(
    "path",
    [
        f"fleet-a/{TASKS['LEG'][1]}",
        f"fleet-a/{TASKS['FG'][1]}",
        f"{FLEET_A_O}/{TASKS['T1o'][1]}",
        f"fleet-a/{quote(T1, safe='')}",
    ],
)
async def test_short_arns_fargate_other_accounts_and_escaped_arns_are_found(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(f"/v1/tasks/{path}")
    assert response.status_code == 200, response.text


# Scenario 13 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"T1", "FG", "LEG", "T2", "T1o", "T1b"}),
        ("status=running", {"FG", "LEG", "T1o"}),
        ("status=STOPPED", {"T1", "T2"}),
        ("status=Pending", {"T1b"}),
        ("cluster=fleet-a", {"T1", "FG", "LEG", "T2", "T1o"}),
        (f"cluster={FLEET_A}", {"T1", "FG", "LEG", "T2"}),
        (f"cluster={FLEET_A_O}", {"T1o"}),
        ("cluster=fleet-b", {"T1b"}),
        ("cluster=empty-cluster", set()),
        ("startedBy=blox-env-logs-rev3", {"T1", "T1o", "T1b"}),
        ("startedBy=blox-env-logs-rev3&status=rUnNiNg", {"T1o"}),
        (f"status=stopped&cluster={FLEET_A}&startedBy=blox-env-logs-rev3", {"T1"}),
        ("cluster=fleet-a&status=running", {"FG", "LEG", "T1o"}),
        ("startedBy=nobody", set()),
    ],
)
async def test_scenario_13_task_filters_alone_and_combined_narrow_correctly(
    client: httpx.AsyncClient, query: str, expected: set[str]
) -> None:
    response = await client.get(f"/v1/tasks?{query}")
    assert labels(response, TASKS, "taskARN") == expected
    assert "nextToken" not in response.json()


@pytest.mark.parametrize("route", ["tasks", "instances"])
async def test_a_list_names_the_store_revision_it_read_at(
    client: httpx.AsyncClient, store: Store, route: str
) -> None:
    """List, then stream from `X-Blox-Store-Revision` + 1: no change falls between the two."""
    before = await store.revision()
    response = await client.get(f"/v1/{route}")
    assert response.status_code == 200
    revision = int(response.headers["x-blox-store-revision"])
    assert revision == before
    versions = [int(i["metadata"]["entityVersion"]) for i in response.json()["items"]]
    assert versions and max(versions) <= revision


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"containerInstance": INSTANCE_A}, {"T1"}),
        ({"containerInstance": INSTANCE_A.replace(A, OTHER)}, {"T1o"}),
        ({"containerInstance": INSTANCES["B"][1], "status": "stopped"}, {"T2"}),
        ({"family": "log-shipper"}, {"T1", "T1o", "T1b"}),
        ({"family": "log-shipper", "cluster": "fleet-a"}, {"T1", "T1o"}),
        ({"family": "log-shipper", "cluster": FLEET_A_O, "status": "RUNNING"}, {"T1o"}),
        ({"family": "web"}, {"FG"}),
        ({"group": "service:web"}, {"FG"}),
        ({"group": "family:log-shipper", "startedBy": "blox-env-logs-rev3"}, {"T1", "T1o", "T1b"}),
        ({"group": "service:node-exporter", "cluster": FLEET_A}, {"LEG"}),
        ({"family": "log-shipper", "group": "service:web"}, set()),
        ({"family": "nothing"}, set()),
    ],
    ids=repr,
)
async def test_the_blox_ecs_task_filters_narrow_alone_and_with_the_v03_ones(
    client: httpx.AsyncClient, params: dict[str, str], expected: set[str]
) -> None:
    response = await client.get("/v1/tasks", params=params)
    assert labels(response, TASKS, "taskARN") == expected
    assert "nextToken" not in response.json()


@pytest.mark.parametrize("query", ["family=log-shipper", "status=running", "cluster=fleet-a"])
async def test_filtered_pages_of_one_visit_every_match_once(
    client: httpx.AsyncClient, query: str
) -> None:
    whole = (await client.get(f"/v1/tasks?{query}")).json()["items"]
    seen: list[str] = []
    name, _, value = query.partition("=")
    params = {name: value, "maxResults": "1"}
    while True:
        page = (await client.get("/v1/tasks", params=params)).json()
        assert len(page["items"]) <= 1
        seen += [item["entity"]["taskARN"] for item in page["items"]]
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    assert seen == [item["entity"]["taskARN"] for item in whole] and len(seen) >= 3


# Scenario 14 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"A", "B", "Ao"}),
        ("status=active", {"B"}),
        ("status=INACTIVE", {"A"}),
        ("status=Draining", {"Ao"}),
        (f"cluster={FLEET_A_O}", {"Ao"}),
        ("cluster=fleet-a&status=ACTIVE", {"B"}),
        ("cluster=fleet-b", set()),
    ],
)
async def test_scenario_14_instances_are_listed_and_filtered(
    client: httpx.AsyncClient, query: str, expected: set[str]
) -> None:
    assert labels(
        await client.get(f"/v1/instances?{query}"), INSTANCES, "containerInstanceARN"
    ) == (expected)


async def test_scenario_14_an_instance_is_fetched_with_string_resources(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/v1/instances/fleet-a/{INSTANCE_A}")
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    entity = response.json()["entity"]
    assert entity["status"] == "INACTIVE" and entity["EC2InstanceID"] == "i-0a1b2c3d4e5f60718"
    assert {"name": "CPU", "type": "INTEGER", "value": "2048"} in entity["remainingResources"]
    assert all(isinstance(r["value"], str) for r in entity["registeredResources"])


# Scenario 16 and every error of css-api.md -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        (f"/v1/tasks/fleet-a/{GONE}", 404, texts.TASK_NOT_FOUND),
        (f"/v1/tasks/fleet-a/{ARN}:task/fleet-a/{'0' * 32}", 404, texts.TASK_NOT_FOUND),
        (f"/v1/tasks/fleet-b/{T1}", 404, texts.TASK_NOT_FOUND),
        (f"/v1/tasks/{FLEET_A_O}/{T1}", 404, texts.TASK_NOT_FOUND),
        (f"/v1/instances/fleet-a/{ARN}:container-instance/x", 404, texts.INSTANCE_NOT_FOUND),
        (f"/v1/tasks/fl%20eet/{T1}", 404, texts.PAGE_NOT_FOUND),
        (f"/v1/tasks/fleet-a/{INSTANCE_A}", 404, texts.PAGE_NOT_FOUND),
        (f"/v1/instances/fleet-a/{T1}", 404, texts.PAGE_NOT_FOUND),
        ("/v1/tasks/fleet-a/arn:aws:ecs:us-east-1:123:task/x", 404, texts.PAGE_NOT_FOUND),
        ("/v1/tasks/fleet-a", 404, texts.PAGE_NOT_FOUND),
        ("/v1/tasks/fleet-a/not-an-arn", 404, texts.PAGE_NOT_FOUND),
        ("/v1/nothing", 404, texts.PAGE_NOT_FOUND),
        ("/v2/tasks", 404, texts.PAGE_NOT_FOUND),
        ("/v1/tasks?foo=bar", 400, texts.FILTERS_UNSUPPORTED),
        ("/v1/tasks?status=running&entityVersion=1", 400, texts.FILTERS_UNSUPPORTED),
        ("/v1/instances?startedBy=x", 400, texts.FILTERS_UNSUPPORTED),
        ("/v1/tasks?status=running&status=running", 400, texts.FILTERS_REPEATED),
        ("/v1/instances?cluster=a&cluster=b", 400, texts.FILTERS_REPEATED),
        ("/v1/tasks?status=active", 400, texts.INVALID_STATUS),
        ("/v1/tasks?status=", 400, texts.INVALID_STATUS),
        ("/v1/instances?status=running", 400, texts.INVALID_STATUS),
        ("/v1/tasks?cluster=fleet%20a", 400, texts.INVALID_CLUSTER),
        (f"/v1/instances?cluster={T1}", 400, texts.INVALID_CLUSTER),
        ("/v1/tasks?maxResults=0", 400, texts.INVALID_MAX_RESULTS),
        ("/v1/tasks?nextToken=%21", 400, texts.INVALID_NEXT_TOKEN),
        ("/v1/tasks?containerInstance=i-0a1b2c3d", 400, texts.INVALID_CONTAINER_INSTANCE),
        (f"/v1/tasks?containerInstance={T1}", 400, texts.INVALID_CONTAINER_INSTANCE),
        ("/v1/tasks?family=log%20shipper", 400, texts.INVALID_FAMILY),
        ("/v1/tasks?family=log-shipper:7", 400, texts.INVALID_FAMILY),
        ("/v1/tasks?group=", 400, texts.INVALID_GROUP),
        ("/v1/tasks?family=a&family=b", 400, texts.FILTERS_REPEATED),
        ("/v1/instances?family=web", 400, texts.FILTERS_UNSUPPORTED),
        ("/v1/instances?containerInstance=x", 400, texts.FILTERS_UNSUPPORTED),
    ],
)
async def test_scenario_16_and_every_error_has_its_status_and_plain_text(
    client: httpx.AsyncClient, url: str, status: int, text: str
) -> None:
    assert_error(await client.get(url), status, text)


async def test_a_wrong_method_gets_405_with_allow(client: httpx.AsyncClient) -> None:
    for url in ("/v1/tasks", f"/v1/instances/fleet-a/{INSTANCE_A}"):
        response = await client.post(url)
        assert_error(response, 405, texts.METHOD_NOT_ALLOWED)
        assert response.headers["allow"] == "GET"


async def test_trailing_slashes_are_redirected_as_v03_did(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/tasks/?status=running")
    assert (response.status_code, response.headers["location"]) == (307, "/v1/tasks?status=running")
    response = await client.get("http://css//evil.example/")
    assert response.headers["location"] == "/evil.example"
    followed = await client.get("/v1/instances/", follow_redirects=True)
    assert followed.status_code == 200 and len(followed.json()["items"]) == 3


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok")


async def test_max_results_pages_through_every_task_once(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    params: dict[str, str] = {"maxResults": "4"}
    while True:
        page = (await client.get("/v1/tasks", params=params)).json()
        seen += [item["entity"]["taskARN"] for item in page["items"]]
        if "nextToken" not in page:
            break
        params["nextToken"] = page["nextToken"]
    assert sorted(seen) == sorted(arn for _, arn in TASKS.values()) and len(seen) == 6


class Exploding:
    """A store whose reads fail: with a bug (RuntimeError) or as unavailable."""

    url = "exploding://"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def get(self, key: str) -> Any:
        raise self.exc

    async def list(self, prefix: str, *, limit: int = 0, after: str | None = None) -> Any:
        raise self.exc

    async def revision(self) -> int:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status"),
    [(RuntimeError("boom in the store"), 500), (errors.StoreUnavailable("down"), 503)],
)
async def test_failures_are_logged_never_shown(
    caplog: pytest.LogCaptureFixture, exc: Exception, status: int
) -> None:
    caplog.set_level(logging.ERROR)
    async with asgi_client(Exploding(exc)) as client:  # type: ignore[arg-type]
        for url in ("/v1/tasks", f"/v1/tasks/fleet-a/{T1}"):
            assert_error(await client.get(url), status, texts.UNEXPECTED_INTERNAL)
    if status == 500:
        assert "boom in the store" in caplog.text and "Traceback" in caplog.text


def test_the_api_packages_declare_their_surface() -> None:
    assert blox.css.api.__all__ == ["create_app"]


async def test_the_api_pages_are_served_over_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text


async def test_the_openapi_document_promises_no_fastapi_422(client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()
    assert set(openapi["paths"]) == {
        "/v1/tasks",
        "/v1/tasks/{path}",
        "/v1/instances",
        "/v1/instances/{path}",
    }
    assert all("422" not in op["get"]["responses"] for op in openapi["paths"].values())
    task_filters = {p["name"] for p in openapi["paths"]["/v1/tasks"]["get"]["parameters"]}
    assert {"containerInstance", "family", "group"} <= task_filters


# One real server: smoke test and fuzz ------------------------------------------------------


class Served:
    """The CSS API under uvicorn on 127.0.0.1, on a thread with its own loop and memory store."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        store = await open_store("memory://", clock=ManualClock())
        await populate(store)
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            create_app(store=store), host="127.0.0.1", port=port, log_level="warning"
        )
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


@pytest.fixture(scope="module")
def served() -> Iterator[httpx.Client]:
    with Served() as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_smoke_over_real_http(served: httpx.Client) -> None:
    response = served.get(f"/v1/tasks/fleet-a/{T1}")
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    assert response.json()["entity"]["taskARN"] == T1
    assert_error(served.get("/v1/tasks?status=bad"), 400, texts.INVALID_STATUS)
    assert_error(
        served.get(f"/v1/instances/fleet-a/{ARN}:container-instance/x"), 404, "Instance not found"
    )


ERROR_TEXTS = {
    f"{t}\n"
    for t in (
        texts.TASK_NOT_FOUND,
        texts.INSTANCE_NOT_FOUND,
        texts.PAGE_NOT_FOUND,
        texts.FILTERS_UNSUPPORTED,
        texts.FILTERS_REPEATED,
        texts.INVALID_STATUS,
        texts.INVALID_CLUSTER,
        texts.INVALID_MAX_RESULTS,
        texts.INVALID_NEXT_TOKEN,
        texts.INVALID_CONTAINER_INSTANCE,
        texts.INVALID_FAMILY,
        texts.INVALID_GROUP,
    )
}
NAMES = st.sampled_from(
    [
        "status",
        "cluster",
        "startedBy",
        "containerInstance",
        "family",
        "group",
        "maxResults",
        "nextToken",
        "x",
        "",
    ]
)
VALUES = st.sampled_from(
    ["running", "ACTIVE", "draining", "fleet-a", FLEET_A, "4", "0", "", INSTANCE_A, "web"]
)
TEXT_OR_VALUE = st.one_of(VALUES, st.text(max_size=30))
ROUTES = st.sampled_from(["/v1/tasks", "/v1/instances", "/v1/tasks/fleet-a", "/v1/instances/x"])


def assert_allowed(response: httpx.Response) -> None:
    assert response.status_code in {200, 307, 400, 404}, response.text
    if response.status_code == 200:
        assert response.headers["content-type"] == JSON
        assert "items" in response.json() or "entity" in response.json()
    elif response.status_code == 307:
        assert response.headers["location"].startswith("/")
    else:
        assert response.headers["content-type"] == TEXT and response.text in ERROR_TEXTS


@settings(max_examples=150, deadline=None)
@given(
    route=ROUTES,
    params=st.lists(st.tuples(st.one_of(NAMES, st.text(max_size=10)), TEXT_OR_VALUE), max_size=4),
)
def test_fuzzed_queries_never_fail_the_server(
    served: httpx.Client, route: str, params: list[tuple[str, str]]
) -> None:
    assert_allowed(served.get(route, params=tuple(params)))


@settings(max_examples=150, deadline=None)
@given(
    route=st.sampled_from(["/v1/tasks/", "/v1/instances/", "/v1/", "/"]),
    tail=st.one_of(
        st.text(max_size=60),
        st.sampled_from([f"fleet-a/{T1}", f"{FLEET_A}/{INSTANCE_A}", "a/arn:", "/arn:aws:"]),
        st.builds(lambda a, b: f"{a}/arn:aws:ecs:{b}", st.text(max_size=12), st.text(max_size=40)),
    ),
)
def test_fuzzed_paths_never_fail_the_server(served: httpx.Client, route: str, tail: str) -> None:
    base = str(served.base_url).rstrip("/")  # absolute: a relative "//x" would name a host
    assert_allowed(served.get(base + route + quote(tail, safe="/:")))
