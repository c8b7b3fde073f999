"""blox.client against a real CSS: lists, gets, errors, retries and streams over real HTTP.

The CSS app runs under uvicorn on 127.0.0.1 in a thread with its own event loop, over a SQLite
file filled by the real `Processor` (test_css_api's story); `Css.stop` drops every connection
and `Css.start` serves the same file again on the same port, as a restarted server would. An
ASGI wrapper records each request and can answer as v0.3 did (no paging, no blox-ecs filters).
Every wait is a bounded poll; backoffs are short but real (the clients get a fast `Backoff`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from blox import errors as blox_errors
from blox.client import (
    AsyncCssClient,
    Backoff,
    CssClient,
    HttpInvalid,
    HttpNotFound,
    HttpUnavailable,
    ServerUnreachable,
    StreamCompacted,
    entity_version,
)
from blox.clock import ManualClock
from blox.contract import css, texts
from blox.css.api import create_app
from blox.css.processor import Outcome, Processor
from blox.store import Change, Store, errors, keys, open_store
from blox.testing.ports import free_port
from tests.integration.test_css_api import (
    ARN,
    FLEET_A,
    FLEET_A_O,
    GONE,
    INSTANCE_A,
    INSTANCES,
    T1,
    TASKS,
    Exploding,
    populate,
)
from tests.integration.test_css_streams import T1_ID, TEMPLATE, expected_tasks, until

pytestmark = pytest.mark.integration

T = TypeVar("T")
FAST = Backoff(base_s=0.02, cap_s=0.2, max_attempts=None)
V03_FILTERS = {
    "/v1/tasks": {"status", "cluster", "startedBy"},
    "/v1/instances": {"status", "cluster"},
}


class Recorder:
    """ASGI wrapper: records `(path, query)` of each request; as `v03`, refuses what v0.3 did."""

    def __init__(self, app: ASGIApp, *, v03: bool = False) -> None:
        self.app, self.v03 = app, v03
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = dict(parse_qsl(scope["query_string"].decode()))
            self.requests.append((scope["path"], query))
            if self.v03 and not set(query) <= V03_FILTERS.get(scope["path"], set(query)):
                refusal = PlainTextResponse(f"{texts.FILTERS_UNSUPPORTED}\n", status_code=400)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Css:
    """The CSS over one SQLite file, served in a thread of its own (see the module docstring)."""

    def __init__(
        self, path: Path, *, v03: bool = False, serving: Callable[[Store], Any] | None = None
    ) -> None:
        self.path, self.v03, self.serving = path, v03, serving
        self.url = f"http://127.0.0.1:{free_port()}"
        self.recorder: Recorder | None = None
        self._store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        assert self.recorder is not None
        return self.recorder.requests

    def start(self) -> None:
        self._server = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server is not None and self._server.started):
            assert time.monotonic() < deadline and self._thread.is_alive(), "the CSS did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(15)
        assert not self._thread.is_alive(), "the CSS did not stop"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._store = store = await open_store(f"sqlite:{self.path}", clock=ManualClock())
        served = store if self.serving is None else self.serving(store)
        self.recorder = Recorder(create_app(store=served, heartbeat_s=0.05), v03=self.v03)
        config = uvicorn.Config(
            self.recorder,
            host="127.0.0.1",
            port=int(self.url.rsplit(":", 1)[1]),
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,  # then open streams are cancelled: their clients drop
        )
        server = uvicorn.Server(config)
        self._server = server
        try:
            await server.serve()
            await asyncio.gather(*server.server_state.tasks, return_exceptions=True)
        finally:
            await store.close()

    def run(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """The result of `work(store)`, run on the server's loop."""
        assert self._loop is not None and self._store is not None
        store = self._store
        return asyncio.run_coroutine_threadsafe(_call(work, store), self._loop).result(10)

    def change(self, version: int, task_id: str = "a" * 32) -> int:
        """Apply a task event (a task of its own per `task_id`); the store revision it wrote."""
        event = copy.deepcopy(TEMPLATE)
        event["detail"]["version"] = version
        body = json.dumps(event).replace(T1_ID, task_id)

        async def process(store: Store) -> int:
            outcome = await Processor(store, clock=ManualClock()).process(body)
            assert outcome is Outcome.APPLIED
            return await store.revision()

        return self.run(process)


