"""What only a real etcd shows: server restarts, member failover, unreachable servers, compaction.

The conformance suite (test_kv, test_watch, ...) covers the `Store` contract on every backend;
this module covers what only a real etcd can do: lose its server or a cluster member mid-watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from blox.store import Election, errors
from blox.store.base import Change, Delete, Put
from blox.store.etcd import EtcdStore, open_etcd
from blox.testing.etcd import EtcdCluster, EtcdServer

pytestmark = pytest.mark.etcd

WAIT_S = 30.0
Seen = tuple[str, str, int]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """A single etcd server of this module's own, since its tests stop and restart it."""
    etcd = EtcdServer(tmp_path_factory.mktemp("etcd-single"))
    try:
        etcd.start()
        yield etcd
    finally:
        etcd.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """A 3-member etcd cluster."""
    members = EtcdCluster(Path(tmp_path_factory.mktemp("etcd-cluster")))
    try:
        members.start()
        yield members
    finally:
        members.stop()


@pytest.fixture
async def store(server: EtcdServer) -> AsyncIterator[EtcdStore]:
    """A client of the single server."""
    opened = await open_etcd(server.url, [server.endpoint])
    yield opened
    await opened.close()


class Recorder:
    """Runs one watch in a task and keeps every change it yields."""

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int) -> None:
        self.changes: list[Change] = []
        self._task = asyncio.create_task(self._run(store, prefix, start_revision))

    async def _run(self, store: EtcdStore, prefix: str, start_revision: int) -> None:
        async for change in store.watch(prefix, start_revision=start_revision):
            self.changes.append(change)

    def seen(self) -> list[Seen]:
        """(kind, key, revision) of every change so far, in delivery order."""
        return [(c.kind, c.key, c.revision) for c in self.changes]

    async def wait_for(self, count: int) -> None:
        """Poll until `count` changes arrived; fail at once if the watch ended."""
        deadline = time.monotonic() + WAIT_S
        while len(self.changes) < count:
            if self._task.done():
                raise AssertionError(f"watch ended after {self.seen()}") from self._task.exception()
            assert time.monotonic() < deadline, f"only {self.seen()} after {WAIT_S} s"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Cancel the watch (which closes its generator)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def write_batch(store: EtcdStore, prefix: str, tag: str) -> list[Seen]:
    """Two puts and a transaction of two changes; the changes a watch must report for them."""
    expected: list[Seen] = []
    for name in ("a", "b"):
        revision = await store.put(f"{prefix}{name}", tag.encode())
        expected.append(("put", f"{prefix}{name}", revision))
    revision = await store.txn(
        compares=[], ops=[Put(f"{prefix}a", b"txn-" + tag.encode()), Delete(f"{prefix}b")]
    )
    return [*expected, ("put", f"{prefix}a", revision), ("delete", f"{prefix}b", revision)]


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
async def test_a_watch_sees_every_change_exactly_once_across_a_server_restart(
    server: EtcdServer, store: EtcdStore, kill: bool
) -> None:
    prefix = f"restart-{'kill' if kill else 'term'}/"
    recorder = Recorder(store, prefix, await store.revision() + 1)
    try:
        expected = await write_batch(store, prefix, "before")
        await recorder.wait_for(len(expected))

        server.stop(kill=kill)
        with pytest.raises(errors.StoreUnavailable, match="is unreachable"):
            await store.put(f"{prefix}while-down", b"lost")
        server.start()

        expected += await write_batch(store, prefix, "after")
        last = await store.put(f"{prefix}last", b"end")
        expected.append(("put", f"{prefix}last", last))
        await recorder.wait_for(len(expected))
        assert recorder.seen() == expected
        assert await store.get(f"{prefix}while-down") is None
    finally:
        await recorder.stop()


