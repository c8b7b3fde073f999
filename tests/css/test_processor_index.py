"""The processor keeps the secondary indexes: status changes, tombstones, expiry, races, reindex.

Runs on memory, SQLite and a real etcd server; each test works in a cluster of its own, so the
shared etcd server's other keys never meet its assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from blox.clock import ManualClock
from blox.css import errors as css_errors
from blox.css import index
from blox.css.processor import Outcome, Processor, reindex
from blox.model import ecs, events
from blox.store import Compare, Entry, Op, Store, errors, keys, open_store
from blox.testing.etcd import EtcdServer

ACCOUNT, REGION = "111122223333", "us-east-1"
PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store backend in turn; etcd is the session's real server."""
    if request.param == "etcd":
        server: EtcdServer = request.getfixturevalue("etcd_server")
        url = server.url
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'store.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def cluster() -> str:
    """A cluster ARN no other test uses."""
    return f"{PREFIX}:cluster/c-{uuid.uuid4().hex[:12]}"


def task(cluster_arn: str, version: int, n: int = 1, **detail: Any) -> events.TaskEvent:
    """Task `n` of `cluster_arn` at `version`, RUNNING on instance 1 for daemon `d1` by default."""
    name = cluster_arn.rpartition("/")[2]
    arn = f"{PREFIX}:task/{name}/{n:032x}"
    fields = {
        "taskArn": arn,
        "clusterArn": cluster_arn,
        "lastStatus": "RUNNING",
        "startedBy": "d1",
        "containerInstanceArn": f"{PREFIX}:container-instance/{name}/{1:032x}",
        "taskDefinitionArn": f"{PREFIX}:task-definition/web:3",
        "group": "family:web",
        "version": version,
    }
    fields.update(detail)
    return events.TaskEvent(ACCOUNT, REGION, cluster_arn, arn, version, fields)


async def record_of(store: Store, event: events.Event) -> tuple[ecs.Record, Entry]:
    entry = await store.get(keys.record(event.kind, event.cluster_arn, event.arn))
    assert entry is not None
    return ecs.decode(entry.value), entry


async def index_of(store: Store, event: events.Event) -> dict[str, Entry]:
    """The index entries that name `event`'s record, by key."""
    record_key = keys.record(event.kind, event.cluster_arn, event.arn)
    found = (await store.list(keys.INDEX)).entries
    return {e.key: e for e in found if index.target(e.key) == record_key}


class Interleaved:
    """A store on which `racer` runs once, right after the first read, as a racing writer."""

    def __init__(self, inner: Store, racer: Any) -> None:
        self._inner = inner
        self._racer = racer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> Entry | None:
        entry = await self._inner.get(key)
        racer, self._racer = self._racer, None
        if racer is not None:
            await racer()
        return entry