async def _call(work: Callable[[Store], Awaitable[T]], store: Store) -> T:
    return await work(store)


def serve(path: Path, **options: Any) -> Iterator[Css]:
    server = Css(path, **options)
    server.start()
    server.run(populate)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Css]:
    """One CSS for the tests that only read."""
    yield from serve(tmp_path_factory.mktemp("reads") / "css.db")


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Css]:
    """A CSS answering as v0.3 did: `maxResults` and the blox-ecs filters are refused."""
    yield from serve(tmp_path_factory.mktemp("old") / "css.db", v03=True)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Css]:
    """A CSS of this test's own, to change, compact, stop and start."""
    yield from serve(tmp_path / "css.db")


def labels(items: list[Any], table: dict[str, tuple[str, str]]) -> set[str]:
    by_pair = {pair: label for label, pair in table.items()}
    found = [by_pair[(i.entity.cluster_arn, _arn(i))] for i in items]
    assert len(found) == len(set(found)), "an item was listed twice"
    return set(found)


def _arn(item: css.TaskPublic | css.ContainerInstancePublic) -> str:
    if isinstance(item, css.TaskPublic):
        return item.entity.task_arn
    return item.entity.container_instance_arn


async def mod_revision(store: Store, key: str) -> int:
    entry = await store.get(key)
    assert entry is not None
    return entry.mod_revision


# Lists and gets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"T1", "FG", "LEG", "T2", "T1o", "T1b"}),
        ({"status": "running"}, {"FG", "LEG", "T1o"}),
        ({"cluster": "fleet-a"}, {"T1", "FG", "LEG", "T2", "T1o"}),
        ({"cluster": FLEET_A_O}, {"T1o"}),
        ({"started_by": "blox-env-logs-rev3", "status": "rUnNiNg"}, {"T1o"}),
        ({"container_instance": INSTANCES["B"][1], "status": "stopped"}, {"T2"}),
        ({"family": "log-shipper", "cluster": "fleet-a"}, {"T1", "T1o"}),
        ({"group": "service:node-exporter", "cluster": FLEET_A}, {"LEG"}),
        ({"family": "nothing"}, set()),
    ],
    ids=repr,
)
def test_tasks_follow_every_page_of_every_filter(
    reads: Css, filters: dict[str, str], expected: set[str]
) -> None:
    with CssClient(reads.url, page_size=1) as client:
        reads.requests.clear()
        assert labels(client.tasks(**filters), TASKS) == expected
    pages = [query for path, query in reads.requests if path == "/v1/tasks"]
    assert len(pages) >= max(len(expected), 1)
    assert all(q["maxResults"] == "1" for q in pages)
    assert all("nextToken" in q for q in pages[1:]) and "nextToken" not in pages[0]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"A", "B", "Ao"}),
        ({"status": "Draining"}, {"Ao"}),
        ({"cluster": "fleet-a", "status": "ACTIVE"}, {"B"}),
        ({"cluster": "fleet-b"}, set()),
    ],
    ids=repr,
)
async def test_instances_are_listed_by_the_async_client_too(
    reads: Css, filters: dict[str, str], expected: set[str]
) -> None:
    async with AsyncCssClient(reads.url, page_size=2) as client:
        assert labels(await client.instances(**filters), INSTANCES) == expected
        assert labels(await client.tasks(status="stopped"), TASKS) == {"T1", "T2"}


