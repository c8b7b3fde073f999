"""The reconciler against the simulator over HTTP: faulty event streams converge after one pass.

The simulator's own events (every change it made) are fed to the processor duplicated three
times, shuffled and with 10% dropped; one reconcile pass then brings every record to the
simulator's truth. Drift of every kind is repaired, and nothing outside ECS's answer is judged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from blox.clock import ManualClock, SystemClock
from blox.css import reconciler
from blox.css.processor import Outcome, Processor
from blox.css.reconciler import Reconciler
from blox.ecs import EcsClient, RetryPolicy
from blox.model import ecs
from blox.sim.events import EnvelopeFactory, envelope_json
from blox.sim.server import BackgroundServer
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig
from blox.sim.throttle import Throttle
from blox.store import Store, keys, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

INSTANCES, TASKS = 40, 120
TTL_S = 600.0
THROTTLED = ("ListTasks", "DescribeTasks", "DescribeContainerInstances")
FAST = RetryPolicy(base_s=0.02, cap_s=0.5, max_attempts=30, deadline_s=30.0)
WEB = {
    "family": "web",
    "containerDefinitions": [{"name": "main", "image": "nginx", "cpu": 16, "memory": 64}],
}
RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 16384},
]


@dataclasses.dataclass
class Fleet:
    """The simulator, the ECS client on it, and every event body the simulator emitted."""

    sim: BackgroundServer
    throttle: Throttle
    ecs: EcsClient
    bodies: list[str]
    cluster_arn: str


def build(state: EcsState, sim: BackgroundServer) -> str:
    """Cluster `prod`: 40 instances, 120 tasks; 30 of them stopped, 2 instances deregistered."""
    cluster_arn: str = sim.call(lambda: state.create_cluster(name="prod"))["clusterArn"]
    sim.call(lambda: state.register_task_definition(WEB))
    arns = [
        sim.call(
            lambda: state.register_container_instance(cluster="prod", total_resources=RESOURCES)
        )["containerInstanceArn"]
        for _ in range(INSTANCES)
    ]
    targets = (arns * 3)[:TASKS]
    tasks: list[str] = []
    for start in range(0, TASKS, 10):
        placed, failures = sim.call(
            lambda s=start: state.start_task(  # type: ignore[misc]
                cluster="prod", task_definition="web", instances=targets[s : s + 10], started_by="t"
            )
        )
        assert not failures
        tasks += [t["taskArn"] for t in placed]
    sim.advance(5.0)  # PENDING → RUNNING
    for task in tasks[:30]:
        sim.call(lambda t=task: state.stop_task(cluster="prod", task=t, reason="test"))  # type: ignore[misc]
    for instance in arns[-2:]:
        sim.call(
            lambda i=instance: state.deregister_container_instance(  # type: ignore[misc]
                cluster="prod", instance=i, force=True
            )
        )
    sim.advance(5.0)  # STOPPING → STOPPED
    return cluster_arn


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    timing = LifecycleTiming(pending_s=(1.0, 3.0), stopping_s=(0.5, 2.0))
    state = EcsState(clock=ManualClock(), config=SimConfig(seed=11, timing=timing))
    bodies: list[str] = []
    factory = EnvelopeFactory(random.Random(4))

    def record(change: EntityChange) -> None:
        bodies.append(envelope_json(factory.build(change)))

    state.listeners.append(record)
    throttle = Throttle(clock=SystemClock(), rates={}, default=(10_000.0, 10_000.0))
    with BackgroundServer(state, port=free_port(), throttle=throttle) as sim:
        cluster_arn = build(state, sim)
        client = EcsClient.create(
            region="us-east-1", endpoint_url=sim.url, clock=SystemClock(), policy=FAST
        )
        try:
            yield Fleet(
                sim=sim, throttle=throttle, ecs=client, bodies=bodies, cluster_arn=cluster_arn
            )
        finally:
            client.close()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


async def truth(fleet: Fleet) -> dict[str, tuple[int, str]]:
    """ARN → (version, status) of every task and instance ECS describes, deregistered included."""
    ecs_client, cluster = fleet.ecs, fleet.cluster_arn
    task_arns = [
        *await ecs_client.list_tasks(cluster, desired_status="RUNNING"),
        *await ecs_client.list_tasks(cluster, desired_status="STOPPED"),
    ]
    tasks = await ecs_client.describe_tasks(cluster, task_arns)
    instance_arns = sorted(
        {json.loads(b)["detail"]["containerInstanceArn"] for b in fleet.bodies if "Instance" in b}
    )
    instances = await ecs_client.describe_container_instances(cluster, instance_arns)
    seen = {t["taskArn"]: (t["version"], t["lastStatus"]) for t in tasks.items}
    seen.update({i["containerInstanceArn"]: (i["version"], i["status"]) for i in instances.items})
    return seen


async def stored(store: Store) -> dict[str, tuple[int | None, str, bool]]:
    """ARN → (version, status, is tombstone) of every stored record."""
    found: dict[str, tuple[int | None, str, bool]] = {}
    for prefix in (keys.TASKS, keys.INSTANCES):
        page = await store.list(prefix)
        for entry in page.entries:
            record = ecs.decode(entry.value)
            status = record.detail.get("lastStatus", record.detail.get("status"))
            found[record.arn] = (record.version, str(status), record.is_tombstone)
    return found


def make(store: Store, fleet: Fleet, clock: ManualClock) -> tuple[Processor, Reconciler]:
    processor = Processor(store, clock=clock)
    return processor, Reconciler(store, fleet.ecs, processor, clock=clock, tombstone_ttl_s=TTL_S)


async def test_faulty_streams_converge_after_one_reconcile(fleet: Fleet, store: Store) -> None:
    rng = random.Random(9)
    kept = [b for b in fleet.bodies if rng.random() >= 0.10]
    delivered = [b for b in kept for _ in range(3)]
    rng.shuffle(delivered)
    processor, pass_ = make(store, fleet, ManualClock())
    for body in delivered:
        await processor.process(body)
    expected = await truth(fleet)
    before = await stored(store)
    drifted = {
        a for a, (v, s) in expected.items() if before.get(a, (None, "", False))[:2] != (v, s)
    }
    assert drifted, "the faults left nothing to repair; the test would prove nothing"
    assert processor.counters.received == 3 * len(kept)
    assert processor.counters.duplicate > 0 and processor.counters.stale > 0

    report = await pass_.reconcile_once()

    after = await stored(store)
    assert {a: (v, s) for a, (v, s, _) in after.items()} == expected
    assert not any(tomb for _, _, tomb in after.values())
    assert sum(report.written.values()) == len(drifted)
    assert report.failed == {}
    assert (await pass_.reconcile_once()).repaired == 0, "a second pass finds nothing to do"


async def test_drift_of_every_kind_is_repaired_and_nothing_else(fleet: Fleet, store: Store) -> None:
    clock = ManualClock()
    processor, pass_ = make(store, fleet, clock)
    for body in fleet.bodies:
        await processor.process(body)
    expected = await truth(fleet)
    task_arn = next(a for a, (_, s) in expected.items() if s == "RUNNING" and ":task/" in a)
    template = json.loads(next(b for b in reversed(fleet.bodies) if task_arn in b))

    def variant(arn: str, version: int, cluster: str = fleet.cluster_arn, **detail: Any) -> str:
        body = json.loads(json.dumps(template))
        body["detail"].update(taskArn=arn, version=version, clusterArn=cluster, **detail)
        body["resources"] = [arn]
        body["account"] = cluster.split(":")[4]
        return json.dumps(body)

    vanished = task_arn[:-32] + "f" * 32  # a task ECS never had, in the same cluster
    ghost_cluster = fleet.cluster_arn.replace("/prod", "/ghost")
    ghost = task_arn.replace("/prod/", "/ghost/")[:-32] + "e" * 32
    foreign_cluster = fleet.cluster_arn.replace(fleet.cluster_arn.split(":")[4], "999988887777")
    foreign = task_arn.replace(fleet.cluster_arn.split(":")[4], "999988887777")
    newer = next(a for a, (_, s) in expected.items() if s == "STOPPED" and ":task/" in a)
    stale_key = keys.record("task", fleet.cluster_arn, task_arn)
    entry = await store.get(stale_key)
    assert entry is not None
    old = dataclasses.replace(ecs.decode(entry.value), version=0, detail={"lastStatus": "PENDING"})
    await store.put(stale_key, ecs.encode(old))
    for body in (
        variant(vanished, 5),
        variant(ghost, 2, ghost_cluster),
        variant(foreign, 2, foreign_cluster),
        variant(newer, expected[newer][0] + 10, lastStatus="STOPPED"),
    ):
        assert await processor.process(body) is Outcome.APPLIED

    report = await pass_.reconcile_once()

    after = await stored(store)
    assert after[task_arn] == (*expected[task_arn], False), "a stale record is written anew"
    assert after[vanished][2] and after[ghost][2], "MISSING and a vanished cluster: tombstones"
    assert after[foreign] == (2, "RUNNING", False), "another account's record is not judged"
    assert after[newer][0] == expected[newer][0] + 10, "a newer record is never overwritten"
    assert report.written["task"] == 1
    assert report.tombstoned["task"] == 2
    assert report.failed == {}

    assert await processor.process(variant(vanished, 4)) is Outcome.TOMBSTONED, "no resurrection"
    await clock.advance(TTL_S + 1)
    report = await pass_.reconcile_once()
    assert report.expired["task"] == 2
    remaining = await stored(store)
    assert vanished not in remaining and ghost not in remaining
    assert foreign in remaining


async def test_a_throttled_ecs_slows_the_pass_down_but_it_completes(
    fleet: Fleet, store: Store
) -> None:
    _, pass_ = make(store, fleet, ManualClock())
    throttled: list[str] = []

    def count(response: Any = None, **_: Any) -> None:
        if (
            response is not None
            and response[1].get("Error", {}).get("Code") == "ThrottlingException"
        ):
            throttled.append("x")

    fleet.ecs.boto.meta.events.register("needs-retry.ecs", count)
    for operation in THROTTLED:
        fleet.throttle.set_rate(operation, capacity=1, rate_per_s=20)
    try:
        report = await pass_.reconcile_once()
    finally:
        fleet.ecs.boto.meta.events.unregister("needs-retry.ecs", count)
        for operation in THROTTLED:
            fleet.throttle.set_rate(operation, capacity=10_000, rate_per_s=10_000)
    assert throttled, "the simulator throttled nothing; the test would prove nothing"
    assert report.failed == {}
    assert report.written == {"task": TASKS, "instance": INSTANCES - 2}
    expected = await truth(fleet)
    after = await stored(store)
    assert len(after) == TASKS + INSTANCES - 2
    assert all(expected[a] == (v, s) for a, (v, s, _) in after.items())


async def test_only_the_leader_reconciles_and_another_takes_over(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Three replicas on one real etcd (a server of its own: the pass judges every record)."""
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    stores = [await open_store(server.url) for _ in range(3)]
    reports: list[str] = []
    clock = SystemClock()

    def replica(n: int) -> asyncio.Task[None]:
        processor = Processor(stores[n], clock=clock)
        pass_ = Reconciler(stores[n], fleet.ecs, processor, clock=clock, tombstone_ttl_s=TTL_S)
        return asyncio.create_task(
            reconciler.lead(
                stores[n],
                pass_,
                interval_s=0.2,
                identity=f"r{n}",
                clock=clock,
                on_report=lambda _: reports.append(f"r{n}"),
                election_ttl_s=2,
            )
        )

    replicas = [replica(n) for n in range(3)]
    try:
        await until(lambda: len(reports) >= 3)
        first = reports[0]
        assert set(reports) == {first}, "one leader at a time"
        assert await reconciler.last_reconciled(stores[1]) is not None
        replicas[int(first[1])].cancel()  # the leader stops and resigns
        await asyncio.wait({replicas[int(first[1])]})
        count = len(reports)
        await until(lambda: len(reports) >= count + 3)
        successors = set(reports[count:])
        assert len(successors) == 1 and first not in successors
        assert len(await stored(stores[0])) == INSTANCES - 2 + TASKS, "deregistered: unlisted"
    finally:
        for task in replicas:
            task.cancel()
        await asyncio.gather(*replicas, return_exceptions=True)
        for opened in stores:
            await opened.close()
        server.stop()


async def until(condition: Any, timeout_s: float = 30.0) -> None:
    """Wait until `condition()` holds (polling), or fail after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)
