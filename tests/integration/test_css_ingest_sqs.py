"""SQS ingest over real HTTP: SqsPoller against moto's SQS in server mode on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from blox.clock import ManualClock, SystemClock
from blox.css.ingest import IngestCounters, SqsPoller, resolve_queue
from blox.css.processor import Outcome, Processor
from blox.errors import Invalid, NotFound, Temporary, Unavailable
from blox.model import ecs, events
from blox.obs import CssMetrics
from blox.store import Store, keys, open_store

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

REGION = "us-east-1"
DEADLINE_S = 30.0
POLL_S = 0.02
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecs-events"


class StoreDown(Unavailable, Temporary):
    """What a processor raises while the store is away."""


class BadEvent(Invalid):
    """What a processor raises for a body that is not an ECS event."""


@pytest.fixture
def sqs(moto_endpoint: str) -> Iterator[SQSClient]:
    client: SQSClient = boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    client.close()


def new_queue(sqs: SQSClient, prefix: str) -> str:
    return sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:12]}")["QueueUrl"]


@pytest.fixture
def queue_url(sqs: SQSClient) -> Iterator[str]:
    url = new_queue(sqs, "ecs-events")
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def dead_letter_url(sqs: SQSClient) -> Iterator[str]:
    url = new_queue(sqs, "ecs-events-dlq")
    yield url
    sqs.delete_queue(QueueUrl=url)


@dataclass
class Recorder:
    """A `process` that records each attempt and fails as configured, keyed by body."""

    poison: set[str] = field(default_factory=set)
    fail_once: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    attempts: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    async def __call__(self, body: str) -> None:
        self.attempts.append(body)
        if self.gate is not None:
            await self.gate.wait()
        if body in self.poison:
            raise BadEvent(f"not an ECS event: {body!r}")
        if body in self.fail_once:
            raise self.fail_once.pop(body)()
        self.applied.append(body)


def send(sqs: SQSClient, queue_url: str, bodies: list[str]) -> list[str]:
    """Send bodies in order; return their MessageIds."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        assert not response.get("Failed")
        by_entry = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        ids.extend(by_entry[str(i)] for i in range(len(chunk)))
    return ids


