"""The daemon scheduler's controller against the simulator and a CSS, all over real HTTP.

The simulator runs on the system clock with short lifecycle delays (and its admin API under
`/_sim`); its events feed a CSS store through the real processor; the CSS API is served by
uvicorn; the controller reads the CSS with `blox.client` (list + watch) and acts on the
simulator with `blox.ecs`. Acceptance scenario 11 (on SQLite and on a real etcd server too) and
each addition of issue 6 (instance selection, DRAINING, disconnected agents, maxSurge,
minReadySeconds, progress deadline with automatic rollback, pause / resume, deletion) are
checked against the simulator's own truth: boto3 on the simulator's URL, in worker threads
(the controller shares this loop), and the timestamps ECS records for every task.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn

from blox.client.css import AsyncCssClient
from blox.clock import SystemClock
from blox.css.api.app import create_app
from blox.css.processor import Processor
from blox.ecs import EcsClient, RetryPolicy
from blox.model import daemon
from blox.model.daemon import Deployment
from blox.scheduler import environments
from blox.scheduler.catalog import EcsClientCatalog
from blox.scheduler.control.controller import Controller
from blox.scheduler.control.informer import Informer
from blox.sim import admin
from blox.sim.chaos import Chaos
from blox.sim.events import EnvelopeFactory, envelope_json
from blox.sim.faults import EventFaults, FaultConfig
from blox.sim.server import BackgroundServer, serve
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig
from blox.sim.throttle import Throttle
from blox.store import Store, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base_s=0.02, cap_s=0.5, max_attempts=30, deadline_s=30.0)
INSTANCE_MEMORY = 16384  # MiB of every container instance
RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": INSTANCE_MEMORY},
]
NEVER = datetime.max.replace(tzinfo=UTC)


def definition(image: str, *, family: str = "daemon", memory: int = 128) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [{"name": "main", "image": image, "cpu": 64, "memory": memory}],
    }


class AdminSim(BackgroundServer):
    """`BackgroundServer` with the simulator's admin API (`/_sim/…`) mounted as well (it
    overrides the private `_run` until `BackgroundServer` takes `extra_routes` itself)."""

    def __init__(self, state: EcsState, *, port: int) -> None:
        super().__init__(state, port=port)
        chaos = Chaos(
            state, throttle=Throttle(clock=state.clock), clock=state.clock, rng=random.Random(3)
        )
        events = EventFaults(FaultConfig(), rng=random.Random(4))
        self.routes = admin.routes(chaos=chaos, events=events)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(
                serve(self.state, port=self.port, extra_routes=self.routes, started=self._started)
            )
        finally:
            self._loop.close()


@dataclass
class Stack:
    """The simulator (boto3 and an admin client on it), the controller, the scheduler's store,
    and the names of the cluster and the environment under test."""

    sim: AdminSim
    ecs: Any  # boto3's ECS client on the simulator, called in worker threads
    admin: httpx.AsyncClient
    store: Store
    controller: Controller
    catalog: EcsClientCatalog
    cluster: str
    name: str
    ecs_client: EcsClient  # blox's, as the controller uses it
    css: AsyncCssClient
    loops: list[asyncio.Task[None]]  # the informer's and the controller's

    async def fail_over(self) -> None:
        """Stop the controller as a lost leadership does, and run a new leader's: a fresh
        informer and controller on the same store and CSS (`controller` becomes it)."""
        leader = self.loops[1]
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)
        informer = Informer(self.css, clock=SystemClock())
        self.controller = Controller(
            self.store, informer, self.ecs_client, clock=SystemClock(), resync_s=0.3
        )
        self.loops += [
            asyncio.create_task(informer.run()),
            asyncio.create_task(self.controller.run()),
        ]

    async def call(self, operation: str, **params: Any) -> Any:
        """One ECS call on the simulator, in a worker thread."""
        return await asyncio.to_thread(getattr(self.ecs, operation), **params)

    async def add_instances(self, count: int, **attributes: str) -> list[str]:
        listed = [{"name": k, "value": v} for k, v in attributes.items()]
        return [
            (
                await self.call(
                    "register_container_instance",
                    cluster=self.cluster,
                    totalResources=RESOURCES,
                    attributes=listed,
                )
            )["containerInstance"]["containerInstanceArn"]
            for _ in range(count)
        ]

    async def instances(self) -> list[str]:
        page = await self.call("list_container_instances", cluster=self.cluster)
        return list(page["containerInstanceArns"])

    async def tasks(self, *desired: str) -> list[dict[str, Any]]:
        """The cluster's tasks with these desired statuses (default RUNNING, as ECS lists)."""

        def listed(status: str) -> list[str]:
            pages = self.ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster, desiredStatus=status
            )
            return [arn for page in pages for arn in page["taskArns"]]

        arns: list[str] = []
        for status in desired or ("RUNNING",):
            arns += await asyncio.to_thread(listed, status)
        found: list[dict[str, Any]] = []
        for first in range(0, len(arns), 100):
            batch = arns[first : first + 100]
            found += (await self.call("describe_tasks", cluster=self.cluster, tasks=batch))["tasks"]
        return found

    async def ours(self, *desired: str) -> list[dict[str, Any]]:
        """The environment's tasks (by their group), with these desired statuses."""
        mine = f"blox:{self.name}:"
        return [t for t in await self.tasks(*desired) if t.get("group", "").startswith(mine)]

    async def history(self) -> list[dict[str, Any]]:
        """Every task of the environment ECS knows, stopped ones included."""
        return await self.ours("RUNNING", "STOPPED")

    async def running(self) -> Counter[str]:
        """Container instance → number of RUNNING tasks of the environment."""
        return Counter(
            t["containerInstanceArn"] for t in await self.ours() if t["lastStatus"] == "RUNNING"
        )

    async def status(self) -> environments.Status | None:
        return (await environments.get_environment(self.store, self.name)).status

    async def deployment(self, deployment_id: str) -> Deployment:
        return await environments.get_deployment(self.store, self.name, deployment_id=deployment_id)

    async def sim_admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.admin.post(f"/_sim/{path}", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def passes(self, count: int) -> None:
        """Until the controller has made `count` more passes over every environment."""
        target = self.controller.passes + count

        async def done() -> bool:
            return self.controller.passes >= target

        await until(done, f"{count} more controller passes")


@asynccontextmanager
async def running_stack(
    css_url: str, store_url: str, *, cluster: str, name: str, resync_s: float = 0.3
) -> AsyncIterator[Stack]:
    """The whole stack: the CSS's store at `css_url`, the scheduler's at `store_url`, the
    controller passing over every environment at least every `resync_s`."""
    timing = LifecycleTiming(pending_s=(0.1, 0.3), stopping_s=(0.1, 0.2))
    state = EcsState(clock=SystemClock(), config=SimConfig(seed=5, timing=timing))
    css_store = await open_store(css_url, clock=SystemClock())
    store = await open_store(store_url, clock=SystemClock())
    processor = Processor(css_store, clock=SystemClock())
    loop = asyncio.get_running_loop()
    factory = EnvelopeFactory(random.Random(2))
    applying: set[asyncio.Future[Any]] = set()

    def feed(change: EntityChange) -> None:  # the simulator's thread → this loop
        body = envelope_json(factory.build(change))

        def apply() -> None:
            future = asyncio.ensure_future(processor.process(body))
            applying.add(future)
            future.add_done_callback(applying.discard)

        loop.call_soon_threadsafe(apply)

    state.listeners.append(feed)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store=css_store), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    sim = AdminSim(state, port=free_port())
    with sim:
        boto = boto3.session.Session().client(
            "ecs",
            endpoint_url=sim.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        boto.create_cluster(clusterName=cluster)
        boto.register_task_definition(**definition("nginx:1"))
        ecs = EcsClient.create(
            region="us-east-1", endpoint_url=sim.url, clock=SystemClock(), policy=FAST
        )

        async def serving_api() -> bool:
            return bool(server.started)

        await until(serving_api, "the CSS API")
        css = AsyncCssClient(f"http://127.0.0.1:{port}")
        informer = Informer(css, clock=SystemClock())
        controller = Controller(store, informer, ecs, clock=SystemClock(), resync_s=resync_s)
        running: list[asyncio.Task[None]] = [
            asyncio.create_task(informer.run()),
            asyncio.create_task(controller.run()),
        ]
        sim_admin = httpx.AsyncClient(base_url=sim.url)
        try:
            yield Stack(
                sim,
                boto,
                sim_admin,
                store,
                controller,
                EcsClientCatalog(ecs),
                cluster,
                name,
                ecs,
                css,
                running,
            )
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await sim_admin.aclose()
            await css.aclose()
            ecs.close()
            boto.close()
            server.should_exit = True
            await serving
            await asyncio.gather(*applying, return_exceptions=True)
            await store.close()
            await css_store.close()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack("memory://", "memory://", cluster="prod", name="web") as running:
        yield running


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def backend_stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The stack on SQLite, or on the session's real etcd server (shared with other tests:
    a cluster and an environment of its own); no periodic resync: the controller acts on
    changes only (the CSS's, and its store's environment records)."""
    if request.param == "sqlite":
        urls = (f"sqlite://{tmp_path / 'css.db'}", f"sqlite://{tmp_path / 'scheduler.db'}")
        cluster, name = "prod", "web"
    else:
        server: EtcdServer = request.getfixturevalue("etcd_server")
        suffix = uuid.uuid4().hex[:8]
        urls, cluster, name = (server.url, server.url), f"prod-{suffix}", f"web-{suffix}"
    async with running_stack(*urls, cluster=cluster, name=name, resync_s=600.0) as running:
        yield running


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def now() -> datetime:
    return SystemClock().now()


async def deploy(
    stack: Stack,
    *,
    constraints: tuple[daemon.Constraint, ...] = (),
    rollout: environments.RolloutChange | None = None,
) -> str:
    """Create the environment on the cluster and deploy it; the deployment id."""
    env = await environments.create_environment(
        stack.store,
        stack.catalog,
        name=stack.name,
        cluster=stack.cluster,
        task_definition="daemon",
        constraints=constraints,
        rollout=rollout,
        now=now(),
    )
    deployment = await environments.create_deployment(
        stack.store, stack.name, token=env.revision.deployment_token, now=now()
    )
    return deployment.id


async def roll(
    stack: Stack, task_definition: str, rollout: environments.RolloutChange | None = None
) -> str:
    """Once the deployment in progress completed: update and deploy; the deployment id."""

    async def idle() -> bool:
        found = await environments.desired(stack.store, stack.name)
        return found is not None and found.deployment is None

    await until(idle, "the deployment in progress to end")
    updated = await environments.update_environment(
        stack.store,
        stack.catalog,
        name=stack.name,
        task_definition=task_definition,
        rollout=rollout,
        now=now(),
    )
    deployment = await environments.create_deployment(
        stack.store, stack.name, token=updated.revision.deployment_token, now=now()
    )
    return deployment.id


def one_each(stack: Stack, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        running = await stack.running()
        return len(running) == count and all(n == 1 for n in running.values())

    return check


def exactly_on(stack: Stack, instances: Iterable[str]) -> Callable[[], Awaitable[bool]]:
    """One RUNNING task on each of `instances`, and no other live task of the environment."""
    wanted = set(instances)

    async def check() -> bool:
        live = await stack.ours()
        where = Counter(t["containerInstanceArn"] for t in live)
        return where == Counter(wanted) and all(t["lastStatus"] == "RUNNING" for t in live)

    return check


def completed(stack: Stack, deployment_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await stack.deployment(deployment_id)).status.value == "completed"

    return check


def status_is(stack: Stack, **expected: object) -> Callable[[], Awaitable[bool]]:
    """The environment's last status shows these counters (and reason)."""

    async def check() -> bool:
        status = await stack.status()
        return status is not None and all(getattr(status, k) == v for k, v in expected.items())

    return check