async def test_reads_writes_and_a_watch_fail_over_when_the_connected_member_dies(
    cluster: EtcdCluster,
) -> None:
    # The client starts on the leader: losing it also costs writes an election (and a timeout).
    victim = cluster.leader()
    endpoints = cluster.endpoints[victim:] + cluster.endpoints[:victim]
    store = await open_etcd(cluster.url, endpoints, timeout_s=2.0)
    assert store.endpoint == cluster.endpoints[victim]
    prefix = "failover/"
    recorder = Recorder(store, prefix, await store.revision() + 1)
    try:
        expected = await write_batch(store, prefix, "before")
        await recorder.wait_for(len(expected))

        cluster.stop_member(victim)
        expected += await write_batch(store, prefix, "after")
        entry = await store.get(f"{prefix}a")
        assert entry is not None and entry.value == b"txn-after"
        page = await store.list(prefix)
        assert [e.key for e in page.entries] == [f"{prefix}a"]
        assert store.endpoint != cluster.endpoints[victim]

        last = await store.put(f"{prefix}last", b"end")
        expected.append(("put", f"{prefix}last", last))
        await recorder.wait_for(len(expected))
        assert recorder.seen() == expected
    finally:
        await recorder.stop()
        await store.close()
        cluster.start_member(victim)


@pytest.mark.parametrize(
    "endpoints",
    [[("127.0.0.1", 1)], [("127.0.0.1", 1), ("127.0.0.1", 2)]],
    ids=["one-endpoint", "two-endpoints"],
)
async def test_an_unreachable_etcd_raises_store_unavailable_naming_its_endpoints_quickly(
    endpoints: list[tuple[str, int]],
) -> None:
    names = ",".join(f"{host}:{port}" for host, port in endpoints)
    began = time.monotonic()
    with pytest.raises(errors.StoreUnavailable) as failure:
        await open_etcd(f"etcd://{names}", endpoints, timeout_s=2.0)
    assert f"etcd at {names} is unreachable" in str(failure.value)
    assert time.monotonic() - began < 5.0


async def test_a_watch_from_before_the_compaction_point_raises_compacted(
    server: EtcdServer, store: EtcdStore
) -> None:
    prefix = "compaction/"
    first = await store.put(f"{prefix}k", b"1")
    point = await store.put(f"{prefix}k", b"2")
    await store.put(f"{prefix}k", b"3")
    await store.compact(point)
    await store.compact(point - 1)  # already compacted: a no-op

    with pytest.raises(errors.Compacted) as failure:
        async for _ in store.watch(prefix, start_revision=first):
            pass
    assert (failure.value.requested, failure.value.compacted) == (first, point)

    watch = store.watch(prefix, start_revision=point)
    try:
        change = await anext(watch)
    finally:
        await watch.aclose()
    assert (change.kind, change.revision, change.entry and change.entry.value) == (
        "put",
        point,
        b"2",
    )


async def test_compacted_revision_reports_a_compaction_made_by_another_client(
    server: EtcdServer, store: EtcdStore
) -> None:
    await store.put("compacted-elsewhere/k", b"1")
    point = await store.put("compacted-elsewhere/k", b"2")
    other = await open_etcd(server.url, [server.endpoint])
    try:
        await other.compact(point)
    finally:
        await other.close()
    assert await store.compacted_revision() == point
    with pytest.raises(errors.InvalidOperation):
        await store.compact(await store.revision() + 100)


@pytest.mark.slow
async def test_leadership_survives_member_loss_and_passes_on_when_the_leader_crashes(
    cluster: EtcdCluster,
) -> None:
    victim = cluster.leader()  # both clients start on the etcd leader, which then dies
    endpoints = cluster.endpoints[victim:] + cluster.endpoints[:victim]
    stores = [await open_etcd(cluster.url, endpoints, timeout_s=2.0) for _ in range(2)]
    active = Election(stores[0], "cluster-election", ttl_s=6)
    standby = Election(stores[1], "cluster-election", ttl_s=6)
    try:
        leading = await asyncio.wait_for(active.campaign("active"), WAIT_S)
        waiting = asyncio.create_task(standby.campaign("standby"))
        for _ in range(int(WAIT_S / 0.02)):  # until the standby's campaign key is written
            if len((await stores[1].list("election/cluster-election/")).entries) == 2:
                break
            await asyncio.sleep(0.02)
        cluster.stop_member(victim)
        held_until = time.monotonic() + 6 + 2  # one TTL and then some, in real time
        while time.monotonic() < held_until:
            assert not leading.lost.is_set(), "leadership lost through a member failover"
            assert not waiting.done(), "the standby took over from a live leader"
            await asyncio.sleep(0.1)
        assert await standby.leader() == "active"
        await active.abandon()  # the active replica crashes: its lease runs out
        taken = await asyncio.wait_for(waiting, WAIT_S)
        assert not taken.lost.is_set()
        assert await standby.leader() == "standby"
        await standby.resign()
    finally:
        for store in stores:
            await store.close()
        cluster.start_member(victim)