def test_a_task_and_an_instance_are_fetched_with_their_entity_version(reads: Css) -> None:
    with CssClient(reads.url) as client:
        by_name, by_arn = client.task("fleet-a", T1), client.task(FLEET_A, T1)
        instance = client.instance("fleet-a", INSTANCE_A)
        other = client.task(FLEET_A_O, TASKS["T1o"][1])
    assert by_name == by_arn and by_name.entity.task_arn == T1
    assert entity_version(by_name) == reads.run(lambda s: mod_revision(s, keys.task(FLEET_A, T1)))
    assert instance.entity.ec2_instance_id == "i-0a1b2c3d4e5f60718"
    assert entity_version(instance) == reads.run(
        lambda s: mod_revision(s, keys.instance(FLEET_A, INSTANCE_A))
    )
    assert other.entity.cluster_arn == FLEET_A_O


async def test_the_async_client_fetches_the_same_entities(reads: Css) -> None:
    async with AsyncCssClient(reads.url) as client:
        task = await client.task("fleet-a", TASKS["LEG"][1])
        instance = await client.instance(FLEET_A, INSTANCE_A)
        with pytest.raises(HttpNotFound):
            await client.task("fleet-a", GONE)
    assert task.entity.task_arn == TASKS["LEG"][1]
    assert instance.entity.container_instance_arn == INSTANCE_A


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda c: c.task("fleet-a", GONE), texts.TASK_NOT_FOUND),
        (lambda c: c.task("fleet-b", T1), texts.TASK_NOT_FOUND),
        (lambda c: c.instance("fleet-a", f"{ARN}:container-instance/x"), texts.INSTANCE_NOT_FOUND),
        (lambda c: c.task("fleet-a", "not-an-arn"), texts.PAGE_NOT_FOUND),
        (lambda c: c.task("fleet a", T1), texts.PAGE_NOT_FOUND),
    ],
)
def test_a_404_is_not_found_with_the_servers_text(
    reads: Css, call: Callable[[CssClient], object], text: str
) -> None:
    with CssClient(reads.url) as client, pytest.raises(HttpNotFound) as caught:
        call(client)
    assert (caught.value.status, caught.value.text) == (404, text)
    assert isinstance(caught.value, blox_errors.NotFound | blox_errors.Permanent)


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda c: c.tasks(status="active"), texts.INVALID_STATUS),
        (lambda c: c.instances(cluster=T1), texts.INVALID_CLUSTER),
        (lambda c: c.tasks(family="log shipper"), texts.INVALID_FAMILY),
        (lambda c: c.tasks(container_instance="i-0a1b2c3d"), texts.INVALID_CONTAINER_INSTANCE),
    ],
)
def test_a_400_is_invalid_with_the_servers_text_and_is_not_retried(
    reads: Css, call: Callable[[CssClient], object], text: str
) -> None:
    with CssClient(reads.url, backoff=Backoff(max_attempts=5)) as client:
        reads.requests.clear()
        with pytest.raises(HttpInvalid) as caught:
            call(client)
    assert (caught.value.status, caught.value.text) == (400, text)
    assert len(reads.requests) == 1


def test_a_v03_server_is_listed_in_one_unpaged_request_from_then_on(old: Css) -> None:
    with CssClient(old.url, page_size=2) as client:
        assert labels(client.tasks(status="running"), TASKS) == {"FG", "LEG", "T1o"}
        assert old.requests == [
            ("/v1/tasks", {"status": "running", "maxResults": "2"}),
            ("/v1/tasks", {"status": "running"}),
        ]
        old.requests.clear()
        assert labels(client.instances(), INSTANCES) == {"A", "B", "Ao"}
        assert old.requests == [("/v1/instances", {})]
        with pytest.raises(HttpInvalid, match=texts.FILTERS_UNSUPPORTED):
            client.tasks(family="web")  # v0.3 knew no such filter


async def test_the_async_client_falls_back_for_a_v03_server_too(old: Css) -> None:
    async with AsyncCssClient(old.url, page_size=1) as client:
        assert labels(await client.instances(cluster="fleet-a"), INSTANCES) == {"A", "B", "Ao"}