def queue_depth(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def assert_drained(sqs: SQSClient, queue_url: str) -> None:
    assert queue_depth(sqs, queue_url) == (0, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)


async def eventually(predicate: Callable[[], bool], *, deadline_s: float = DEADLINE_S) -> None:
    """Poll `predicate` until it holds; fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(POLL_S)


@dataclass
class Running:
    poller: SqsPoller
    task: asyncio.Task[None]

    @property
    def counters(self) -> IngestCounters:
        return self.poller.counters

    async def stop(self) -> None:
        await asyncio.wait_for(self.poller.stop(), DEADLINE_S)
        await asyncio.wait_for(self.task, DEADLINE_S)


@dataclass
class BatchRecorder:
    """A `process_many` that records each call's bodies; a body in `fail_once` fails its first
    time, the rest of its batch is applied all the same (as the processor answers)."""

    fail_once: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    async def __call__(self, bodies: Sequence[str]) -> list[object]:
        self.calls.append(list(bodies))
        results: list[object] = []
        for body in bodies:
            if body in self.fail_once:
                results.append(self.fail_once.pop(body)())
            else:
                self.applied.append(body)
                results.append(None)
        return results


def start(
    sqs: SQSClient, queue_url: str, process: Callable[..., Any] | None, **options: Any
) -> Running:
    """A running poller; `process` takes one body, unless given as `process_many=`."""
    options = {"clock": SystemClock(), "wait_time_s": 1, "process": process, **options}
    if options.get("process_many") is not None:
        del options["process"]
    poller = SqsPoller(sqs, queue_url, **options)
    return Running(poller, asyncio.create_task(poller.run()))


async def test_every_message_is_processed_once_and_deleted_leaving_the_queue_empty(
    sqs: SQSClient, queue_url: str
) -> None:
    bodies = [f"event-{n}" for n in range(35)]
    send(sqs, queue_url, bodies)
    recorder = Recorder()

    running = start(sqs, queue_url, recorder, pollers=2)
    await eventually(lambda: running.counters.deleted == 35)
    await running.stop()

    assert Counter(recorder.applied) == Counter(bodies)
    assert running.counters == IngestCounters(received=35, processed=35, deleted=35)
    await asyncio.to_thread(assert_drained, sqs, queue_url)


async def test_a_poison_message_goes_to_the_dead_letter_queue_and_the_rest_are_applied(
    sqs: SQSClient, queue_url: str, dead_letter_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = ["good-0", "good-1", "not json {", "good-2", "good-3"]
    ids = send(sqs, queue_url, bodies)
    recorder = Recorder(poison={"not json {"})

    with caplog.at_level(logging.WARNING, logger="blox.css.ingest.sqs"):
        running = start(sqs, queue_url, recorder, dead_letter_url=dead_letter_url)
        await eventually(lambda: running.counters.deleted == 5)
        await running.stop()

    assert recorder.applied == ["good-0", "good-1", "good-2", "good-3"]
    assert running.counters.dead_lettered == 1
    assert running.counters.poison_dropped == 0
    assert any(ids[2] in record.getMessage() for record in caplog.records)
    dead = sqs.receive_message(
        QueueUrl=dead_letter_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )["Messages"]
    assert [m["Body"] for m in dead] == ["not json {"]
    attributes = dead[0]["MessageAttributes"]
    assert "not an ECS event" in attributes["blox-reason"]["StringValue"]
    assert attributes["blox-error"]["StringValue"] == "BadEvent"
    assert attributes["blox-source-message-id"]["StringValue"] == ids[2]
    await asyncio.to_thread(assert_drained, sqs, queue_url)


async def test_without_a_dead_letter_queue_poison_is_dropped_after_max_receives(
    sqs: SQSClient, queue_url: str
) -> None:
    send(sqs, queue_url, ["good-0", "poison", "good-1"])
    recorder = Recorder(poison={"poison"})

    running = start(sqs, queue_url, recorder, visibility_s=1, max_receives=3)
    await eventually(lambda: running.counters.poison_dropped == 1)
    await running.stop()

    assert recorder.attempts.count("poison") == 3  # left twice, dropped on the third delivery
    assert sorted(recorder.applied) == ["good-0", "good-1"]
    assert running.counters.deleted == 3
    await asyncio.to_thread(assert_drained, sqs, queue_url)


@pytest.mark.parametrize(
    ("failure", "with_traceback"),
    [
        pytest.param(lambda: StoreDown("store unavailable"), False, id="temporary"),
        pytest.param(lambda: RuntimeError("a bug"), True, id="unexpected, logged with traceback"),
    ],
)
async def test_a_failed_apply_is_left_in_the_queue_and_applied_on_redelivery(
    sqs: SQSClient,
    queue_url: str,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[], Exception],
    with_traceback: bool,
) -> None:
    bodies = ["event-0", "flaky", "event-2"]
    send(sqs, queue_url, bodies)
    recorder = Recorder(fail_once={"flaky": failure})

    with caplog.at_level(logging.WARNING, logger="blox.css.ingest.sqs"):
        running = start(sqs, queue_url, recorder, pollers=1, visibility_s=1)
        await eventually(lambda: running.counters.deleted == 3)
        await running.stop()

    assert any(record.exc_info for record in caplog.records) is with_traceback

    assert sorted(recorder.applied) == sorted(bodies)
    assert recorder.attempts.count("flaky") == 2
    assert running.counters.temporary_failures == 1
    assert running.counters.processed == 3
    await asyncio.to_thread(assert_drained, sqs, queue_url)


async def test_stop_finishes_the_batch_in_hand_and_deletes_it(
    sqs: SQSClient, queue_url: str
) -> None:
    send(sqs, queue_url, ["event-0", "event-1", "event-2"])
    recorder = Recorder(gate=asyncio.Event())
    running = start(sqs, queue_url, recorder, pollers=1)
    await eventually(lambda: len(recorder.attempts) == 1)

    stopping = asyncio.create_task(running.stop())
    done, _ = await asyncio.wait({stopping}, timeout=0.2)
    assert not done  # still processing: stop waits for the batch
    assert recorder.gate is not None
    recorder.gate.set()
    await stopping

    received = running.counters.received
    assert received >= 1
    assert running.counters.processed == running.counters.deleted == received
    assert recorder.applied == ["event-0", "event-1", "event-2"][:received]
    assert await asyncio.to_thread(queue_depth, sqs, queue_url) == (3 - received, 0)


@pytest.mark.slow
async def test_a_slow_batch_stays_invisible_while_the_heartbeat_extends_it(
    sqs: SQSClient, queue_url: str
) -> None:
    send(sqs, queue_url, ["slow"])
    recorder = Recorder(gate=asyncio.Event())
    running = start(sqs, queue_url, recorder, pollers=1, visibility_s=1)
    await eventually(lambda: recorder.attempts == ["slow"])

    # Three visibility timeouts pass while processing; another consumer never sees the message.
    for _ in range(3):
        other = await asyncio.to_thread(sqs.receive_message, QueueUrl=queue_url, WaitTimeSeconds=1)
        assert "Messages" not in other
    assert recorder.gate is not None
    recorder.gate.set()
    await eventually(lambda: running.counters.deleted == 1)
    await running.stop()

    assert running.counters.received == 1
    await asyncio.to_thread(assert_drained, sqs, queue_url)


async def test_receive_errors_are_counted_and_retried_with_backoff_on_the_injected_clock(
    sqs: SQSClient, queue_url: str
) -> None:
    missing = queue_url + "-missing"
    clock = ManualClock()
    running = start(sqs, missing, Recorder(), pollers=1, clock=clock)

    await eventually(lambda: running.counters.receive_errors == 1)
    await clock.advance(0.2)
    assert running.counters.receive_errors == 1  # still backing off: no busy loop
    await clock.advance(60)
    await eventually(lambda: running.counters.receive_errors == 2)
    await running.stop()  # cuts the backoff short

    assert running.task.done() and running.task.exception() is None


def test_resolve_queue_accepts_the_v03_forms(sqs: SQSClient, queue_url: str) -> None:
    name = queue_url.rsplit("/", 1)[1]

    assert resolve_queue(sqs, f"sqs://{name}") == queue_url
    assert resolve_queue(sqs, name) == queue_url
    assert resolve_queue(sqs, queue_url) == queue_url
    with pytest.raises(Invalid, match="names a Kinesis stream"):
        resolve_queue(sqs, "kinesis://ecs-events")
    with pytest.raises(NotFound, match="does not exist"):
        resolve_queue(sqs, "sqs://no-such-queue")


async def test_queue_lag_is_observed_from_sent_timestamp_for_applied_messages_only(
    sqs: SQSClient, queue_url: str, dead_letter_url: str
) -> None:
    sent_after = time.time()
    send(sqs, queue_url, ["event-0", "poison", "event-1"])
    sent_before = time.time()
    # The poller's clock reads 1000 s after the sends: each lag is that, plus send jitter.
    clock = ManualClock(start=datetime.fromtimestamp(sent_before + 1000, UTC))
    metrics = CssMetrics(clock=clock)
    lags: list[float] = []

    def observe(seconds: float) -> None:
        lags.append(seconds)
        metrics.observe_lag(seconds)

    recorder = Recorder(poison={"poison"})
    running = start(
        sqs, queue_url, recorder, clock=clock, dead_letter_url=dead_letter_url, observe_lag=observe
    )
    await eventually(lambda: running.counters.deleted == 3)
    await running.stop()

    assert len(lags) == 2  # the poison message was dead-lettered, not applied: no lag
    for lag in lags:  # SentTimestamp has millisecond resolution, hence the 1 ms slack
        assert 1000 - 0.001 <= lag <= 1000 + (sent_before - sent_after) + 0.001
    text = metrics.exposition()[0].decode()
    assert "blox_css_queue_lag_seconds_count 2.0" in text
    assert 'blox_css_queue_lag_seconds_bucket{le="900.0"} 0.0' in text
    assert 'blox_css_queue_lag_seconds_bucket{le="3600.0"} 2.0' in text


@dataclass
class Batching:
    """The real processor's `process_many`, recording how many bodies each call got."""

    processor: Processor
    sizes: list[int] = field(default_factory=list)

    async def __call__(self, bodies: Sequence[str]) -> list[Outcome | Exception]:
        self.sizes.append(len(bodies))
        return await self.processor.process_many(bodies)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:{tmp_path / 'css.db'}", clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_processor_applies_each_received_batch_in_one_call_and_poison_goes_alone(
    sqs: SQSClient, queue_url: str, dead_letter_url: str, store: Store
) -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    bodies = [(FIXTURES / f"{name}.json").read_text() for name in names]
    bodies.insert(3, "not json {")
    send(sqs, queue_url, bodies)
    batching = Batching(Processor(store, clock=ManualClock()))

    running = start(
        sqs, queue_url, None, process_many=batching, pollers=1, dead_letter_url=dead_letter_url
    )
    await eventually(lambda: running.counters.deleted == len(bodies))
    await running.stop()

    assert sum(batching.sizes) == running.counters.received == len(bodies)
    assert max(batching.sizes) > 1  # moto hands out several messages a receive: one call each
    assert running.counters.dead_lettered == 1
    assert running.counters.processed == len(bodies) - 1
    dead = sqs.receive_message(QueueUrl=dead_letter_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in dead] == ["not json {"]
    for text in bodies[:3] + bodies[4:]:
        event = events.parse(text)
        entry = await store.get(keys.record(event.kind, event.cluster_arn, event.arn))
        assert entry is not None
        assert (ecs.decode(entry.value).version or 0) >= event.version
    counters = batching.processor.counters
    assert (counters.received, counters.rejected) == (len(bodies), 1)
    await asyncio.to_thread(assert_drained, sqs, queue_url)


