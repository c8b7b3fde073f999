"""The daemon scheduler's controller against the simulator and a CSS, all over real HTTP.

The simulator runs on the system clock with short lifecycle delays; its events feed a CSS store
through the real processor; the CSS API is served by uvicorn; the controller reads the CSS with
`blox.client` (list + watch) and acts on the simulator with `blox.ecs`. Acceptance scenario 11
and the additions (rolling update, deletion) are checked against the simulator's own truth.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import uvicorn

from blox.client.css import AsyncCssClient
from blox.clock import SystemClock
from blox.css.api.app import create_app
from blox.css.processor import Processor
from blox.ecs import EcsClient, RetryPolicy
from blox.model import daemon
from blox.scheduler import environments
from blox.scheduler.catalog import EcsClientCatalog
from blox.scheduler.control.controller import Controller
from blox.scheduler.control.informer import Informer
from blox.sim.events import EnvelopeFactory, envelope_json
from blox.sim.server import BackgroundServer
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig
from blox.store import Store, open_store
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base_s=0.02, cap_s=0.5, max_attempts=30, deadline_s=30.0)
RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 16384},
]


def definition(image: str) -> dict[str, Any]:
    return {
        "family": "daemon",
        "containerDefinitions": [{"name": "main", "image": image, "cpu": 64, "memory": 128}],
    }


@dataclass
class Stack:
    """The simulator (and a boto3 client on it), the controller, and the scheduler's store."""

    sim: BackgroundServer
    ecs: Any  # boto3's ECS client on the simulator, called in worker threads
    store: Store
    controller: Controller
    catalog: EcsClientCatalog

    async def add_instances(self, count: int) -> None:
        for _ in range(count):
            await asyncio.to_thread(
                self.ecs.register_container_instance, cluster="prod", totalResources=RESOURCES
            )

    async def instances(self) -> list[str]:
        page = await asyncio.to_thread(self.ecs.list_container_instances, cluster="prod")
        return list(page["containerInstanceArns"])

    async def tasks(self) -> list[dict[str, Any]]:
        arns = (await asyncio.to_thread(self.ecs.list_tasks, cluster="prod"))["taskArns"]
        if not arns:
            return []
        described = await asyncio.to_thread(self.ecs.describe_tasks, cluster="prod", tasks=arns)
        return list(described["tasks"])

    async def running(self) -> Counter[str]:
        """Container instance → number of RUNNING tasks of environment `web`."""
        return Counter(
            t["containerInstanceArn"]
            for t in await self.tasks()
            if t.get("group", "").startswith("blox:web:") and t["lastStatus"] == "RUNNING"
        )


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    timing = LifecycleTiming(pending_s=(0.1, 0.3), stopping_s=(0.1, 0.2))
    state = EcsState(clock=SystemClock(), config=SimConfig(seed=5, timing=timing))
    css_store = await open_store("memory://", clock=SystemClock())
    store = await open_store("memory://", clock=SystemClock())
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
    with BackgroundServer(state, port=free_port()) as sim:
        boto = boto3.session.Session().client(
            "ecs",
            endpoint_url=sim.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        boto.create_cluster(clusterName="prod")
        boto.register_task_definition(**definition("nginx:1"))
        ecs = EcsClient.create(
            region="us-east-1", endpoint_url=sim.url, clock=SystemClock(), policy=FAST
        )

        async def serving_api() -> bool:
            return bool(server.started)

        await until(serving_api, "the CSS API")
        css = AsyncCssClient(f"http://127.0.0.1:{port}")
        informer = Informer(css, clock=SystemClock())
        controller = Controller(store, informer, ecs, clock=SystemClock(), resync_s=0.3)
        running = [asyncio.create_task(informer.run()), asyncio.create_task(controller.run())]
        try:
            yield Stack(sim, boto, store, controller, EcsClientCatalog(ecs))
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await css.aclose()
            ecs.close()
            boto.close()
            server.should_exit = True
            await serving
            await asyncio.gather(*applying, return_exceptions=True)
            await store.close()
            await css_store.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def deploy(stack: Stack) -> str:
    """Create environment `web` on cluster `prod` and deploy it; the deployment id."""
    env = await environments.create_environment(
        stack.store,
        stack.catalog,
        name="web",
        cluster="prod",
        task_definition="daemon",
        now=SystemClock().now(),
    )
    deployment = await environments.create_deployment(
        stack.store, "web", token=env.revision.deployment_token, now=SystemClock().now()
    )
    return deployment.id


def one_each(stack: Stack, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        running = await stack.running()
        return len(running) == count and all(n == 1 for n in running.values())

    return check


async def test_scenario_11_one_task_per_instance_as_the_cluster_grows_shrinks_and_loses_tasks(
    stack: Stack,
) -> None:
    await stack.add_instances(1)
    deployment_id = await deploy(stack)
    await until(one_each(stack, 1), "1 task on 1 instance")

    async def completed() -> bool:
        found = await environments.get_deployment(stack.store, "web", deployment_id=deployment_id)
        return found.status.value == "completed"

    await until(completed, "the deployment to complete")

    await stack.add_instances(1)
    await until(one_each(stack, 2), "2 tasks on 2 instances")

    for task in await stack.tasks():
        await asyncio.to_thread(stack.ecs.stop_task, cluster="prod", task=task["taskArn"])
    await until(one_each(stack, 2), "2 tasks again after every task was stopped by hand")

    await stack.add_instances(8)
    await until(one_each(stack, 10), "10 tasks on 10 instances")

    for arn in await stack.instances():
        await asyncio.to_thread(
            stack.ecs.deregister_container_instance,
            cluster="prod",
            containerInstance=arn,
            force=True,
        )

    async def none_left() -> bool:
        return not await stack.running()

    await until(none_left, "0 tasks on 0 instances")
    assert stack.controller.actions["started"] >= 12


async def test_a_rolling_update_keeps_within_max_unavailable_and_one_task_per_instance(
    stack: Stack,
) -> None:
    await stack.add_instances(4)
    await deploy(stack)
    await until(one_each(stack, 4), "4 tasks of revision 1")
    await asyncio.to_thread(stack.ecs.register_task_definition, **definition("nginx:2"))
    updated = await environments.update_environment(
        stack.store,
        stack.catalog,
        name="web",
        task_definition="daemon:2",
        rollout=environments.RolloutChange(max_unavailable=daemon.Share(1)),
        now=SystemClock().now(),
    )
    deployment = await environments.create_deployment(
        stack.store, "web", token=updated.revision.deployment_token, now=SystemClock().now()
    )
    worst_unavailable = worst_per_instance = 0
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        live = [
            t
            for t in await stack.tasks()
            if t.get("group", "").startswith("blox:web:") and t["lastStatus"] != "STOPPED"
        ]
        per_instance = Counter(t["containerInstanceArn"] for t in live)
        running = {t["containerInstanceArn"] for t in live if t["lastStatus"] == "RUNNING"}
        worst_per_instance = max(worst_per_instance, *per_instance.values(), 0)
        worst_unavailable = max(worst_unavailable, 4 - len(running))
        new = [
            t
            for t in live
            if t["taskDefinitionArn"].endswith(":2") and t["lastStatus"] == "RUNNING"
        ]
        found = await environments.get_deployment(stack.store, "web", deployment_id=deployment.id)
        if len(new) == 4 and len(live) == 4 and found.status.value == "completed":
            break
        assert asyncio.get_running_loop().time() < deadline, (found, len(new), len(live))
        await asyncio.sleep(0.05)
    assert worst_per_instance == 1, "maxSurge 0: never two tasks of one environment on one instance"
    assert worst_unavailable <= 1, "maxUnavailable 1"


async def test_deleting_an_environment_stops_its_tasks_and_then_forgets_it(stack: Stack) -> None:
    await stack.add_instances(3)
    await deploy(stack)
    await until(one_each(stack, 3), "3 tasks")
    await environments.delete_environment(stack.store, "web", now=SystemClock().now())

    async def gone() -> bool:
        live = [
            t
            for t in await stack.tasks()
            if t.get("group", "").startswith("blox:web:") and t["lastStatus"] != "STOPPED"
        ]
        return not live and await environments.desired(stack.store, "web") is None

    await until(gone, "the tasks stopped and the record forgotten")