# Retries -----------------------------------------------------------------------------------


def test_an_unreachable_server_is_retried_then_reported() -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    requests, watch = Backoff(max_attempts=3), Backoff(max_attempts=2)
    with CssClient(url, backoff=requests, watch_backoff=watch, sleep=sleeps.append) as client:
        with pytest.raises(ServerUnreachable, match="GET /v1/tasks"):
            client.tasks()
        assert len(sleeps) == 2
        with pytest.raises(ServerUnreachable, match="GET /v1/stream/tasks"):
            client.watch_tasks().open()
        assert len(sleeps) == 3


async def test_an_unavailable_store_is_retried_then_reported(tmp_path: Path) -> None:
    server = Css(tmp_path / "css.db", serving=lambda _: Exploding(errors.StoreUnavailable("")))
    server.start()
    try:
        slept = Sleeps()
        backoff = Backoff(base_s=0.01, cap_s=0.01, max_attempts=4)
        async with AsyncCssClient(server.url, backoff=backoff, clock=slept) as client:
            with pytest.raises(HttpUnavailable) as caught:
                await client.task("fleet-a", T1)
        assert (caught.value.status, caught.value.text) == (503, texts.UNEXPECTED_INTERNAL)
        assert len(server.requests) == 4 and len(slept.asked) == 3
    finally:
        server.stop()


