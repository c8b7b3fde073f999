"""Kinesis ingest over real HTTP: KinesisPoller against moto's Kinesis in server mode on 127.0.0.1.

Records are the shared ECS event fixtures, applied by the real `Processor` to a SQLite store (and
to a real etcd server for the outage); checkpoints are read back from that store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from blox.clock import Clock, ManualClock, SystemClock
from blox.css.ingest import Checkpoint, KinesisCounters, KinesisPoller, resolve_stream
from blox.css.ingest.kinesis import StreamNotFound
from blox.css.processor import Outcome, Processor
from blox.errors import Invalid
from blox.model import ecs, events
from blox.store import Store, keys, open_store
from blox.store.errors import StoreUnavailable
from blox.testing.etcd import EtcdServer

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import ShardTypeDef

pytestmark = pytest.mark.integration

REGION = "us-east-1"
DEADLINE_S = 30.0
POLL_S = 0.02
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecs-events"
# Each entity's events on one shard, in version order, as a partition key on the ARN would put them.
SHARD_0 = ["task-pending", "task-running", "task-stopped", "task-running-fargate"]
SHARD_1 = ["instance-active", "instance-draining", "instance-deregistered", "task-stopped-oom"]
POISON = "not json {"


@pytest.fixture
def kinesis(moto_endpoint: str) -> Iterator[KinesisClient]:
    client: KinesisClient = boto3.client(
        "kinesis",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    client.close()


@pytest.fixture
def stream(kinesis: KinesisClient) -> Iterator[str]:
    """A new two-shard stream; its ARN."""
    name = f"ecs-events-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    yield resolve_stream(kinesis, f"kinesis://{name}")
    kinesis.delete_stream(StreamName=name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:{tmp_path / 'css.db'}", clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


def body(name: str, *, version: int | None = None) -> str:
    text = (FIXTURES / f"{name}.json").read_text()
    if version is None:
        return text
    raw = json.loads(text)
    raw["detail"]["version"] = version
    return json.dumps(raw)


def put_on(kinesis: KinesisClient, stream: str, hash_key: str, name: str) -> str:
    """Put fixture `name` on the open shard holding `hash_key`; its sequence number."""
    return kinesis.put_record(
        StreamARN=stream, Data=body(name).encode(), PartitionKey="p", ExplicitHashKey=hash_key
    )["SequenceNumber"]


def shard_ids(kinesis: KinesisClient, stream: str) -> list[str]:
    return [s["ShardId"] for s in kinesis.list_shards(StreamARN=stream)["Shards"]]


def put(kinesis: KinesisClient, stream: str, shard: int, bodies: list[str]) -> list[str]:
    """Put bodies in order on the `shard`-th shard (by its hash key range); their sequences."""
    listed = kinesis.list_shards(StreamARN=stream)["Shards"][shard]
    hash_key = listed["HashKeyRange"]["StartingHashKey"]
    return [
        kinesis.put_record(
            StreamARN=stream, Data=text.encode(), PartitionKey="p", ExplicitHashKey=hash_key
        )["SequenceNumber"]
        for text in bodies
    ]


async def checkpoint(store: Store, stream: str, shard_id: str) -> Checkpoint | None:
    entry = await store.get(keys.kinesis_checkpoint(stream, shard_id))
    return None if entry is None else Checkpoint.decode(entry.value)


async def at(store: Store, stream: str, shard_id: str, sequence: str) -> bool:
    """Whether the shard's checkpoint is at `sequence` (and not ended)."""
    return await checkpoint(store, stream, shard_id) == Checkpoint(sequence)


async def versions(store: Store, bodies: list[str]) -> dict[str, int | None]:
    """The stored version of each entity the bodies name."""
    found: dict[str, int | None] = {}
    for text in bodies:
        event = events.parse(text)
        entry = await store.get(keys.record(event.kind, event.cluster_arn, event.arn))
        found[event.arn] = None if entry is None else ecs.decode(entry.value).version
    return found


