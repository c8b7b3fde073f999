"""The stream hub: one shared store watch per kind, replays that switch over, slow clients.

Streams are read two ways: over real HTTP (uvicorn on 127.0.0.1 in the test's event loop, httpx
or a raw socket), and straight from `Hub.stream` (the body the route sends), on a memory, a
SQLite and (where no compaction touches the shared server) a real etcd store. The oracle is
an independent watch of the store rendered with `blox.contract.css`
(`test_css_streams.expected_tasks`). Every wait is bounded; nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from blox.clock import ManualClock, SystemClock
from blox.css.api import create_app, hub, routes_streams
from blox.model import ecs
from blox.store import Put, Store, keys, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from tests.integration.test_css_streams import expected_tasks, oracle_line, until

pytestmark = pytest.mark.integration

CLUSTER = "arn:aws:ecs:us-east-1:111122223333:cluster/hub"
HEARTBEAT_S = 0.05
TIMEOUT_S = 20.0
_numbers = itertools.count()


@pytest.fixture(params=["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store backend in turn; etcd is the session's real server (never compacted here)."""
    if request.param == "etcd":
        server: EtcdServer = request.getfixturevalue("etcd_server")
        url = server.url
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["memory", "sqlite"])
async def local_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store of this test's own, which it may compact."""
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


def task(*, reason_bytes: int = 0, tombstone: bool = False) -> tuple[str, bytes]:
    """A new task record (key, value); `reason_bytes` pads its stoppedReason, for big lines."""
    number = next(_numbers)
    arn = f"arn:aws:ecs:us-east-1:111122223333:task/hub/{number:032x}"
    detail = {"taskArn": arn, "clusterArn": CLUSTER, "lastStatus": "RUNNING"}
    if reason_bytes:
        detail["stoppedReason"] = "x" * reason_bytes
    record = ecs.Record(
        kind="task",
        cluster_arn=CLUSTER,
        arn=arn,
        version=1,
        detail=detail,
        deleted_at=datetime(2026, 11, 22, tzinfo=UTC) if tombstone else None,
    )
    return keys.task(CLUSTER, arn), ecs.encode(record)


async def write(store: Store, count: int, *, reason_bytes: int = 0) -> list[int]:
    """`count` new tasks, one put each; their revisions."""
    return [await store.put(*task(reason_bytes=reason_bytes)) for _ in range(count)]


async def write_transactions(store: Store, count: int, *, size: int = 3) -> list[int]:
    """`count` transactions of `size` new tasks each; their revisions."""
    return [
        await store.txn(compares=[], ops=[Put(*task()) for _ in range(size)]) for _ in range(count)
    ]


async def expected_changes(store: Store, start: int, count: int) -> list[bytes]:
    """The oracle for `count` changes from revision `start` on, transactions included (the
    oracle of test_css_streams stops at the first change of the last revision)."""
    lines: list[bytes] = []
    seen = 0
    async for change in store.watch(keys.TASKS, start_revision=start):
        lines.extend(oracle_line(change, False))
        seen += 1
        if seen == count:
            break
    return lines