class AlwaysLosing:
    """A store on which every compare-and-swap transaction loses."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        raise errors.CompareFailed([c.key for c in compares])


async def test_index_entries_follow_a_status_change_in_the_records_own_revision(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    pending = task(cluster, 1, lastStatus="PENDING", startedBy="d1")
    assert await processor.apply_event(pending) is Outcome.APPLIED
    record, entry = await record_of(store, pending)
    first = await index_of(store, pending)
    assert set(first) == index.entries(record) and len(first) == 5
    running = task(cluster, 2, lastStatus="RUNNING", startedBy="d2")
    assert await processor.apply_event(running) is Outcome.APPLIED
    record, entry = await record_of(store, running)
    now = await index_of(store, running)
    assert set(now) == index.entries(record)
    gone = {
        keys.index_entry("task", f, v, cluster, running.arn)
        for f, v in (("status", "PENDING"), ("startedBy", "d1"))
    }
    assert not gone & set(now) and gone <= set(first)
    changed = {k for k in now if k not in first}
    assert len(changed) == 2
    assert {now[k].mod_revision for k in changed} == {entry.mod_revision}  # one transaction
    assert all(now[k].mod_revision < entry.mod_revision for k in now.keys() - changed)


async def test_a_new_record_registers_its_cluster_and_an_update_leaves_it_alone(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    await processor.apply_event(task(cluster, 1))
    registered = await store.get(keys.cluster(cluster))
    assert registered is not None and keys.registered_cluster(registered.key) == cluster
    await processor.apply_event(task(cluster, 2, lastStatus="STOPPED"))
    assert await store.get(keys.cluster(cluster)) == registered
    await processor.apply_event(task(cluster, 1, n=2))
    again = await store.get(keys.cluster(cluster))
    assert again is not None and again.create_revision == registered.create_revision


async def test_tombstone_marks_the_record_gone_and_drops_its_index_entries(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    running = task(cluster, 4)
    await processor.apply_event(running)
    assert await processor.tombstone("task", cluster, running.arn) is True
    record, _ = await record_of(store, running)
    assert (record.is_tombstone, record.deleted_at, record.version) == (True, clock.now(), 4)
    assert await index_of(store, running) == {}
    assert await processor.tombstone("task", cluster, running.arn) is False
    assert await processor.tombstone("task", cluster, task(cluster, 1, n=9).arn) is False
    assert await processor.apply_event(task(cluster, 3)) is Outcome.TOMBSTONED
    assert await index_of(store, running) == {}
    assert await processor.apply_event(task(cluster, 5, lastStatus="STOPPED")) is Outcome.APPLIED
    record, _ = await record_of(store, running)
    assert set(await index_of(store, running)) == index.entries(record) != frozenset()


async def test_expire_deletes_only_a_tombstone_older_than_the_ttl(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    running = task(cluster, 1)
    await processor.apply_event(running)
    assert await processor.expire("task", cluster, running.arn, ttl_s=60) is False  # live
    await processor.tombstone("task", cluster, running.arn)
    await clock.advance(59)
    assert await processor.expire("task", cluster, running.arn, ttl_s=60) is False
    await clock.advance(1)
    assert await processor.expire("task", cluster, running.arn, ttl_s=60) is True
    assert await store.get(keys.record("task", cluster, running.arn)) is None
    assert await processor.expire("task", cluster, running.arn, ttl_s=60) is False


async def test_a_tombstone_racing_a_newer_event_loses_the_compare_and_retries(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    await Processor(store, clock=clock).apply_event(task(cluster, 1))
    racer = Processor(store, clock=clock)
    newer = task(cluster, 2, startedBy="d2")
    processor = Processor(
        cast(Store, Interleaved(store, lambda: racer.apply_event(newer))), clock=clock
    )
    assert await processor.tombstone("task", cluster, newer.arn) is True
    assert processor.counters.conflicts == 1
    record, _ = await record_of(store, newer)
    assert (record.is_tombstone, record.version) == (True, 2)
    assert await index_of(store, newer) == {}


@pytest.mark.parametrize(
    ("ours", "theirs", "outcome"),
    [(2, 3, Outcome.STALE), (3, 2, Outcome.APPLIED)],
    ids=["a newer racer wins", "ours is newer and wins on retry"],
)
async def test_an_event_racing_another_retries_and_leaves_the_winners_index(
    store: Store, clock: ManualClock, cluster: str, ours: int, theirs: int, outcome: Outcome
) -> None:
    await Processor(store, clock=clock).apply_event(task(cluster, 1, startedBy="d1"))
    racer = Processor(store, clock=clock)
    their_event = task(cluster, theirs, startedBy=f"racer-{theirs}", lastStatus="STOPPED")
    processor = Processor(
        cast(Store, Interleaved(store, lambda: racer.apply_event(their_event))), clock=clock
    )
    our_event = task(cluster, ours, startedBy=f"ours-{ours}")
    assert await processor.apply_event(our_event) is outcome
    assert processor.counters.conflicts == 1
    record, _ = await record_of(store, our_event)
    assert record.version == 3
    assert set(await index_of(store, our_event)) == index.entries(record)


async def test_expire_racing_a_revival_keeps_the_live_record(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    writer = Processor(store, clock=clock)
    await writer.apply_event(task(cluster, 1))
    await writer.tombstone("task", cluster, task(cluster, 1).arn)
    await clock.advance(120)
    revival = task(cluster, 2)
    processor = Processor(
        cast(Store, Interleaved(store, lambda: writer.apply_event(revival))), clock=clock
    )
    assert await processor.expire("task", cluster, revival.arn, ttl_s=60) is False
    record, _ = await record_of(store, revival)
    assert not record.is_tombstone and set(await index_of(store, revival)) == index.entries(record)


async def test_endless_contention_on_a_tombstone_raises_a_temporary_error(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    running = task(cluster, 1)
    await Processor(store, clock=clock).apply_event(running)
    processor = Processor(cast(Store, AlwaysLosing(store)), clock=clock, max_attempts=2)
    with pytest.raises(css_errors.ApplyContended):
        await processor.tombstone("task", cluster, running.arn)
    assert processor.counters.conflicts == 2
    assert not (await record_of(store, running))[0].is_tombstone


# reindex: on local stores only, since it reads every record and the etcd server is shared.


@pytest.fixture(params=["memory", "sqlite"])
async def local(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'store.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


async def test_reindex_indexes_records_written_before_indexes_existed(
    local: Store, cluster: str, clock: ManualClock
) -> None:
    written = [task(cluster, 1, n=n, startedBy=f"d{n}") for n in range(1, 8)]
    for event in written:
        record = ecs.Record("task", cluster, event.arn, 1, event.detail, observed_at=clock.now())
        await local.put(keys.task(cluster, event.arn), ecs.encode(record))
    await local.put(keys.task(cluster, f"{PREFIX}:task/x/{'f' * 32}"), b"v0.3 wrote this")
    assert (await local.list(keys.INDEX)).entries == []
    assert await reindex(local) == 7 * 5 + 1  # five entries per task, one cluster entry
    for event in written:
        record, _ = await record_of(local, event)
        assert set(await index_of(local, event)) == index.entries(record)
    assert await local.get(keys.cluster(cluster)) is not None
    assert await reindex(local) == 0  # marked as indexed: nothing read
    assert await reindex(local, force=True) == 0  # idempotent


async def test_reindex_drops_index_entries_that_no_record_backs(
    local: Store, cluster: str, clock: ManualClock
) -> None:
    processor = Processor(local, clock=clock)
    kept, deleted = task(cluster, 1, n=1), task(cluster, 1, n=2)
    for event in (kept, deleted):
        await processor.apply_event(event)
    await local.delete(keys.task(cluster, deleted.arn))  # behind the processor's back
    stale = keys.index_entry("task", "status", "PENDING", cluster, kept.arn)
    await local.put(stale, b"")
    await local.put(keys.INDEX + "task/status/not-an-entry", b"")
    assert await reindex(local, force=True) == 5 + 1 + 1
    record, _ = await record_of(local, kept)
    remaining = {e.key for e in (await local.list(keys.INDEX)).entries}
    assert remaining == index.entries(record)