def newest(bodies: list[str]) -> dict[str, int | None]:
    """The version each entity must end at: the highest of its events."""
    found: dict[str, int | None] = {}
    for text in bodies:
        event = events.parse(text)
        found[event.arn] = max(event.version, found.get(event.arn) or 0)
    return found


@dataclass
class Counting:
    """The processor's `process`, counting calls per body; fails the first time as configured."""

    processor: Processor
    fail_once: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)
    hold: set[str] = field(default_factory=set)  # bodies that wait for `released`
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, text: str) -> object:
        self.calls[text] += 1
        self.order.append(text)
        if text in self.hold:
            await self.released.wait()
        if text in self.fail_once:
            raise self.fail_once.pop(text)()
        return await self.processor.process(text)


async def eventually(predicate: Callable[[], Any], *, deadline_s: float = DEADLINE_S) -> None:
    """Poll `predicate` (sync, or returning an awaitable) until it holds; fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(POLL_S)


@dataclass
class Running:
    poller: KinesisPoller
    task: asyncio.Task[None]

    @property
    def counters(self) -> KinesisCounters:
        return self.poller.counters

    async def stop(self) -> None:
        await asyncio.wait_for(self.poller.stop(), DEADLINE_S)
        await asyncio.wait_for(self.task, DEADLINE_S)
        assert self.task.exception() is None


@dataclass
class Batching:
    """The processor's `process_many`, recording each call's bodies; a body in `fail_once`
    fails its first time (not applied), the rest of its batch is applied all the same."""

    processor: Processor
    fail_once: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    async def __call__(self, bodies: Sequence[str]) -> list[Outcome | Exception]:
        self.calls.append(list(bodies))
        failed = {body: self.fail_once.pop(body)() for body in bodies if body in self.fail_once}
        applied = iter(await self.processor.process_many([b for b in bodies if b not in failed]))
        return [failed[body] if body in failed else next(applied) for body in bodies]


def start(
    kinesis: KinesisClient,
    stream: str,
    store: Store,
    process: Counting | Batching,
    **options: Any,
) -> Running:
    """A running poller on `process`: per body (Counting) or per batch (Batching)."""
    options = {"clock": SystemClock(), "idle_s": 0.05, **options}
    options["process_many" if isinstance(process, Batching) else "process"] = process
    poller = KinesisPoller(kinesis, stream, store=store, **options)
    return Running(poller, asyncio.create_task(poller.run()))


def counting(store: Store, clock: Clock | None = None) -> Counting:
    return Counting(Processor(store, clock=clock or ManualClock()))


async def test_events_on_every_shard_are_applied_and_each_shard_checkpointed_at_its_last_record(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    first = put(kinesis, stream, 0, [body(name) for name in SHARD_0])
    second = put(kinesis, stream, 1, [body(name) for name in SHARD_1])
    shard_0, shard_1 = shard_ids(kinesis, stream)
    process = counting(store)
    lags: list[float] = []

    running = start(kinesis, stream, store, process, observe_lag=lags.append)
    await eventually(lambda: at(store, stream, shard_0, first[-1]))
    await eventually(lambda: at(store, stream, shard_1, second[-1]))
    await running.stop()

    everything = [body(name) for name in SHARD_0 + SHARD_1]
    assert sorted(process.calls.elements()) == sorted(everything)
    assert await versions(store, everything) == newest(everything)
    assert await checkpoint(store, stream, shard_0) == Checkpoint(first[-1])
    assert await checkpoint(store, stream, shard_1) == Checkpoint(second[-1])
    assert running.counters.processed == running.counters.received == 8
    assert len(lags) == 8  # one arrival-to-applied lag per applied record, for the metrics
    assert all(-1.0 < lag < DEADLINE_S for lag in lags)


async def test_a_restarted_poller_resumes_after_its_checkpoints_without_reading_again(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    first = put(kinesis, stream, 0, [body(name) for name in SHARD_0])
    second = put(kinesis, stream, 1, [body(name) for name in SHARD_1])
    shard_0, shard_1 = shard_ids(kinesis, stream)
    before = counting(store)
    running = start(kinesis, stream, store, before)
    await eventually(lambda: at(store, stream, shard_0, first[-1]))
    await eventually(lambda: at(store, stream, shard_1, second[-1]))
    await running.stop()

    later = [body("task-running-fargate", version=9), body("task-stopped-oom", version=9)]
    last_0 = put(kinesis, stream, 0, later[:1])[-1]
    last_1 = put(kinesis, stream, 1, later[1:])[-1]
    after = counting(store)
    running = start(kinesis, stream, store, after)
    await eventually(lambda: at(store, stream, shard_0, last_0))
    await eventually(lambda: at(store, stream, shard_1, last_1))
    await running.stop()

    assert sum(before.calls.values()) == 8
    assert sorted(after.calls.elements()) == sorted(later)  # only what came after the checkpoints
    assert set((await versions(store, later)).values()) == {9}


async def test_a_poison_record_is_logged_with_its_sequence_skipped_and_checkpointed_past(
    kinesis: KinesisClient, stream: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    texts = [body("task-pending"), POISON, body("task-running")]
    sequences = put(kinesis, stream, 0, texts)
    shard_0 = shard_ids(kinesis, stream)[0]
    process = counting(store)

    with caplog.at_level(logging.WARNING, logger="blox.css.ingest.kinesis"):
        running = start(kinesis, stream, store, process)
        await eventually(lambda: at(store, stream, shard_0, sequences[-1]))
        await running.stop()

    assert process.calls[POISON] == 1  # skipped, not retried
    assert running.counters.poison_skipped == 1
    assert running.counters.processed == 2
    assert any(sequences[1] in record.getMessage() for record in caplog.records)
    assert await checkpoint(store, stream, shard_0) == Checkpoint(sequences[-1])
    assert await versions(store, texts[::2]) == newest(texts[::2])

    again = counting(store)
    newer = put(kinesis, stream, 0, [body("task-stopped")])
    rerun = start(kinesis, stream, store, again)
    await eventually(lambda: at(store, stream, shard_0, newer[-1]))
    await rerun.stop()
    assert again.calls == Counter([body("task-stopped")])  # the poison is never read again


async def test_a_temporary_failure_holds_the_checkpoint_until_the_record_is_applied(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    texts = [body(name) for name in SHARD_0]
    sequences = put(kinesis, stream, 0, texts)
    shard_0 = shard_ids(kinesis, stream)[0]
    process = counting(store)
    process.fail_once[texts[2]] = lambda: StoreUnavailable("the store is away")
    clock = ManualClock()

    running = start(kinesis, stream, store, process, clock=clock, idle_s=1.0)
    await eventually(lambda: running.counters.temporary_failures == 1)
    await eventually(lambda: running.counters.checkpoints == 1)

    # Backing off on the manual clock: the checkpoint stays before the record that failed.
    assert await checkpoint(store, stream, shard_0) == Checkpoint(sequences[1])
    assert await versions(store, texts[2:3]) == {events.parse(texts[2]).arn: 2}
    await clock.advance(60)
    await eventually(lambda: running.counters.checkpoints == 2)
    await running.stop()

    assert await checkpoint(store, stream, shard_0) == Checkpoint(sequences[-1])
    assert process.calls[texts[2]] == 2
    assert [process.calls[text] for text in (texts[0], texts[1], texts[3])] == [1, 1, 1]
    assert await versions(store, texts) == newest(texts)


async def assert_drained_in_order(store: Store, stream: str, shards: list[ShardTypeDef]) -> None:
    """Every closed shard is checkpointed as ended, each after (a higher revision than) its
    parents: the store's revisions show that no child was drained before its parents."""
    ended: dict[str, int] = {}
    for shard in shards:
        if "EndingSequenceNumber" not in shard["SequenceNumberRange"]:
            continue
        entry = await store.get(keys.kinesis_checkpoint(stream, shard["ShardId"]))
        assert entry is not None, shard["ShardId"]
        assert Checkpoint.decode(entry.value).ended, shard["ShardId"]
        ended[shard["ShardId"]] = entry.mod_revision
    for shard in shards:
        for parent in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")):
            if parent and shard["ShardId"] in ended:
                assert ended[parent] < ended[shard["ShardId"]], (parent, shard["ShardId"])


