"""The v0.3 change streams (`/v1/stream/tasks`, `/v1/stream/instances`) over real HTTP.

Each test runs uvicorn on 127.0.0.1 in the test's own event loop, over a memory and a SQLite
store filled by the real `Processor` (the fixtures' story of test_css_api), and reads the
stream with httpx. Heartbeats are shortened to HEARTBEAT_S; every wait is a bounded read (the
client's read timeout) or a poll with a deadline. Acceptance scenario 15 is marked.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn

from blox.clock import ManualClock
from blox.contract import css, texts
from blox.css.api import create_app
from blox.css.processor import Outcome, Processor
from blox.model import ecs
from blox.store import Change, Store, errors, keys, open_store
from blox.testing.ports import free_port
from tests.integration.test_css_api import FIXTURES, FLEET_A, GONE, T1, TEXT, populate

pytestmark = pytest.mark.integration

HEARTBEAT_S = 0.05
STREAM = "application/octet-stream"
TIMEOUT = httpx.Timeout(5.0)
TEMPLATE: dict[str, Any] = json.loads((FIXTURES / "task-running.json").read_text())
T1_ID = T1.rsplit("/", 1)[1]


@dataclass
class Served:
    url: str
    store: Store
    processor: Processor

    async def change(self, version: int, task_id: str = "a" * 32) -> int:
        """Process a task event (a new task per `task_id`); the store revision it wrote."""
        event = copy.deepcopy(TEMPLATE)
        event["detail"]["version"] = version
        outcome = await self.processor.process(json.dumps(event).replace(T1_ID, task_id))
        assert outcome is Outcome.APPLIED
        return await self.store.revision()


@asynccontextmanager
async def serving(store: Store, heartbeat_s: float = HEARTBEAT_S) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(store=store, heartbeat_s=heartbeat_s),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and not task.done(), "the CSS server did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    store = await open_store(url, clock=ManualClock())
    try:
        await populate(store)
        async with serving(store) as base:
            yield Served(base, store, Processor(store, clock=ManualClock()))
    finally:
        await store.close()


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=TIMEOUT) as opened:
        yield opened


class Lines:
    """The lines of one open stream; heartbeats are counted and skipped by `objects`."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_raw()
        self._buffer = b""
        self.heartbeats = 0

    async def line(self) -> bytes:
        while b"\n" not in self._buffer:
            self._buffer += await anext(self._chunks)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    async def objects(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            line = await self.line()
            if line:
                found.append(json.loads(line))
            else:
                self.heartbeats += 1
        return found


def versions(objects: list[dict[str, Any]]) -> list[int]:
    return [int(o["metadata"]["entityVersion"]) for o in objects]


async def expected_tasks(store: Store, start: int, *, deletes: bool = False) -> list[bytes]:
    """The oracle: what the task stream must send for every change from `start` to now."""
    current = await store.revision()
    lines: list[bytes] = []
    if start > current:
        return lines
    async for change in store.watch(keys.TASKS, start_revision=start):
        lines.extend(oracle_line(change, deletes))
        if change.revision >= current:
            break
    return lines


def oracle_line(change: Change, deletes: bool) -> list[bytes]:
    entry = change.entry if change.kind == "put" else change.prev
    assert entry is not None
    record = ecs.decode(entry.value)
    if change.kind == "put" and not record.is_tombstone:
        return [css.dump(css.task_public(record, change.revision))]
    if not deletes:
        return []
    document = json.loads(css.dump(css.task_public(record, change.revision)))
    document["metadata"]["deleted"] = True
    return [json.dumps(document, separators=(",", ":")).encode()]


# Headers, replay, live ---------------------------------------------------------------------


@pytest.mark.parametrize("route", ["tasks", "instances"])
async def test_headers_arrive_at_once_and_heartbeats_keep_an_idle_stream_alive(
    client: httpx.AsyncClient, route: str
) -> None:
    async with client.stream("GET", f"/v1/stream/{route}") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == STREAM
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["connection"].lower() == "keep-alive"
        lines = Lines(response)
        assert [await lines.line() for _ in range(3)] == [b"", b"", b""]


async def test_scenario_15_replay_from_n_includes_n_then_follows_live(
    client: httpx.AsyncClient, served: Served
) -> None:
    t1 = await served.store.get(keys.task(FLEET_A, T1))
    assert t1 is not None
    start = t1.mod_revision
    expected = await expected_tasks(served.store, start)
    async with client.stream("GET", f"/v1/stream/tasks?entityVersion={start}") as response:
        assert response.status_code == 200
        lines = Lines(response)
        replayed = await lines.objects(len(expected))
        assert [json.dumps(o, separators=(",", ":")).encode() for o in replayed] == expected
        assert versions(replayed)[0] == start
        got = await client.get(f"/v1/tasks/fleet-a/{T1}")
        assert replayed[0] == got.json()
        # GONE is a tombstone, written last: never sent as a live task.
        assert all(o["entity"]["taskARN"] != GONE for o in replayed)
        revision = await served.change(1)
        (live,) = await lines.objects(1)
        assert versions([live]) == [revision]
        assert live["entity"]["taskARN"] == T1.replace(T1_ID, "a" * 32)


async def test_a_stream_names_the_first_version_it_delivers(
    client: httpx.AsyncClient, served: Served
) -> None:
    """`X-Blox-Entity-Version` lets a client that saw nothing yet resume without a gap."""
    current = await served.store.revision()
    async with client.stream("GET", "/v1/stream/tasks") as response:
        assert int(response.headers["x-blox-entity-version"]) == current + 1
        revision = await served.change(1)
        assert versions(await Lines(response).objects(1)) == [revision]
    async with client.stream("GET", f"/v1/stream/tasks?entityVersion={revision}") as response:
        assert int(response.headers["x-blox-entity-version"]) == revision


async def test_deletes_are_sent_only_when_asked_and_marked(
    client: httpx.AsyncClient, served: Served
) -> None:
    gone = await served.store.get(keys.task(FLEET_A, GONE))
    assert gone is not None
    url = f"/v1/stream/tasks?entityVersion={gone.mod_revision}&deletes=true"
    async with client.stream("GET", url) as response:
        (tombstone,) = await Lines(response).objects(1)
    assert tombstone["metadata"] == {"entityVersion": str(gone.mod_revision), "deleted": True}
    assert tombstone["entity"]["taskARN"] == GONE
    deleted = await served.store.delete(keys.task(FLEET_A, T1))
    assert deleted is not None
    async with client.stream("GET", f"{url}&unknown=1") as response:
        objects = await Lines(response).objects(2)
    assert versions(objects) == [gone.mod_revision, deleted]
    assert objects[1]["metadata"]["deleted"] is True
    assert objects[1]["entity"]["taskARN"] == T1


@pytest.mark.parametrize("query", ["", "?entityVersion=0", "?entityVersion=", "?other=x"])
async def test_without_a_version_the_stream_is_live_only(
    client: httpx.AsyncClient, served: Served, query: str
) -> None:
    async with client.stream("GET", f"/v1/stream/tasks{query}") as response:
        assert response.status_code == 200
        first = await served.change(1)
        second = await served.change(2)
        assert versions(await Lines(response).objects(2)) == [first, second]


async def test_the_instance_stream_sends_instances_only(
    client: httpx.AsyncClient, served: Served
) -> None:
    instances = {e.key.rsplit("|", 1)[1] for e in (await served.store.list(keys.INSTANCES)).entries}
    objects: list[dict[str, Any]] = []
    async with client.stream("GET", "/v1/stream/instances?entityVersion=1") as response:
        lines = Lines(response)
        while not instances <= {o["entity"]["containerInstanceARN"] for o in objects}:
            objects += await lines.objects(1)
        await served.change(1)  # a task: never on this stream
        async with client.stream("GET", "/v1/stream/tasks") as other:
            await served.change(2)
            await Lines(other).objects(1)
        assert await lines.line() == b""  # a heartbeat, not the task change
    assert all("taskARN" not in o["entity"] for o in objects)


# Errors ------------------------------------------------------------------------------------


def assert_error(response: httpx.Response, text: str) -> None:
    assert (response.status_code, response.text) == (400, f"{text}\n")
    assert response.headers["content-type"] == TEXT


@pytest.mark.parametrize("route", ["tasks", "instances"])
@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "+1", " 1", "1e3", "٣", "9" * 20])
async def test_an_invalid_version_is_refused(
    client: httpx.AsyncClient, route: str, value: str
) -> None:
    response = await client.get(f"/v1/stream/{route}", params={"entityVersion": value})
    assert_error(response, texts.INVALID_ENTITY_VERSION)