class Body:
    """The lines of one stream body (chunks of bytes); heartbeats are counted and skipped."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.heartbeats = 0

    async def lines(self, count: int) -> list[bytes]:
        """The next `count` lines that are not heartbeats, without their newlines."""
        found: list[bytes] = []
        async with asyncio.timeout(TIMEOUT_S):
            while len(found) < count:
                while b"\n" not in self._buffer:
                    self._buffer += await anext(self._chunks)
                line, _, self._buffer = self._buffer.partition(b"\n")
                if line:
                    found.append(line)
                else:
                    self.heartbeats += 1
        return found

    async def through(self, revision: int) -> list[bytes]:
        """Lines up to and including the first one of entity version `revision`."""
        found: list[bytes] = []
        marker = f'"entityVersion":"{revision}"'.encode()
        while not found or marker not in found[-1]:
            found += await self.lines(1)
        return found

    async def rest(self) -> list[bytes]:
        """Every line until the body ends."""
        found: list[bytes] = []
        async with asyncio.timeout(TIMEOUT_S):
            async for chunk in self._chunks:
                self._buffer += chunk
        for line in self._buffer.split(b"\n"):
            found += [line] if line else []
        self._buffer = b""
        return found


def hubs_of(store: Store, ring_lines: int) -> dict[ecs.Kind, hub.Hub]:
    return routes_streams.hubs(store, clock=SystemClock(), ring_lines=ring_lines)


@asynccontextmanager
async def opened(
    kind_hub: hub.Hub, store: Store, first: int | None = None, *, deletes: bool = False
) -> AsyncIterator[Body]:
    """A stream of `kind_hub` from `first` (None: live, as the route does without a version)."""
    current = await store.revision()
    chunks = kind_hub.stream(
        first=current + 1 if first is None else first,
        current=current,
        deletes=deletes,
        heartbeat_s=HEARTBEAT_S,
    )
    async with contextlib.aclosing(chunks):
        yield Body(chunks)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    serving_task = asyncio.create_task(server.serve())
    await until(lambda: server.started or serving_task.done(), timeout_s=10)
    assert server.started, "the CSS server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving_task, 10)


def running(name: str) -> int:
    """How many tasks of this loop have a name starting with `name` and are not done."""
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith(name) and not t.done())


# Fan-out --------------------------------------------------------------------------------------


async def test_many_streams_get_the_same_bytes_in_order_from_one_shared_watch(
    store: Store,
) -> None:
    app = create_app(store=store, heartbeat_s=HEARTBEAT_S)
    counters = app.state.hubs["task"].counters
    start = await store.revision() + 1
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        bodies = []
        for _ in range(25):
            response = await stack.enter_async_context(client.stream("GET", "/v1/stream/tasks"))
            assert int(response.headers["x-blox-entity-version"]) >= start
            bodies.append(Body(response.aiter_bytes()))
        await write(store, 30)
        expected = await expected_tasks(store, start)
        got = await asyncio.gather(*(body.lines(len(expected)) for body in bodies))
    assert len(expected) == 30
    assert all(lines == expected for lines in got)
    assert (counters.streams, counters.feeds, counters.replays) == (25, 1, 0)


async def test_deletions_reach_only_the_streams_that_asked_for_them(store: Store) -> None:
    kind_hub = hubs_of(store, ring_lines=64)["task"]
    start = await store.revision() + 1
    async with (
        opened(kind_hub, store, deletes=True) as with_deletes,
        opened(kind_hub, store) as without,
    ):
        key, value = task()
        await store.put(key, value)
        await store.put(*task(tombstone=True))
        assert await store.delete(key) is not None
        await store.put(*task())
        both = await with_deletes.lines(4)
        assert both == await expected_tasks(store, start, deletes=True)
        assert [b'"deleted":true' in line for line in both] == [False, True, True, False]
        assert await without.lines(2) == await expected_tasks(store, start)
    assert kind_hub.counters.replays == 0


# Replays that switch over -------------------------------------------------------------------


@pytest.mark.parametrize("ring_lines", [1, 3, 64])
async def test_a_late_joiner_replays_then_switches_to_the_shared_watch_without_gap_or_repeat(
    store: Store, ring_lines: int
) -> None:
    """With a ring of 1 or 3 lines the stream also falls out of it again, and back in."""
    kind_hub = hubs_of(store, ring_lines)["task"]
    early = await write(store, 12)
    async with opened(kind_hub, store, early[5]) as late:
        got = await late.lines(3)  # the feed starts at the live edge, the stream replays
        for _ in range(4):  # the ring moves on while the stream replays
            await write(store, 7)
            got += await late.lines(2)
        sentinel = (await write(store, 1))[0]
        got += await late.through(sentinel)
        await write(store, 3)
        got += await late.lines(3)
    assert got == await expected_tasks(store, early[5])
    assert kind_hub.counters.feeds == 1 and kind_hub.counters.replays >= 1


async def test_a_replay_that_caught_up_leaves_its_own_watch_for_the_shared_ring(
    store: Store,
) -> None:
    kind_hub = hubs_of(store, ring_lines=64)["task"]
    early = await write(store, 5)
    async with opened(kind_hub, store, early[0]) as late:
        got = await late.lines(5)  # a replay: the feed started at the live edge
        assert running("blox.css.replay") == 1
        more = await write(store, 3)  # past the feed's start: the stream switches after these
        got += await late.lines(3)
        more += await write(store, 1)
        got += await late.lines(1)
        await until(lambda: running("blox.css.replay") == 0)
        assert running("blox.css.feed") == 2  # the shared watch and its wake-ups
    assert got == await expected_tasks(store, early[0])
    assert more[0] == early[-1] + 1
    assert (kind_hub.counters.feeds, kind_hub.counters.replays) == (1, 1)


@pytest.mark.parametrize("ring_lines", [1, 2, 64])
async def test_switching_inside_a_transaction_loses_and_repeats_nothing(
    store: Store, ring_lines: int
) -> None:
    """Changes of one transaction share a revision: streams switch by (revision, index)."""
    kind_hub = hubs_of(store, ring_lines)["task"]
    early = await write_transactions(store, 6)
    async with opened(kind_hub, store) as live, opened(kind_hub, store, early[2]) as late:
        got = await late.lines(4)  # one transaction and the first change of the next
        live_start = await store.revision() + 1
        later = await write_transactions(store, 6)
        sentinel = (await write(store, 1))[0]
        got += await late.through(sentinel)
        assert got == await expected_changes(store, early[2], 4 * 3 + 6 * 3 + 1)
        assert await live.through(sentinel) == await expected_changes(store, live_start, 19)
    assert later[0] == live_start and kind_hub.counters.replays >= 1


async def test_a_stream_sends_nothing_from_the_ring_before_its_own_start(store: Store) -> None:
    """A feed another stream started earlier has lines this stream must not send."""
    kind_hub = hubs_of(store, ring_lines=64)["task"]
    before = (await write(store, 1))[0]
    chunks = kind_hub.stream(first=before + 1, current=before - 1, deletes=False, heartbeat_s=1)
    async with contextlib.aclosing(chunks):
        body = Body(chunks)
        revisions = await write(store, 3)
        assert await body.lines(3) == await expected_tasks(store, revisions[0])
    assert revisions[0] == before + 1 and kind_hub.counters.replays == 0


# Slow clients -------------------------------------------------------------------------------


class RawStream:
    """A stream read over a socket with a tiny receive buffer, only when told to (h11 parses)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = h11.Connection(our_role=h11.CLIENT)
        self.body = b""

    @classmethod
    async def open(cls, base: str, path: str) -> RawStream:
        host, port = base.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning: fills fast
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        stream = cls(sock)
        request = h11.Request(method="GET", target=path, headers=[("Host", host)])
        await asyncio.get_running_loop().sock_sendall(sock, stream.parser.send(request))
        response = await stream._next_event()
        assert isinstance(response, h11.Response) and response.status_code == 200
        return stream

    async def lines(self, count: int) -> list[bytes]:
        """The first `count` lines of the body that are not heartbeats."""
        async with asyncio.timeout(TIMEOUT_S):
            while len(found := self._complete()) < count:
                event = await self._next_event()
                assert isinstance(event, h11.Data)
                self.body += bytes(event.data)
        return found[:count]

    def _complete(self) -> list[bytes]:
        return [line for line in self.body[: self.body.rfind(b"\n") + 1].split(b"\n") if line]

    async def _next_event(self) -> Any:
        while (event := self.parser.next_event()) is h11.NEED_DATA:
            data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
            self.parser.receive_data(data)
        return event


