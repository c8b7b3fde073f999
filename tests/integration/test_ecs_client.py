"""EcsClient against the simulator over real HTTP: pages, batches, failures, throttling, errors."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from blox.clock import ManualClock, SystemClock
from blox.ecs import (
    ClientRefused,
    ClusterNotFound,
    EcsClient,
    EcsError,
    EndpointUnreachable,
    InvalidParameter,
    RetryPolicy,
)
from blox.sim.server import BackgroundServer
from blox.sim.state import EcsState, LifecycleTiming, SimConfig
from blox.sim.throttle import Throttle
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

BIG_INSTANCES, BIG_TASKS = 250, 260
SMALL_INSTANCES, STARVED = 25, {3, 11, 12, 24}  # these instances lack the memory for `web`
FAST = RetryPolicy(base_s=0.02, cap_s=0.5, max_attempts=30, deadline_s=30.0)
WEB = {
    "family": "web",
    "containerDefinitions": [{"name": "main", "image": "nginx", "cpu": 16, "memory": 64}],
}
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def resources(memory: int) -> list[dict[str, Any]]:
    return [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
    ]


def populate(state: EcsState) -> dict[str, list[str]]:
    """Cluster `big` (250 instances, 260 tasks) and `small` (25 instances, 4 starved)."""
    state.create_cluster(name="big")
    state.create_cluster(name="small")
    state.register_task_definition(WEB)
    big = [
        state.register_container_instance(cluster="big", total_resources=resources(16384))[
            "containerInstanceArn"
        ]
        for _ in range(BIG_INSTANCES)
    ]
    small = [
        state.register_container_instance(
            cluster="small", total_resources=resources(32 if n in STARVED else 8192)
        )["containerInstanceArn"]
        for n in range(SMALL_INSTANCES)
    ]
    targets = (big * 2)[:BIG_TASKS]
    tasks: list[str] = []
    for start in range(0, BIG_TASKS, 10):
        placed, failures = state.start_task(
            cluster="big",
            task_definition="web",
            instances=targets[start : start + 10],
            started_by="seed",
        )
        assert not failures
        tasks += [t["taskArn"] for t in placed]
    return {"big": big, "small": small, "tasks": tasks}


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    """The simulator on a free port: lifecycle on a manual clock, throttling on the real one."""
    timing = LifecycleTiming(pending_s=(2.0, 4.0), stopping_s=(1.0, 1.0))
    state = EcsState(clock=ManualClock(), config=SimConfig(seed=3, timing=timing))
    throttle = Throttle(clock=SystemClock(), rates={}, default=(10_000.0, 10_000.0))
    with BackgroundServer(state, port=free_port(), throttle=throttle) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(sim: BackgroundServer) -> dict[str, list[str]]:
    return sim.call(lambda: populate(sim.state))


@pytest.fixture(scope="module")
def client(sim: BackgroundServer) -> Iterator[EcsClient]:
    """An EcsClient made by `create`, with no credentials configured (dummy ones are used)."""
    with pytest.MonkeyPatch.context() as env:
        for name in CREDENTIAL_ENV:
            env.delenv(name, raising=False)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        ecs = EcsClient.create(
            region="us-east-1",
            endpoint_url=sim.url,
            clock=SystemClock(),
            policy=FAST,
            rng=random.Random(5),
        )
    yield ecs
    ecs.close()


@pytest.fixture
def calls(client: EcsClient) -> Iterator[Counter[str]]:
    """HTTP requests sent, by operation, during one test (every attempt counts)."""
    sent: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    client.boto.meta.events.register("before-send.ecs", count)
    yield sent
    client.boto.meta.events.unregister("before-send.ecs", count)


async def test_lists_follow_every_page(
    client: EcsClient, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    assert sorted(await client.list_container_instances("big")) == sorted(fleet["big"])
    assert sorted(await client.list_tasks("big")) == sorted(fleet["tasks"])
    assert calls["ListContainerInstances"] == 3
    assert calls["ListTasks"] == 3
    clusters = await client.list_clusters()
    assert {c.rsplit("/", 1)[-1] for c in clusters} >= {"big", "small"}


async def test_list_filters_reach_ecs(client: EcsClient, fleet: dict[str, list[str]]) -> None:
    on_first = await client.list_tasks("big", container_instance=fleet["big"][0])
    assert len(on_first) == 2
    assert await client.list_tasks("big", started_by="nobody") == []
    assert len(await client.list_tasks("big", family="web", desired_status="RUNNING")) == 260
    assert await client.list_container_instances("big", status="DRAINING") == []


async def test_describe_batches_beyond_100_ids_and_merges_failures(
    client: EcsClient, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    missing = fleet["tasks"][0].rsplit("/", 1)[0] + "/" + "f" * 32
    tasks = await client.describe_tasks("big", [*fleet["tasks"], missing])
    instances = await client.describe_container_instances("big", fleet["big"])
    assert sorted(t["taskArn"] for t in tasks.items) == sorted(fleet["tasks"])
    assert [(f.arn, f.reason) for f in tasks.failures] == [(missing, "MISSING")]
    assert len(instances.items) == BIG_INSTANCES and not instances.failures
    assert calls["DescribeTasks"] == 3 and calls["DescribeContainerInstances"] == 3
    detail = tasks.details()[0]
    assert isinstance(detail["createdAt"], str) and detail["createdAt"].endswith("Z")


async def test_describe_clusters_tells_active_inactive_and_missing_apart(
    client: EcsClient, sim: BackgroundServer, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    sim.call(lambda: sim.state.create_cluster(name="retired"))
    sim.call(lambda: sim.state.delete_cluster(cluster="retired"))
    small = next(c for c in await client.list_clusters() if c.endswith("/small"))
    found = await client.describe_clusters(["big", small, "retired", "absent"])
    statuses = {c["clusterName"]: (c["status"], c["clusterArn"]) for c in found.items}
    assert statuses == {
        "big": ("ACTIVE", small.replace("/small", "/big")),
        "small": ("ACTIVE", small),
        "retired": ("INACTIVE", small.replace("/small", "/retired")),
    }
    assert [(f.arn, f.reason) for f in found.failures] == [
        (small.replace("/small", "/absent"), "MISSING")
    ]
    assert calls["DescribeClusters"] == 1


async def test_tasks_move_through_the_lifecycle_and_stop(
    client: EcsClient, sim: BackgroundServer, fleet: dict[str, list[str]]
) -> None:
    sim.advance(5.0)
    running = await client.describe_tasks("big", fleet["tasks"][:5])
    assert {t["lastStatus"] for t in running.items} == {"RUNNING"}
    stopped = await client.stop_task("big", fleet["tasks"][0], "test")
    assert stopped["desiredStatus"] == "STOPPED"
    definition = await client.describe_task_definition("web")
    assert definition["family"] == "web" and definition["revision"] == 1


async def test_start_task_batches_by_10_and_merges_per_instance_failures(
    client: EcsClient, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    started = await client.start_task("small", "web:1", fleet["small"], started_by="blox-it")
    assert calls["StartTask"] == 3
    refused = {fleet["small"][n] for n in STARVED}
    assert {f.arn for f in started.failures} == refused
    assert {f.reason for f in started.failures} == {"RESOURCE:MEMORY"}
    assert len(started.tasks) == SMALL_INSTANCES - len(STARVED)
    assert {t["containerInstanceArn"] for t in started.tasks} == set(fleet["small"]) - refused
    assert {t["startedBy"] for t in started.tasks} == {"blox-it"}


async def test_throttled_describes_are_retried_until_they_succeed(
    client: EcsClient, sim: BackgroundServer, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    throttle = sim.throttle
    assert throttle is not None
    sim.call(lambda: throttle.set_rate("DescribeTasks", capacity=1.0, rate_per_s=5.0))
    try:
        found = await client.describe_tasks("big", fleet["tasks"])
    finally:
        sim.call(lambda: throttle.set_rate("DescribeTasks", capacity=1e4, rate_per_s=1e4))
    assert len(found.items) == BIG_TASKS
    assert calls["DescribeTasks"] > 3  # three batches, and throttled attempts retried


async def test_permanent_errors_are_raised_at_once_as_our_classes(
    client: EcsClient, fleet: dict[str, list[str]], calls: Counter[str]
) -> None:
    with pytest.raises(ClusterNotFound) as excinfo:
        await client.describe_tasks("nope", fleet["tasks"][:3])
    assert calls["DescribeTasks"] == 1
    assert not isinstance(excinfo.value, ClientError | BotoCoreError)
    assert isinstance(excinfo.value.__cause__, ClientError)
    assert excinfo.value.code == "ClusterNotFoundException"
    with pytest.raises(ClusterNotFound):
        await client.list_tasks("nope")
    with pytest.raises(ClientRefused):
        await client.describe_task_definition("absent:9")
    with pytest.raises(InvalidParameter):
        await client.stop_task("big", "f" * 32, "no such task")
    assert calls["ListTasks"] == calls["DescribeTaskDefinition"] == calls["StopTask"] == 1


async def test_an_unreachable_endpoint_is_our_temporary_error() -> None:
    ecs = EcsClient.create(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        clock=SystemClock(),
        policy=RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=2),
    )
    try:
        with pytest.raises(EndpointUnreachable) as excinfo:
            await ecs.list_clusters()
    finally:
        ecs.close()
    assert isinstance(excinfo.value, EcsError)