@pytest.mark.parametrize("route", ["tasks", "instances"])
async def test_future_and_compacted_versions_are_out_of_range(
    client: httpx.AsyncClient, served: Served, route: str
) -> None:
    current = await served.store.revision()
    for future in (current + 2, 10**15):
        response = await client.get(f"/v1/stream/{route}?entityVersion={future}")
        assert_error(response, texts.ENTITY_VERSION_OUT_OF_RANGE)
    await served.store.compact(current)
    response = await client.get(f"/v1/stream/{route}?entityVersion={current - 1}")
    assert_error(response, texts.ENTITY_VERSION_OUT_OF_RANGE)
    for fine in (current, current + 1):
        async with client.stream("GET", f"/v1/stream/{route}?entityVersion={fine}") as ok:
            assert ok.status_code == 200 and ok.headers["content-type"] == STREAM


class _CompactedWatch:
    """A store whose watch finds its history compacted once the stream has started."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def revision(self) -> int:
        return await self._store.revision()

    async def compacted_revision(self) -> int:
        return 1

    async def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[Change]:
        raise errors.Compacted(start_revision, start_revision + 1)
        yield  # pragma: no cover


async def test_a_watch_compacted_after_the_headers_ends_the_stream(served: Served) -> None:
    store = cast(Store, _CompactedWatch(served.store))
    async with (
        serving(store) as base,
        httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client,
    ):
        response = await client.get("/v1/stream/tasks?entityVersion=1")
    assert (response.status_code, response.content) == (200, b"")


# Resuming, many clients, disconnects -------------------------------------------------------


async def test_resuming_after_the_last_version_seen_loses_and_repeats_nothing(
    client: httpx.AsyncClient, served: Served
) -> None:
    async with client.stream("GET", "/v1/stream/tasks") as response:
        written = [await served.change(v) for v in range(1, 11)]
        seen = versions(await Lines(response).objects(4))
    resume = f"/v1/stream/tasks?entityVersion={seen[-1] + 1}"
    async with client.stream("GET", resume) as response:
        written += [await served.change(v, "b" * 32) for v in range(1, 6)]
        lines = Lines(response)
        seen += versions(await lines.objects(11))
        sentinel = await served.change(11)
        seen += versions(await lines.objects(1))
    assert seen == [*written, sentinel]


async def test_twenty_clients_receive_the_same_fifty_changes_in_order(
    client: httpx.AsyncClient, served: Served
) -> None:
    async with asyncio.TaskGroup() as group:
        opened = asyncio.Event()
        ready: list[Lines] = []

        async def follow() -> list[int]:
            async with client.stream("GET", "/v1/stream/tasks") as response:
                ready.append(Lines(response))
                if len(ready) == 20:
                    opened.set()
                return versions(await ready[-1].objects(50))

        readers = [group.create_task(follow()) for _ in range(20)]
        await asyncio.wait_for(opened.wait(), 10)
        written = [await served.change(v) for v in range(1, 51)]
    assert all(reader.result() == written for reader in readers)


async def test_a_disconnect_ends_the_watch_and_leaves_no_task(
    client: httpx.AsyncClient, served: Served
) -> None:
    baseline = len(asyncio.all_tasks())
    for _ in range(3):
        async with client.stream("GET", "/v1/stream/tasks?entityVersion=1") as response:
            await Lines(response).objects(1)  # mid-replay
        async with client.stream("GET", "/v1/stream/instances") as response:
            assert await Lines(response).line() == b""  # idle: waiting on the watch
    await client.aclose()
    await until(lambda: len(asyncio.all_tasks()) <= baseline)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.01)
