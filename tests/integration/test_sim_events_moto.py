"""Sim events over real sockets: EventPump → SQS or EventBridge on moto → the same SQS bodies."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from blox.clock import SystemClock
from blox.sim import events, faults, publishers, pump
from blox.sim.state.changes import EntityChange

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account for dummy credentials: EventBridge stamps it
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/fleet-a"
T0 = datetime(2026, 11, 20, 9, 14, 2, 131000, tzinfo=UTC)
RECEIVE_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Moto:
    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield Moto(endpoint=f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def sqs(moto: Moto) -> Iterator[SQSClient]:
    client: SQSClient = moto.client("sqs")
    yield client
    client.close()


@pytest.fixture
def eventbridge(moto: Moto) -> Iterator[EventBridgeClient]:
    client: EventBridgeClient = moto.client("events")
    yield client
    client.close()


@pytest.fixture
def queue_url(sqs: SQSClient) -> Iterator[str]:
    url = sqs.create_queue(QueueName=f"ecs-events-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def rule_to_queue(sqs: SQSClient, eventbridge: EventBridgeClient, queue_url: str) -> Iterator[str]:
    """An ECS rule on the default bus targeting the queue, with BloxLocal's queue policy."""
    name = f"ecs-state-{uuid.uuid4().hex[:12]}"
    pattern = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change", "ECS Container Instance State Change"],
    }
    rule_arn = eventbridge.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")[
        "RuleArn"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    eventbridge.put_targets(Rule=name, Targets=[{"Id": "ecs-events-queue", "Arn": queue_arn}])
    yield name
    eventbridge.remove_targets(Rule=name, Ids=["ecs-events-queue"])
    eventbridge.delete_rule(Name=name)


def task_change(number: int) -> EntityChange:
    """A RUNNING task change; every task distinct, versions 1..3 cycling."""
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/fleet-a/{number:032x}"
    updated_at = T0 + timedelta(seconds=number, milliseconds=number * 7)
    detail = {
        "clusterArn": CLUSTER,
        "createdAt": T0,
        "desiredStatus": "RUNNING",
        "group": "family:log-shipper",
        "lastStatus": "RUNNING",
        "launchType": "EC2",
        "startedAt": updated_at,
        "taskArn": arn,
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/log-shipper:7",
        "updatedAt": updated_at,
        "version": 1 + number % 3,
    }
    return EntityChange(kind="task", detail=detail, account=ACCOUNT, region=REGION, time=updated_at)


def envelopes(count: int, seed: int = 11) -> list[events.Envelope]:
    factory = events.EnvelopeFactory(random.Random(seed))
    return [factory.build(task_change(n)) for n in range(count)]


def receive(sqs: SQSClient, queue_url: str, expected: int) -> list[dict[str, Any]]:
    """Every message body until `expected` arrived, then one more empty poll; deadline-bound."""
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + RECEIVE_DEADLINE_S
    empty_after_expected = False
    while time.monotonic() < deadline and not empty_after_expected:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages and len(bodies) >= expected:
            empty_after_expected = True
        bodies.extend(json.loads(m["Body"]) for m in messages)
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
    return bodies


async def pump_all(publisher: events.Publisher, batch: list[events.Envelope], **kw: Any) -> Any:
    async with pump.EventPump(publisher, clock=SystemClock(), linger_s=0.01, **kw) as running:
        for envelope in batch:
            assert running.offer(envelope)
    return running.counters


def strip(envelope: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in envelope.items() if key not in keys}


def by_id(bodies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {body["id"]: body for body in bodies}


async def test_sqs_publisher_delivers_every_envelope_exactly_once(
    sqs: SQSClient, queue_url: str
) -> None:
    sent = envelopes(60)

    counters = await pump_all(publishers.SqsPublisher(sqs, queue_url), sent, concurrency=2)
    received = await asyncio.to_thread(receive, sqs, queue_url, len(sent))

    assert counters == pump.PumpCounters(offered=60, published=60)
    assert len(received) == len(sent)
    assert by_id(received) == by_id(sent)


async def test_eventbridge_delivers_the_same_envelope_as_direct_sqs_but_its_own_id(
    sqs: SQSClient, eventbridge: EventBridgeClient, queue_url: str, rule_to_queue: str
) -> None:
    sent = envelopes(55, seed=5)

    counters = await pump_all(publishers.EventBridgePublisher(eventbridge), sent)
    received = await asyncio.to_thread(receive, sqs, queue_url, len(sent))

    assert counters == pump.PumpCounters(offered=55, published=55)
    assert len(received) == len(sent)
    assert not {body["id"] for body in received} & {e["id"] for e in sent}  # the bus mints ids
    # moto renders SQS targets through its default input template: no "account" (real
    # EventBridge keeps it) and another key order. Everything else is the direct-SQS envelope.
    assert all(set(sent[0]) - set(body) == {"account"} for body in received)
    assert all(set(body) <= set(sent[0]) for body in received)
    direct = {e["resources"][0]: strip(e, "id", "account") for e in sent}
    via_bus = {body["resources"][0]: strip(body, "id") for body in received}
    assert via_bus == direct


async def test_duplicates_injected_before_the_sink_arrive_twice_at_the_queue(
    sqs: SQSClient, queue_url: str
) -> None:
    sent = envelopes(50, seed=3)
    injected = faults.EventFaults(faults.FaultConfig(duplicate_rate=1.0), rng=random.Random(1))

    counters = await pump_all(publishers.SqsPublisher(sqs, queue_url), sent, faults=injected)
    received = await asyncio.to_thread(receive, sqs, queue_url, 2 * len(sent))

    assert counters.published == 100
    assert injected.counters.duplicated == 50
    assert Counter(body["id"] for body in received) == {e["id"]: 2 for e in sent}


async def test_dropped_and_reordered_envelopes_are_exactly_what_the_queue_misses(
    sqs: SQSClient, queue_url: str
) -> None:
    sent = envelopes(80, seed=9)
    config = faults.FaultConfig(drop_rate=0.25, reorder_window=7)
    injected = faults.EventFaults(config, rng=random.Random(2))

    counters = await pump_all(publishers.SqsPublisher(sqs, queue_url), sent, faults=injected)
    received = await asyncio.to_thread(receive, sqs, queue_url, counters.published)

    assert injected.counters.dropped > 0
    assert len(received) == len(sent) - injected.counters.dropped == counters.published
    assert len(by_id(received)) == len(received)
    assert set(by_id(received)) <= {e["id"] for e in sent}
