"""The processor's batch path: one read and one transaction per chunk, answers per message.

Runs on memory, SQLite and a real etcd server; each test works in a cluster of its own, so the
shared etcd server's other keys never meet its assertions.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from blox.clock import ManualClock
from blox.css import index
from blox.css.processor import BATCH_TXN_OPS, Outcome, Processor
from blox.model import ecs, events
from blox.store import Compare, Entry, Op, Store, errors, keys, open_store
from blox.testing.etcd import EtcdServer

ACCOUNT, REGION = "111122223333", "us-east-1"
PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
STATUSES = ["PROVISIONING", "PENDING", "RUNNING", "DEPROVISIONING", "STOPPED"]


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


def task_arn(cluster_arn: str, n: int) -> str:
    return f"{PREFIX}:task/{cluster_arn.rpartition('/')[2]}/{n:032x}"


def body(cluster_arn: str, version: int, n: int = 1, **detail: Any) -> str:
    """The SQS body of task `n`'s event at `version`: on instance `n % 3`, status by version."""
    name = cluster_arn.rpartition("/")[2]
    fields = {
        "taskArn": task_arn(cluster_arn, n),
        "clusterArn": cluster_arn,
        "lastStatus": STATUSES[version % len(STATUSES)],
        "startedBy": f"d{version}",
        "containerInstanceArn": f"{PREFIX}:container-instance/{name}/{n % 3:032x}",
        "taskDefinitionArn": f"{PREFIX}:task-definition/web:{version}",
        "group": "family:web",
        "version": version,
        **detail,
    }
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": events.TASK_DETAIL_TYPE,
        "source": events.SOURCE,
        "account": ACCOUNT,
        "region": REGION,
        "resources": [fields["taskArn"]],
        "detail": fields,
    }
    return json.dumps(envelope)


async def stored(store: Store, cluster_arn: str, n: int) -> ecs.Record:
    entry = await store.get(keys.task(cluster_arn, task_arn(cluster_arn, n)))
    assert entry is not None
    return ecs.decode(entry.value)


async def assert_indexed_exactly(store: Store, cluster_arn: str) -> None:
    """The index entries naming the cluster's tasks are exactly those their records must have."""
    records = (await store.list(keys.tasks_of(cluster_arn))).entries
    wanted = set().union(*(index.entries(ecs.decode(entry.value)) for entry in records))
    ours = {entry.key for entry in records}
    found = {e.key for e in (await store.list(keys.INDEX)).entries if index.target(e.key) in ours}
    assert found == wanted


class Recording:
    """A store that records the reads and transactions made on it, and may run a racing writer
    once, right after the first `get_many`."""

    def __init__(self, inner: Store, racer: Callable[[], Awaitable[object]] | None = None) -> None:
        self._inner = inner
        self._racer = racer
        self.gets = 0
        self.reads: list[int] = []  # keys per get_many
        self.txns: list[tuple[int, int]] = []  # (compares, ops) per transaction tried

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> Entry | None:
        self.gets += 1
        return await self._inner.get(key)

    async def get_many(self, keys_: Sequence[str]) -> list[Entry | None]:
        self.reads.append(len(keys_))
        found = await self._inner.get_many(keys_)
        racer, self._racer = self._racer, None
        if racer is not None:
            await racer()
        return found

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        self.txns.append((len(compares), len(ops)))
        return await self._inner.txn(compares=compares, ops=ops)


class Failing:
    """A store whose `get_many` or `txn` fails as `failure` says."""

    def __init__(self, inner: Store, method: str, failure: Callable[[], Exception]) -> None:
        self._inner = inner
        self._method = method
        self._failure = failure

    def __getattr__(self, name: str) -> Any:
        if name == self._method:
            raise self._failure()
        return getattr(self._inner, name)