def on(tasks: Iterable[dict[str, Any]], instance: str) -> list[dict[str, Any]]:
    """`tasks` on `instance`, oldest first."""
    return sorted(
        (t for t in tasks if t["containerInstanceArn"] == instance), key=lambda t: t["createdAt"]
    )


def revision(task: dict[str, Any]) -> int:
    return int(task["group"].rsplit(":", 1)[1])


def serving(tasks: Sequence[dict[str, Any]], at: datetime) -> int:
    """How many of `tasks` were RUNNING and not yet asked to stop at `at` (ECS's timestamps)."""
    return sum(
        1
        for t in tasks
        if t.get("startedAt") is not None and t["startedAt"] <= at < t.get("stoppingAt", NEVER)
    )


def moments(tasks: Sequence[dict[str, Any]], since: datetime) -> list[datetime]:
    """Every moment after `since` at which one of `tasks` started or was asked to stop."""
    found = {since}
    for t in tasks:
        found |= {t[k] for k in ("startedAt", "stoppingAt") if t.get(k) and t[k] >= since}
    return sorted(found)


def millis(value: datetime) -> datetime:
    """`value` truncated to milliseconds, as ECS events (and so the CSS) carry timestamps."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# -- acceptance scenario 11, on each store backend -------------------------------------------


async def scenario_11(stack: Stack) -> None:
    await stack.add_instances(1)
    deployment_id = await deploy(stack)
    await until(one_each(stack, 1), "1 task on 1 instance")
    await until(completed(stack, deployment_id), "the deployment to complete")

    await stack.add_instances(1)
    await until(one_each(stack, 2), "2 tasks on 2 instances")

    for task in await stack.tasks():
        await stack.call("stop_task", cluster=stack.cluster, task=task["taskArn"])
    await until(one_each(stack, 2), "2 tasks again after every task was stopped by hand")

    await stack.add_instances(8)
    await until(one_each(stack, 10), "10 tasks on 10 instances")

    for arn in await stack.instances():
        await stack.call(
            "deregister_container_instance",
            cluster=stack.cluster,
            containerInstance=arn,
            force=True,
        )

    async def none_left() -> bool:
        return not await stack.running()

    await until(none_left, "0 tasks on 0 instances")
    assert stack.controller.actions["started"] >= 12
    await until(status_is(stack, desired=0, current=0, misscheduled=0), "an empty status")


async def test_scenario_11_one_task_per_instance_as_the_cluster_grows_shrinks_and_loses_tasks(
    stack: Stack,
) -> None:
    await scenario_11(stack)


async def test_scenario_11_on_each_store_backend(backend_stack: Stack) -> None:
    await scenario_11(backend_stack)


# -- the additions ---------------------------------------------------------------------------


async def test_only_instances_meeting_the_constraints_run_the_daemon_as_their_attributes_change(
    stack: Stack,
) -> None:
    prod = await stack.add_instances(2, stack="prod")
    (dev,) = await stack.add_instances(1, stack="dev")
    await deploy(stack, constraints=(daemon.parse_constraint("attribute:stack == prod"),))
    await until(exactly_on(stack, prod), "tasks on the 2 prod instances only")
    await until(status_is(stack, desired=2, available=2, misscheduled=0), "desired 2")

    gained_at = now()
    await stack.call(
        "put_attributes",
        cluster=stack.cluster,
        attributes=[{"name": "stack", "value": "prod", "targetId": dev}],
    )
    await until(exactly_on(stack, [*prod, dev]), "a task on the instance that gained stack=prod")

    lost_at = now()
    await stack.call(
        "put_attributes",
        cluster=stack.cluster,
        attributes=[{"name": "stack", "value": "dev", "targetId": prod[0]}],
    )
    await until(exactly_on(stack, [prod[1], dev]), "no task on the instance that lost it")
    await until(status_is(stack, desired=2, available=2, misscheduled=0), "desired 2 again")

    history = await stack.history()
    assert Counter(t["containerInstanceArn"] for t in history) == Counter([*prod, dev])
    (started,) = on(history, dev)
    assert started["createdAt"] >= gained_at, "no task before the instance matched"
    (stopped,) = on(history, prod[0])
    assert stopped["stoppingAt"] >= lost_at
    assert stopped["stoppedReason"] == "blox: constraints-unmet"


async def test_a_draining_instance_gets_no_new_task_and_loses_the_daemon_last(
    stack: Stack,
) -> None:
    drained, other_instance = await stack.add_instances(2)
    await deploy(stack)
    await until(one_each(stack, 2), "2 tasks")
    await stack.call("register_task_definition", **definition("worker:1", family="worker"))
    started = await stack.call(
        "start_task", cluster=stack.cluster, taskDefinition="worker", containerInstances=[drained]
    )
    (worker,) = started["tasks"]
    await stack.call(
        "update_container_instances_state",
        cluster=stack.cluster,
        containerInstances=[drained],
        status="DRAINING",
    )
    await until(status_is(stack, desired=1, misscheduled=1), "the controller to see the drain")
    await stack.passes(3)
    (daemon_task,) = on(await stack.ours(), drained)
    assert daemon_task["lastStatus"] == "RUNNING", "kept while another task runs there"

    await stack.call("stop_task", cluster=stack.cluster, task=worker["taskArn"])
    await until(exactly_on(stack, [other_instance]), "the daemon task gone from the drained one")
    await until(status_is(stack, desired=1, available=1, misscheduled=0), "misscheduled 0")

    history = await stack.history()
    (stopped,) = on(history, drained)  # no new task was started on the draining instance
    (worker,) = (
        await stack.call("describe_tasks", cluster=stack.cluster, tasks=[worker["taskArn"]])
    )["tasks"]
    assert stopped["stoppedReason"] == "blox: instance-drained"
    assert stopped["stoppingAt"] >= worker["stoppedAt"], "the daemon goes last"
    assert len(on(history, other_instance)) == 1


async def test_a_disconnected_agent_is_waited_for_never_started_on_twice_and_its_task_kept(
    stack: Stack,
) -> None:
    lost, other = await stack.add_instances(2)
    first = await deploy(stack)
    await until(one_each(stack, 2), "2 tasks")
    await until(completed(stack, first), "the first deployment to complete")
    changed = await stack.sim_admin(
        "agents/disconnect", {"cluster": stack.cluster, "instances": [lost]}
    )
    assert changed == {"changed": 1}
    await until(
        status_is(stack, desired=2, available=1, reason="agent-disconnected"),
        "the controller to see the disconnected agent",
    )

    await stack.call("register_task_definition", **definition("nginx:2"))
    second = await roll(
        stack, "daemon:2", environments.RolloutChange(max_unavailable=daemon.Share(2))
    )

    async def other_updated() -> bool:
        return [t["taskDefinitionArn"][-2:] for t in on(await stack.ours(), other)] == [":2"]

    await until(other_updated, "the connected instance to run revision 2")
    await stack.passes(3)
    (kept,) = on(await stack.history(), lost)
    assert (kept["lastStatus"], kept["desiredStatus"], revision(kept)) == ("RUNNING", "RUNNING", 1)
    assert (await stack.deployment(second)).status.value == "running"
    assert stack.controller.actions["failed"] == 0, "no StartTask was tried on the lost agent"

    await stack.sim_admin("agents/reconnect", {"cluster": stack.cluster, "instances": [lost]})
    await until(completed(stack, second), "the rollout to complete once the agent is back")
    await until(exactly_on(stack, [lost, other]), "one task on each instance")
    old, new = on(await stack.history(), lost)
    assert (revision(old), revision(new)) == (1, 2)
    assert old["stoppedReason"] == "blox: outdated" and new["lastStatus"] == "RUNNING"
    await until(
        status_is(stack, desired=2, available=2, updated=2, current_revision=2, reason=None),
        "a settled status",
    )


async def test_max_surge_starts_the_new_task_next_to_the_old_one_and_never_runs_fewer(
    stack: Stack,
) -> None:
    instances = await stack.add_instances(3)
    await deploy(stack)
    await until(one_each(stack, 3), "3 tasks of revision 1")
    await stack.call("register_task_definition", **definition("nginx:2"))
    rollout = environments.RolloutChange(max_surge=daemon.Share(1), max_unavailable=daemon.Share(0))
    since = now()
    deployment_id = await roll(stack, "daemon:2", rollout)
    await until(completed(stack, deployment_id), "the surge rollout to complete")
    await until(exactly_on(stack, instances), "one task on each instance")

    history = await stack.history()
    counts = [serving(history, at) for at in moments(history, since)]
    assert min(counts) >= 3, "maxUnavailable 0: never fewer running tasks than instances"
    assert max(counts) <= 4, "maxSurge 1: at most one extra task at a time"
    for instance in instances:
        old, new = on(history, instance)
        assert (revision(old), revision(new)) == (1, 2)
        assert new["startedAt"] <= old["stoppingAt"], "the new task runs before the old stops"
        assert old["stoppedReason"] == "blox: replaced"


async def test_min_ready_seconds_holds_the_next_wave_until_the_new_tasks_ran_that_long() -> None:
    # No resync to lean on: the controller must wake by itself when a task turns available.
    async with running_stack(
        "memory://", "memory://", cluster="prod", name="web", resync_s=600.0
    ) as stack:
        instances = await stack.add_instances(2)
        await deploy(stack)
        await until(one_each(stack, 2), "2 tasks of revision 1")
        await stack.call("register_task_definition", **definition("nginx:2"))
        min_ready = timedelta(seconds=1.5)
        deployment_id = await roll(
            stack, "daemon:2", environments.RolloutChange(min_ready_s=min_ready.total_seconds())
        )
        await until(completed(stack, deployment_id), "the rollout to complete")
        history = await stack.history()
        finished = (await stack.deployment(deployment_id)).finished_at
    waves = sorted((on(history, i) for i in instances), key=lambda pair: pair[0]["stoppingAt"])
    (first_old, first_new), (second_old, second_new) = waves
    assert {revision(first_old), revision(second_old)} == {1}
    assert {revision(first_new), revision(second_new)} == {2}
    # ECS timestamps have millisecond precision, rounded on one path and cut on the other.
    tick = timedelta(milliseconds=1)
    assert second_old["stoppingAt"] >= millis(first_new["startedAt"]) + min_ready - tick
    assert finished is not None and finished >= millis(second_new["startedAt"]) + min_ready - tick


async def test_a_revision_that_cannot_start_fails_at_its_deadline_and_rolls_back_by_itself(
    stack: Stack,
) -> None:
    instances = await stack.add_instances(2)
    await deploy(stack)
    await until(one_each(stack, 2), "2 tasks of revision 1")
    too_big = definition("nginx:2", memory=2 * INSTANCE_MEMORY)
    await stack.call("register_task_definition", **too_big)
    rollout = environments.RolloutChange(progress_deadline_s=3.0, auto_rollback=True)
    failing = await roll(stack, "daemon:2", rollout)
    reasons: dict[int | None, set[str | None]] = {2: set(), 3: set()}

    def watch_status(done: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            status = await stack.status()
            if status is not None and status.target_revision in reasons:
                reasons[status.target_revision].add(status.reason)
            return await done()

        return check

    async def rolled_back() -> bool:
        return (await stack.deployment(failing)).status.value == "rolled_back"

    await until(watch_status(rolled_back), "the failing deployment to be rolled back")
    assert "backing-off" in reasons[2], "the status said why the rollout did not move"
    failed = await stack.deployment(failing)
    assert failed.reason is not None, failed
    note, _, cause = failed.reason.partition(": ")
    assert note == "rolled back to revision 1 as revision 3", failed
    assert cause.startswith("StartTask failed: RESOURCE:"), failed  # why it was rolled back
    view = await environments.get_environment(stack.store, stack.name)
    assert (view.environment.revision.number, view.environment.revision.rolled_back_from) == (3, 2)
    assert view.target is not None and view.target.task_definition.endswith("daemon:1")
    newest = (await environments.list_deployments(stack.store, stack.name))[0]
    assert (newest.revision, newest.reason) == (3, "rollback to revision 1")
    await until(watch_status(completed(stack, newest.id)), "the rollback deployment to complete")
    assert "backing-off" not in reasons[3], "daemon:2's refusals do not hold daemon:1 back"
    await until(exactly_on(stack, instances), "one task on each instance again")
    history = await stack.history()
    assert all(t["taskDefinitionArn"].endswith("daemon:1") for t in history), "daemon:2 never ran"
    assert stack.controller.actions["failed"] >= 1, "ECS refused daemon:2 (RESOURCE:MEMORY)"
    # maxUnavailable 1: only the instance whose old task went first was refused
    cause = "rolled back: StartTask failed: RESOURCE:MEMORY on 1 instance"
    await until(
        status_is(stack, desired=2, available=2, updated=2, target_revision=3, reason=cause),
        "a settled status on revision 3 that says why it was rolled back",
    )
    await stack.passes(2)
    status = await stack.status()
    assert status is not None and status.reason == cause, "kept while revision 3 is the target"
    written = status.observed_at
    assert written is not None
    await stack.fail_over()
    await stack.passes(2)
    status = await stack.status()
    assert status is not None and status.observed_at is not None and status.observed_at > written
    assert status.reason == cause, "a new leader takes the words up from the stored status"
    await roll(stack, "daemon:1", environments.RolloutChange(max_unavailable=daemon.Share(2)))
    await until(
        status_is(stack, available=2, target_revision=4, reason=None),
        "the next deployment to leave the rollback behind",
    )


async def test_without_auto_rollback_a_deployment_past_its_deadline_fails_and_says_where(
    stack: Stack,
) -> None:
    instances = await stack.add_instances(2)
    await deploy(stack)
    await until(one_each(stack, 2), "2 tasks of revision 1")
    too_big = definition("nginx:2", memory=2 * INSTANCE_MEMORY)
    await stack.call("register_task_definition", **too_big)
    failing = await roll(stack, "daemon:2", environments.RolloutChange(progress_deadline_s=1.0))

    async def failed() -> bool:
        return (await stack.deployment(failing)).status.value == "failed"

    await until(failed, "the deployment to fail at its progress deadline")
    found = await stack.deployment(failing)
    assert found.reason == "backing-off"
    assert len(found.failed_instances) == 1 and found.failed_instances[0] in instances
    view = await environments.get_environment(stack.store, stack.name)
    assert view.environment.health == "unhealthy" and view.environment.revision.number == 2
    assert view.status is not None and view.status.unavailable >= 1
    (kept,) = [i for i in instances if i not in found.failed_instances]
    assert [revision(t) for t in on(await stack.ours(), kept)] == [1], "maxUnavailable 1 held"


async def test_a_paused_rollout_stops_replacing_and_a_resumed_one_finishes(stack: Stack) -> None:
    instances = await stack.add_instances(4)
    await deploy(stack)
    await until(one_each(stack, 4), "4 tasks of revision 1")
    await stack.call("register_task_definition", **definition("nginx:2"))
    deployment_id = await roll(stack, "daemon:2", environments.RolloutChange(min_ready_s=1.0))

    async def some_updated() -> bool:
        return any(revision(t) == 2 for t in await stack.ours())

    await until(some_updated, "the rollout to begin")
    await environments.set_paused(stack.store, stack.name, paused=True, now=now())
    await until(status_is(stack, reason="paused"), "the controller to see the pause")
    kept = {t["taskArn"] for t in await stack.ours() if revision(t) == 1}
    assert kept, "paused before the rollout ended"
    paused_at = asyncio.get_running_loop().time()
    await stack.passes(5)

    async def past_min_ready() -> bool:  # every new task could have turned available
        return asyncio.get_running_loop().time() - paused_at > 1.5

    await until(past_min_ready, "minReadySeconds to pass")
    await stack.passes(2)
    assert {t["taskArn"] for t in await stack.ours() if revision(t) == 1} == kept
    assert (await stack.deployment(deployment_id)).status.value == "running"

    await environments.set_paused(stack.store, stack.name, paused=False, now=now())
    await until(completed(stack, deployment_id), "the resumed rollout to complete")
    await until(exactly_on(stack, instances), "one task on each instance")
    assert all(revision(t) == 2 for t in await stack.ours())


async def test_a_rolling_update_keeps_within_max_unavailable_and_one_task_per_instance(
    stack: Stack,
) -> None:
    await stack.add_instances(4)
    await deploy(stack)
    await until(one_each(stack, 4), "4 tasks of revision 1")
    await stack.call("register_task_definition", **definition("nginx:2"))
    deployment_id = await roll(
        stack, "daemon:2", environments.RolloutChange(max_unavailable=daemon.Share(1))
    )
    worst_unavailable = worst_per_instance = 0
    while True:
        live = [t for t in await stack.ours() if t["lastStatus"] != "STOPPED"]
        per_instance = Counter(t["containerInstanceArn"] for t in live)
        running = {t["containerInstanceArn"] for t in live if t["lastStatus"] == "RUNNING"}
        worst_per_instance = max(worst_per_instance, *per_instance.values(), 0)
        worst_unavailable = max(worst_unavailable, 4 - len(running))
        new = [t for t in live if revision(t) == 2 and t["lastStatus"] == "RUNNING"]
        if len(new) == 4 and len(live) == 4 and await completed(stack, deployment_id)():
            break
        await asyncio.sleep(0.05)
    assert worst_per_instance == 1, "maxSurge 0: never two tasks of one environment on one instance"
    assert worst_unavailable <= 1, "maxUnavailable 1"
    history = await stack.history()
    counts = [serving(history, at) for at in moments(history, history[0]["createdAt"])]
    assert min(counts[1:]) >= 3, "ECS's own timestamps agree: at most 1 of 4 down at a time"


async def test_deleting_an_environment_stops_its_tasks_and_then_forgets_it(stack: Stack) -> None:
    await stack.add_instances(3)
    await deploy(stack)
    await until(one_each(stack, 3), "3 tasks")
    await environments.delete_environment(stack.store, stack.name, now=now())

    async def gone() -> bool:
        live = await stack.ours()
        return not live and await environments.desired(stack.store, stack.name) is None

    await until(gone, "the tasks stopped and the record forgotten")
    assert all(t["stoppedReason"] == "blox: environment-deleted" for t in await stack.history())