async def test_a_slow_client_falls_back_to_a_replay_and_never_delays_a_fast_one(
    local_store: Store,
) -> None:
    store = local_store
    app = create_app(store=store, heartbeat_s=HEARTBEAT_S, stream_ring_lines=4)
    counters = app.state.hubs["task"].counters
    start = await store.revision() + 1
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        slow = await RawStream.open(base, "/v1/stream/tasks")
        try:
            async with client.stream("GET", "/v1/stream/tasks") as response:
                fast = Body(response.aiter_bytes())
                await until(lambda: counters.streams == 2)
                await write(store, 90, reason_bytes=60_000)  # 7 MB: more than the socket holds
                expected = await expected_tasks(store, start)
                # The slow client has read nothing since its headers, and the fast one gets all.
                assert await fast.lines(len(expected)) == expected
            assert await slow.lines(len(expected)) == expected
        finally:
            slow.sock.close()
    assert counters.overflows >= 1 and counters.replays >= 1


# Compaction, lifetime -----------------------------------------------------------------------


async def test_compaction_ends_a_replay_it_overtook_and_spares_the_shared_stream(
    local_store: Store,
) -> None:
    store = local_store
    kind_hub = hubs_of(store, ring_lines=64)["task"]
    old = await write(store, 3000)
    expected_old = await expected_tasks(store, old[0])
    async with opened(kind_hub, store) as live:
        live_start = await store.revision() + 1
        async with opened(kind_hub, store, old[0]) as replay:
            got = await replay.lines(10)
            await store.compact(await store.revision())
            got += await replay.rest()
        assert 10 < len(got) < len(expected_old)  # it ended: the client resumes and gets 400
        assert got == expected_old[: len(got)]  # a prefix: nothing lost or repeated before it
        await write(store, 5)
        expected_live = await expected_tasks(store, live_start)
        assert await live.lines(len(expected_live)) == expected_live
    assert kind_hub.counters.replays == 1


async def test_the_shared_watch_stops_with_the_last_stream_and_restarts_with_the_next(
    store: Store,
) -> None:
    kind_hub = hubs_of(store, ring_lines=64)["task"]
    for round_ in (1, 2):
        async with opened(kind_hub, store) as body:
            revisions = await write(store, 1)
            assert await body.lines(1) == await expected_tasks(store, revisions[0])
            assert running("blox.css.feed") == 2  # its watch and its wake-ups
        await until(lambda: running("blox.css.feed") == 0)
        assert kind_hub.counters.feeds == round_


async def test_when_the_app_stops_the_shared_watch_stops_and_open_streams_go_on(
    store: Store,
) -> None:
    app = create_app(store=store, heartbeat_s=HEARTBEAT_S)
    kind_hub = app.state.hubs["task"]
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    async with opened(kind_hub, store) as body:
        revisions = await write(store, 1)
        assert await body.lines(1) == await expected_tasks(store, revisions[0])
        await lifespan.__aexit__(None, None, None)
        await until(lambda: running("blox.css.feed") == 0)
        revisions = await write(store, 2)
        assert await body.lines(2) == await expected_tasks(store, revisions[0])
        async with opened(kind_hub, store) as late:
            revisions = await write(store, 1)
            assert await late.lines(1) == await expected_tasks(store, revisions[0])
    assert (kind_hub.counters.feeds, kind_hub.counters.replays) == (1, 2)