async def test_reshards_are_followed_closed_shards_drained_before_their_children(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    first = put(kinesis, stream, 0, [body("task-pending"), body("task-running")])
    second = put(kinesis, stream, 1, [body("instance-active")])
    # moto splits both shards, then merges two of the four children: three generations, seven
    # shards, four of them closed (moto routes puts to the first shard of a hash key, closed or
    # not, so the records stay in the first generation).
    kinesis.update_shard_count(StreamARN=stream, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    shards = kinesis.list_shards(StreamARN=stream)["Shards"]
    assert len(shards) == 7
    process = counting(store)
    process.hold.add(body("task-pending"))

    running = start(kinesis, stream, store, process, shard_page=1)  # one shard per page
    # The second shard drains while the first is held; its merged children must wait for it.
    await eventually(lambda: running.counters.shards_drained == 1)
    process.released.set()
    await eventually(lambda: running.counters.shards_drained == 4)
    await running.stop()

    await assert_drained_in_order(store, stream, shards)
    shard_0, shard_1 = (s["ShardId"] for s in shards[:2])
    assert await checkpoint(store, stream, shard_0) == Checkpoint(first[-1], ended=True)
    assert await checkpoint(store, stream, shard_1) == Checkpoint(second[-1], ended=True)
    order = [process.order.index(body(name)) for name in ("task-pending", "task-running")]
    assert order == sorted(order)  # one shard's records in sequence order
    assert process.calls == Counter(
        [body("task-pending"), body("task-running"), body("instance-active")]
    )


async def test_shards_created_while_running_are_found_at_the_next_scan(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    first = put(kinesis, stream, 0, [body("task-pending")])
    second = put(kinesis, stream, 1, [body("instance-active")])
    shard_0, shard_1 = shard_ids(kinesis, stream)
    process = counting(store)
    clock = ManualClock()
    running = start(kinesis, stream, store, process, clock=clock, rescan_s=30)
    await eventually(lambda: at(store, stream, shard_0, first[-1]))
    await eventually(lambda: at(store, stream, shard_1, second[-1]))

    kinesis.update_shard_count(StreamARN=stream, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    shards = kinesis.list_shards(StreamARN=stream)["Shards"]

    async def drained() -> bool:
        if running.counters.shards_drained == 4:
            return True
        await clock.advance(30)  # idle pauses and rescans run on the manual clock
        return False

    await eventually(drained)
    await running.stop()

    await assert_drained_in_order(store, stream, shards)
    assert process.calls == Counter([body("task-pending"), body("instance-active")])


async def test_aws_errors_are_counted_and_retried_with_backoff_on_the_injected_clock(
    kinesis: KinesisClient, store: Store
) -> None:
    missing = f"arn:aws:kinesis:{REGION}:123456789012:stream/no-such-stream"
    clock = ManualClock()
    running = start(kinesis, missing, store, counting(store), clock=clock)

    await eventually(lambda: running.counters.read_errors == 1)
    await clock.advance(0.2)
    assert running.counters.read_errors == 1  # still backing off: no busy loop
    await clock.advance(60)
    await eventually(lambda: running.counters.read_errors == 2)
    await running.stop()  # cuts the backoff short


def test_resolve_stream_accepts_a_name_or_an_arn_and_refuses_the_rest(
    kinesis: KinesisClient, stream: str
) -> None:
    name = stream.rsplit("/", 1)[1]
    assert resolve_stream(kinesis, f"kinesis://{name}") == stream
    assert resolve_stream(kinesis, stream) == stream
    assert resolve_stream(kinesis, f"kinesis://{stream}") == stream
    with pytest.raises(StreamNotFound, match="does not exist"):
        resolve_stream(kinesis, "kinesis://no-such-stream")
    with pytest.raises(Invalid, match="not a Kinesis stream"):
        resolve_stream(kinesis, "sqs://ecs-events")


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd server of this test's own, since the test stops and restarts it."""
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.etcd
async def test_records_read_while_the_store_is_down_are_applied_once_it_is_back(
    kinesis: KinesisClient, stream: str, etcd: EtcdServer
) -> None:
    store = await open_store(f"{etcd.url}?timeout=1")
    try:
        first = put(kinesis, stream, 0, [body("task-pending")])
        shard_0 = shard_ids(kinesis, stream)[0]
        process = counting(store)
        running = start(kinesis, stream, store, process)
        await eventually(lambda: at(store, stream, shard_0, first[-1]))

        await asyncio.to_thread(etcd.stop)
        during = [body(name) for name in SHARD_0[1:]]
        sequences = put(kinesis, stream, 0, during)
        await eventually(lambda: running.counters.temporary_failures >= 1)
        await asyncio.to_thread(etcd.start)
        await eventually(lambda: at(store, stream, shard_0, sequences[-1]))
        await running.stop()

        everything = [body(name) for name in SHARD_0]
        assert await versions(store, everything) == newest(everything)
        assert process.calls[everything[0]] == 1
        assert process.calls[during[0]] >= 2  # failed while the store was away, then applied
    finally:
        await store.close()


async def test_the_processor_applies_each_read_in_one_call_skipping_poison(
    kinesis: KinesisClient, stream: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    texts = [body("task-pending"), POISON, body("task-running"), body("instance-active")]
    sequences = put(kinesis, stream, 0, texts[:2])
    hash_key = kinesis.list_shards(StreamARN=stream)["Shards"][0]["HashKeyRange"]
    not_utf8 = kinesis.put_record(
        StreamARN=stream,
        Data=b"\xff\xfe",
        PartitionKey="p",
        ExplicitHashKey=hash_key["StartingHashKey"],
    )["SequenceNumber"]
    sequences += put(kinesis, stream, 0, texts[2:])
    shard_0 = shard_ids(kinesis, stream)[0]
    batching = Batching(Processor(store, clock=ManualClock()))

    with caplog.at_level(logging.WARNING, logger="blox.css.ingest.kinesis"):
        running = start(kinesis, stream, store, batching)
        await eventually(lambda: at(store, stream, shard_0, sequences[-1]))
        await running.stop()

    assert any(not_utf8 in record.getMessage() for record in caplog.records)
    assert batching.calls == [texts]  # one read, one call; the bytes that are no UTF-8 not in it
    assert running.counters.poison_skipped == 2
    assert running.counters.processed == 3
    assert await versions(store, texts[::2] + texts[3:]) == newest(texts[::2] + texts[3:])
    counters = batching.processor.counters
    assert (counters.received, counters.rejected, counters.applied) == (4, 1, 3)


async def test_a_temporary_failure_in_a_batch_holds_the_checkpoint_and_the_rest_is_applied_again(
    kinesis: KinesisClient, stream: str, store: Store
) -> None:
    texts = [body(name) for name in SHARD_0]
    sequences = put(kinesis, stream, 0, texts)
    shard_0 = shard_ids(kinesis, stream)[0]
    batching = Batching(Processor(store, clock=ManualClock()))
    batching.fail_once[texts[2]] = lambda: StoreUnavailable("the store is away")
    clock = ManualClock()

    running = start(kinesis, stream, store, batching, clock=clock, idle_s=1.0)
    await eventually(lambda: running.counters.temporary_failures == 1)
    await eventually(lambda: running.counters.checkpoints == 1)

    # The checkpoint stays before the failed record; the one after it is applied already.
    assert await checkpoint(store, stream, shard_0) == Checkpoint(sequences[1])
    assert await versions(store, texts[3:]) == newest(texts[3:])
    await clock.advance(60)
    await eventually(lambda: running.counters.checkpoints == 2)
    await running.stop()

    assert await checkpoint(store, stream, shard_0) == Checkpoint(sequences[-1])
    assert batching.calls[:2] == [texts, texts[2:]]  # read again from the failed record
    assert await versions(store, texts) == newest(texts)
    assert batching.processor.counters.duplicate == 1  # the record after it, applied twice