class Sleeps(ManualClock):
    """A clock whose sleeps return at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


# Streams -----------------------------------------------------------------------------------


async def test_a_live_watch_delivers_every_change_made_after_it_opened(fresh: Css) -> None:
    async with AsyncCssClient(fresh.url) as client, client.watch_tasks() as watch:
        written = [await asyncio.to_thread(fresh.change, v) for v in range(1, 4)]
        got = [await anext(watch) for _ in written]
    assert [version for version, _ in got] == written
    assert all(isinstance(task, css.TaskPublic) for _, task in got)
    assert got[-1][1].entity.task_arn == T1.replace(T1_ID, "a" * 32)
    assert [entity_version(task) for _, task in got] == written


def test_a_watch_from_a_version_replays_from_it_then_follows_live(fresh: Css) -> None:
    start = fresh.run(lambda s: mod_revision(s, keys.task(FLEET_A, T1)))
    expected = fresh.run(lambda s: expected_tasks(s, start))
    with CssClient(fresh.url) as client, client.watch_instances(1) as instances:
        with client.watch_tasks(start) as watch:
            replayed = [next(watch) for _ in expected]
            assert [css.dump(task) for _, task in replayed] == expected
            assert replayed[0][0] == start
            live = fresh.change(1)
            assert next(watch)[0] == live
        assert isinstance(next(instances)[1], css.ContainerInstancePublic)


async def test_heartbeats_are_skipped_and_the_next_change_comes_through(fresh: Css) -> None:
    async with AsyncCssClient(fresh.url) as client, client.watch_tasks() as watch:

        async def first() -> tuple[int, css.TaskPublic]:
            return await anext(watch)

        reading = asyncio.create_task(first())
        await until(lambda: watch.heartbeats >= 3)
        assert not reading.done()
        revision = await asyncio.to_thread(fresh.change, 1)
        version, task = await asyncio.wait_for(reading, 10)
    assert version == revision and task.entity.last_status == "RUNNING"


async def test_a_watch_resumes_after_a_restart_losing_and_repeating_nothing(fresh: Css) -> None:
    seen: list[int] = []
    async with AsyncCssClient(fresh.url, watch_backoff=FAST) as client:
        first = await asyncio.to_thread(fresh.change, 1)
        async with client.watch_tasks(first) as watch:

            async def consume(count: int) -> None:
                async for version, _ in watch:
                    seen.append(version)
                    if len(seen) == count:
                        return

            written = [first] + [await asyncio.to_thread(fresh.change, v) for v in range(2, 9)]
            consumer = asyncio.create_task(consume(14))
            await until(lambda: len(seen) >= 3)
            await asyncio.to_thread(fresh.stop)
            await until(lambda: watch.drops >= 1)  # it noticed, and retries while we are down
            await asyncio.to_thread(fresh.start)
            written += [await asyncio.to_thread(fresh.change, v, "b" * 32) for v in range(1, 7)]
            await asyncio.wait_for(consumer, 30)
    assert seen == written


def test_the_blocking_watch_resumes_after_a_restart_too(fresh: Css) -> None:
    seen: list[int] = []
    with (
        CssClient(fresh.url, watch_backoff=FAST, sleep=time.sleep) as client,
        client.watch_tasks() as watch,
    ):
        written = [fresh.change(v) for v in range(1, 4)]
        seen += [next(watch)[0] for _ in written]  # a live watch, with a version since
        consumer = threading.Thread(target=lambda: seen.extend(v for v, _ in take(watch, 5)))
        consumer.start()
        fresh.stop()
        deadline = time.monotonic() + 10
        while watch.drops < 1:
            assert time.monotonic() < deadline, "the watch did not notice the restart"
            time.sleep(0.01)
        fresh.start()
        written += [fresh.change(v, "c" * 32) for v in range(1, 6)]
        consumer.join(30)
        assert not consumer.is_alive()
    assert seen == written


def take(watch: Iterator[T], count: int) -> list[T]:
    return [next(watch) for _ in range(count)]


def test_a_watch_from_a_compacted_version_raises_stream_compacted(fresh: Css) -> None:
    current = fresh.run(lambda s: s.revision())
    fresh.run(lambda s: s.compact(current))
    with CssClient(fresh.url) as client, pytest.raises(StreamCompacted) as caught:
        client.watch_tasks(current - 1).open()
    assert (caught.value.status, caught.value.text) == (400, texts.ENTITY_VERSION_OUT_OF_RANGE)
    assert isinstance(caught.value, blox_errors.Compacted)


async def test_a_watch_resuming_past_a_compaction_raises_stream_compacted(fresh: Css) -> None:
    async with (
        AsyncCssClient(fresh.url, watch_backoff=FAST) as client,
        client.watch_tasks() as watch,
    ):
        written = [await asyncio.to_thread(fresh.change, v) for v in (1, 2)]
        assert [(await anext(watch))[0] for _ in written] == written
        await asyncio.to_thread(fresh.stop)
        await asyncio.to_thread(fresh.start)
        await asyncio.to_thread(fresh.change, 3)
        current = await asyncio.to_thread(fresh.change, 4)
        await asyncio.to_thread(fresh.run, lambda s: s.compact(current))
        with pytest.raises(StreamCompacted):
            await anext(watch)
        assert watch.last_version == written[-1]


async def test_a_closed_watch_ends_its_iteration(fresh: Css) -> None:
    async with AsyncCssClient(fresh.url) as client:
        watch = await client.watch_tasks().open()
        await watch.aclose()
        assert [item async for item in watch] == []


class EndingAtOnce:
    """A store whose every watch ends before its first change: each stream is 200, then EOF."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def revision(self) -> int:
        return await self._store.revision()

    async def compacted_revision(self) -> int:
        return 1

    async def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[Change]:
        return
        yield  # pragma: no cover


def test_a_stream_that_keeps_ending_at_once_is_not_hammered(tmp_path: Path) -> None:
    server = Css(tmp_path / "css.db", serving=EndingAtOnce)
    server.start()
    try:
        sleeps: list[float] = []
        watch_backoff = Backoff(base_s=0.5, cap_s=1.0, max_attempts=3)
        with (
            CssClient(server.url, watch_backoff=watch_backoff, sleep=sleeps.append) as client,
            pytest.raises(ServerUnreachable, match="keeps ending at once"),
        ):
            next(client.watch_tasks(1))
        assert sleeps == [0.5, 1.0]
        assert [path for path, _ in server.requests] == ["/v1/stream/tasks"] * 3
    finally:
        server.stop()
