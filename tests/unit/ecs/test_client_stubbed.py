"""EcsClient's pagination, batching and retry choices against botocore's Stubber (no network)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from blox.ecs import ClusterNotFound, EcsClient, RetryPolicy, ServerError, Throttled, detail

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/fleet"


class InstantClock:
    """Records every wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.elapsed = 0.0

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.elapsed, UTC)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.elapsed += seconds
        await asyncio.sleep(0)


def ci(n: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:container-instance/fleet/{n:032x}"


def task(n: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/fleet/{n:032x}"


@pytest.fixture
def stubbed() -> Iterator[tuple[EcsClient, Stubber, InstantClock]]:
    boto = boto3.session.Session().client(
        "ecs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )
    clock = InstantClock()
    client = EcsClient(boto, clock=clock, policy=RetryPolicy(), rng=random.Random(0))
    with Stubber(boto) as stubber:
        yield client, stubber, clock
        stubber.assert_no_pending_responses()
    client.close()


async def test_list_tasks_follows_every_page(stubbed: Any) -> None:
    client, stubber, _ = stubbed
    wanted = {"cluster": "fleet", "maxResults": 100, "desiredStatus": "RUNNING", "family": "web"}
    stubber.add_response("list_tasks", {"taskArns": [task(1)], "nextToken": "t1"}, {**wanted})
    stubber.add_response(
        "list_tasks", {"taskArns": [task(2)], "nextToken": "t2"}, {**wanted, "nextToken": "t1"}
    )
    stubber.add_response("list_tasks", {"taskArns": [task(3)]}, {**wanted, "nextToken": "t2"})
    arns = await client.list_tasks("fleet", desired_status="RUNNING", family="web")
    assert arns == [task(1), task(2), task(3)]


async def test_list_clusters_and_instances_follow_pages(stubbed: Any) -> None:
    client, stubber, _ = stubbed
    stubber.add_response("list_clusters", {"clusterArns": ["a"], "nextToken": "n"})
    stubber.add_response("list_clusters", {"clusterArns": ["b"]})
    stubber.add_response(
        "list_container_instances",
        {"containerInstanceArns": [ci(1)]},
        {"cluster": "fleet", "status": "DRAINING", "maxResults": 100},
    )
    assert await client.list_clusters() == ["a", "b"]
    assert await client.list_container_instances("fleet", status="DRAINING") == [ci(1)]


async def test_describe_tasks_batches_by_100_and_merges_failures(stubbed: Any) -> None:
    client, stubber, _ = stubbed
    arns = [task(n) for n in range(250)]
    created = datetime(2017, 6, 1, 12, tzinfo=UTC)
    for start, end in ((0, 100), (100, 200), (200, 250)):
        stubber.add_response(
            "describe_tasks",
            {
                "tasks": [{"taskArn": a, "createdAt": created} for a in arns[start : end - 1]],
                "failures": [{"arn": arns[end - 1], "reason": "MISSING"}],
            },
            {"cluster": "fleet", "tasks": arns[start:end]},
        )
    found = await client.describe_tasks("fleet", arns)
    assert len(found.items) == 247
    assert [f.arn for f in found.failures] == [arns[99], arns[199], arns[249]]
    assert {f.reason for f in found.failures} == {"MISSING"}
    assert found.details()[0]["createdAt"] == "2017-06-01T12:00:00.000Z"


async def test_describe_nothing_makes_no_call(stubbed: Any) -> None:
    client, _, _ = stubbed
    found = await client.describe_container_instances("fleet", [])
    assert found.items == [] and found.failures == []
    clusters = await client.describe_clusters([])  # ECS would describe `default`: no call
    assert clusters.items == [] and clusters.failures == []


async def test_describe_clusters_batches_by_100_and_merges_failures(stubbed: Any) -> None:
    client, stubber, _ = stubbed
    names = [f"c{n}" for n in range(150)]
    for start, end in ((0, 100), (100, 150)):
        stubber.add_response(
            "describe_clusters",
            {
                "clusters": [
                    {"clusterArn": f"{CLUSTER}-{n}", "status": "ACTIVE"}
                    for n in names[start : end - 1]
                ],
                "failures": [{"arn": f"{CLUSTER}-{names[end - 1]}", "reason": "MISSING"}],
            },
            {"clusters": names[start:end]},
        )
    found = await client.describe_clusters(names)
    assert len(found.items) == 148
    assert [(f.arn, f.reason) for f in found.failures] == [
        (f"{CLUSTER}-c99", "MISSING"),
        (f"{CLUSTER}-c149", "MISSING"),
    ]


async def test_start_task_batches_by_10_and_merges_failures(stubbed: Any) -> None:
    client, stubber, _ = stubbed
    instances = [ci(n) for n in range(25)]
    for start, end in ((0, 10), (10, 20), (20, 25)):
        stubber.add_response(
            "start_task",
            {
                "tasks": [{"taskArn": task(n)} for n in range(start, end - 1)],
                "failures": [{"arn": instances[end - 1], "reason": "RESOURCE:MEMORY"}],
            },
            {
                "cluster": "fleet",
                "taskDefinition": "web:1",
                "containerInstances": instances[start:end],
                "startedBy": "blox",
                "group": "daemon",
            },
        )
    started = await client.start_task(
        "fleet", "web:1", instances, started_by="blox", group="daemon"
    )
    assert len(started.tasks) == 22
    assert [f.reason for f in started.failures] == ["RESOURCE:MEMORY"] * 3


async def test_throttled_calls_are_retried_with_backoff(stubbed: Any) -> None:
    client, stubber, clock = stubbed
    for _ in range(2):
        stubber.add_client_error("stop_task", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_response("stop_task", {"task": {"taskArn": task(1), "desiredStatus": "STOPPED"}})
    stopped = await client.stop_task("fleet", task(1), "done")
    assert stopped["desiredStatus"] == "STOPPED"
    assert len(clock.waits) == 2


async def test_start_task_is_not_retried_after_a_server_error(stubbed: Any) -> None:
    client, stubber, clock = stubbed
    stubber.add_client_error("start_task", "ServerException", "boom", 500)
    with pytest.raises(ServerError):
        await client.start_task("fleet", "web:1", [ci(1)], started_by="blox")
    assert clock.waits == []


async def test_start_task_is_retried_when_throttled(stubbed: Any) -> None:
    client, stubber, clock = stubbed
    stubber.add_client_error("start_task", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_response("start_task", {"tasks": [{"taskArn": task(1)}], "failures": []})
    started = await client.start_task("fleet", "web:1", [ci(1)], started_by="blox")
    assert [t["taskArn"] for t in started.tasks] == [task(1)]
    assert len(clock.waits) == 1


async def test_permanent_errors_are_not_retried(stubbed: Any) -> None:
    client, stubber, clock = stubbed
    stubber.add_client_error("describe_task_definition", "ClusterNotFoundException", "x", 400)
    with pytest.raises(ClusterNotFound):
        await client.describe_task_definition("web")
    assert clock.waits == []


async def test_retries_give_up_after_max_attempts(stubbed: Any) -> None:
    client, stubber, clock = stubbed
    client.policy = RetryPolicy(max_attempts=3, deadline_s=None)
    for _ in range(3):
        stubber.add_client_error("list_clusters", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(Throttled):
        await client.list_clusters()
    assert len(clock.waits) == 2


def test_detail_makes_nested_datetimes_iso_text() -> None:
    moment = datetime(2017, 6, 1, 0, 0, 1, 500000, tzinfo=UTC)
    raw = {"a": moment, "b": [{"c": moment}], "d": 1}
    assert detail(raw) == {
        "a": "2017-06-01T00:00:01.500Z",
        "b": [{"c": "2017-06-01T00:00:01.500Z"}],
        "d": 1,
    }