async def test_a_batch_is_read_with_one_get_many_and_written_in_one_transaction(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    await Processor(store, clock=clock).process(body(cluster, 1, n=1))
    recording = Recording(store)
    processor = Processor(cast(Store, recording), clock=clock)
    bodies = [body(cluster, 2, n=1)] + [body(cluster, 1, n=n) for n in range(2, 11)]

    assert await processor.process_many(bodies) == [Outcome.APPLIED] * 10
    assert (recording.gets, recording.reads, len(recording.txns)) == (0, [10], 1)
    assert recording.txns[0][0] == 10  # a compare per record
    assert [(await stored(store, cluster, n)).version for n in range(1, 11)] == [2] + [1] * 9
    assert (await stored(store, cluster, 1)).observed_at == clock.now()
    await assert_indexed_exactly(store, cluster)
    assert await store.get(keys.cluster(cluster)) is not None
    assert processor.counters.received == processor.counters.applied == 10


async def test_duplicates_and_reordering_inside_one_batch_end_at_the_highest_version(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    first = [body(cluster, v) for v in (3, 1, 3, 2)]

    # Decided in version order: v1, v2, v3 applied, the second v3 a duplicate.
    assert await processor.process_many(first) == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.APPLIED,
    ]
    record = await stored(store, cluster, 1)
    assert (record.version, record.detail["lastStatus"]) == (3, STATUSES[3])
    assert await processor.process_many([body(cluster, 2), body(cluster, 3)]) == [
        Outcome.STALE,
        Outcome.DUPLICATE,
    ]
    counters = processor.counters
    assert (counters.received, counters.applied, counters.duplicate, counters.stale) == (6, 3, 2, 1)
    await assert_indexed_exactly(store, cluster)


@pytest.mark.parametrize("seed", range(3))
async def test_shuffled_batches_with_redeliveries_converge_with_exact_counters(
    store: Store, clock: ManualClock, cluster: str, seed: int
) -> None:
    deliveries = [body(cluster, v, n=n) for n in range(1, 7) for v in range(1, 5)] * 2
    random.Random(seed).shuffle(deliveries)
    processor = Processor(store, clock=clock)

    results: list[Outcome | Exception] = []
    for start in range(0, len(deliveries), 10):  # SQS batches of ten
        results += await processor.process_many(deliveries[start : start + 10])

    assert set(results) <= {Outcome.APPLIED, Outcome.DUPLICATE, Outcome.STALE}
    for n in range(1, 7):
        record = await stored(store, cluster, n)
        assert (record.version, record.detail["lastStatus"]) == (4, STATUSES[4])
    await assert_indexed_exactly(store, cluster)
    counters = processor.counters
    assert counters.received == len(deliveries) == len(results)
    assert counters.applied + counters.duplicate + counters.stale == len(deliveries)
    assert counters.applied == results.count(Outcome.APPLIED) >= 6
    assert counters.duplicate == results.count(Outcome.DUPLICATE) >= 6  # each last one twice


async def test_a_poison_body_in_the_middle_is_rejected_alone(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    bodies = [body(cluster, 1, n=1), "{not json", body(cluster, 1, n=2)]

    results = await processor.process_many(bodies)

    assert results[0] is results[2] is Outcome.APPLIED
    assert isinstance(results[1], events.EventInvalid)
    assert (await stored(store, cluster, 2)).version == 1
    counters = processor.counters
    assert (counters.received, counters.rejected, counters.applied) == (3, 1, 2)


async def test_a_racing_writer_makes_the_batch_fall_back_to_one_event_at_a_time(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    await Processor(store, clock=clock).process(body(cluster, 1, n=1))
    racer = Processor(store, clock=clock)
    recording = Recording(store, lambda: racer.process(body(cluster, 3, n=1)))
    processor = Processor(cast(Store, recording), clock=clock)

    results = await processor.process_many([body(cluster, 2, n=1), body(cluster, 1, n=2)])

    assert results == [Outcome.STALE, Outcome.APPLIED]  # v2 lost to the racer's v3
    assert recording.txns[0][0] == 2  # one compare per record
    assert len(recording.txns) == 2  # the batch's, lost; then task 2's own (task 1 is stale)
    assert recording.gets == 2  # one by one: each event reads its record again
    assert (await stored(store, cluster, 1)).version == 3
    assert (await stored(store, cluster, 2)).version == 1
    counters = processor.counters
    assert (counters.conflicts, counters.applied, counters.stale, counters.received) == (1, 1, 1, 2)
    await assert_indexed_exactly(store, cluster)


async def test_a_batch_beyond_the_transaction_limit_is_split_into_transactions_etcd_accepts(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    recording = Recording(store)
    processor = Processor(cast(Store, recording), clock=clock)
    bodies = [body(cluster, 1, n=n) for n in range(60)] + [body(cluster, 2, n=n) for n in range(60)]

    assert await processor.process_many(bodies) == [Outcome.APPLIED] * 120

    assert recording.reads == [60]
    assert sum(ops for _, ops in recording.txns) > BATCH_TXN_OPS  # too many for one etcd txn
    assert len(recording.txns) >= 2
    assert all(ops <= BATCH_TXN_OPS for _, ops in recording.txns)
    assert sum(compares for compares, _ in recording.txns) == 60
    assert processor.counters.conflicts == 0
    assert {(await stored(store, cluster, n)).version for n in range(60)} == {2}
    await assert_indexed_exactly(store, cluster)


@pytest.mark.parametrize("method", ["get_many", "txn"])
async def test_a_store_failure_fails_every_event_but_the_poison(
    store: Store, clock: ManualClock, cluster: str, method: str
) -> None:
    failing = Failing(store, method, lambda: errors.StoreUnavailable("no answer in 10 s"))
    processor = Processor(cast(Store, failing), clock=clock)

    results = await processor.process_many([body(cluster, 1, n=1), "", body(cluster, 1, n=2)])

    assert isinstance(results[0], errors.StoreUnavailable)
    assert isinstance(results[1], events.EventInvalid)
    assert isinstance(results[2], errors.StoreUnavailable)
    assert await store.get(keys.task(cluster, task_arn(cluster, 1))) is None
    counters = processor.counters
    assert (counters.received, counters.rejected, counters.applied) == (3, 1, 0)


async def test_a_batch_the_store_refuses_is_applied_one_event_at_a_time(
    store: Store, clock: ManualClock, cluster: str, caplog: pytest.LogCaptureFixture
) -> None:
    refused = Failing(store, "get_many", lambda: errors.InvalidOperation("refused"))
    processor = Processor(cast(Store, refused), clock=clock)

    with caplog.at_level(logging.ERROR, logger="blox.css.processor"):
        results = await processor.process_many([body(cluster, 1, n=1), body(cluster, 1, n=2)])

    assert results == [Outcome.APPLIED, Outcome.APPLIED]
    assert [r.exc_info is not None for r in caplog.records] == [True]  # logged with traceback
    assert (await stored(store, cluster, 2)).version == 1
    assert (processor.counters.received, processor.counters.applied) == (2, 2)


async def test_a_tombstone_stops_older_events_of_a_batch_and_yields_to_a_newer_one(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    processor = Processor(store, clock=clock)
    await processor.process(body(cluster, 4))
    assert await processor.tombstone("task", cluster, task_arn(cluster, 1)) is True

    results = await processor.process_many([body(cluster, 5), body(cluster, 3), body(cluster, 4)])

    assert results == [Outcome.APPLIED, Outcome.TOMBSTONED, Outcome.TOMBSTONED]
    record = await stored(store, cluster, 1)
    assert (record.version, record.is_tombstone) == (5, False)
    await assert_indexed_exactly(store, cluster)
    assert index.entries(record)


async def test_an_unreadable_stored_value_does_not_block_a_batch(
    store: Store, clock: ManualClock, cluster: str
) -> None:
    await store.put(keys.task(cluster, task_arn(cluster, 1)), b"v0.3 wrote this")
    processor = Processor(store, clock=clock)
    assert await processor.process_many([body(cluster, 2)]) == [Outcome.APPLIED]
    assert (await stored(store, cluster, 1)).version == 2
    await assert_indexed_exactly(store, cluster)


async def test_an_empty_batch_touches_nothing(store: Store, clock: ManualClock) -> None:
    recording = Recording(store)
    processor = Processor(cast(Store, recording), clock=clock)
    assert await processor.process_many([]) == []
    assert (recording.gets, recording.reads, recording.txns) == (0, [], [])
    assert processor.counters.received == 0