async def test_a_temporary_failure_in_a_batch_leaves_that_message_alone_for_redelivery(
    sqs: SQSClient, queue_url: str
) -> None:
    bodies = ["event-0", "flaky", "event-2"]
    send(sqs, queue_url, bodies)
    recorder = BatchRecorder(fail_once={"flaky": lambda: StoreDown("store unavailable")})

    running = start(sqs, queue_url, None, process_many=recorder, pollers=1, visibility_s=1)
    await eventually(lambda: running.counters.deleted == 3)
    await running.stop()

    assert sorted(recorder.applied) == sorted(bodies)  # each applied once: only flaky came back
    assert [call.count("flaky") for call in recorder.calls].count(1) == 2
    assert running.counters.temporary_failures == 1
    assert running.counters.processed == 3
    assert running.counters.received == 4
    await asyncio.to_thread(assert_drained, sqs, queue_url)


def test_a_poller_takes_exactly_one_of_process_and_process_many(
    sqs: SQSClient, queue_url: str
) -> None:
    with pytest.raises(Invalid, match="exactly one"):
        SqsPoller(sqs, queue_url, clock=SystemClock())
    with pytest.raises(Invalid, match="exactly one"):
        SqsPoller(
            sqs, queue_url, process=Recorder(), process_many=BatchRecorder(), clock=SystemClock()
        )
