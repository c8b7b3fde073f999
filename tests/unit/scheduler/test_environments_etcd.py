"""Racing writers on a real etcd server: compare-and-swap lets exactly one of them win.

Each writer has its own client (connection), as two scheduler replicas would. The etcd server
is the session's; names carry a random suffix so that tests never see each other's records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from blox.clock import ManualClock
from blox.model.daemon import Deployment, DeploymentStatus
from blox.scheduler import environments
from blox.scheduler.errors import DeploymentExists, DeploymentInProgress, EnvironmentExists
from blox.store import Store, open_store
from blox.testing.etcd import EtcdServer
from tests.unit.scheduler.test_environments import Catalog

pytestmark = pytest.mark.etcd

WRITERS = 6


@pytest.fixture
async def clients(etcd_server: EtcdServer) -> AsyncIterator[list[Store]]:
    opened = [await open_store(etcd_server.url) for _ in range(WRITERS)]
    yield opened
    for store in opened:
        await store.close()


@pytest.fixture
def name() -> str:
    return f"race-{uuid.uuid4().hex[:12]}"


async def test_of_concurrent_creates_of_one_name_exactly_one_wins(
    clients: list[Store], name: str, clock: ManualClock
) -> None:
    async def create(store: Store, n: int) -> str:
        environment = await environments.create_environment(
            store, Catalog(), name=name, cluster="prod", task_definition=f"web:{n}", now=clock.now()
        )
        return environment.revision.task_definition

    results = await asyncio.gather(
        *(create(store, n % 5 + 1) for n, store in enumerate(clients)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, str)]
    assert len(won) == 1, results
    assert all(isinstance(r, EnvironmentExists) for r in results if not isinstance(r, str))
    stored = await environments.get_environment(clients[0], name)
    assert stored.environment.revision.task_definition == won[0]
    await environments.delete_environment(clients[0], name, force=True, now=clock.now())


async def test_of_concurrent_deployments_exactly_one_is_made(
    clients: list[Store], name: str, clock: ManualClock
) -> None:
    created = await environments.create_environment(
        clients[0], Catalog(), name=name, cluster="prod", task_definition="web:1", now=clock.now()
    )
    token = created.revision.deployment_token
    results = await asyncio.gather(
        *(environments.create_deployment(s, name, token=token, now=clock.now()) for s in clients),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, Deployment)]
    assert len(made) == 1, results
    lost = [r for r in results if not isinstance(r, Deployment)]
    assert all(isinstance(r, DeploymentExists | DeploymentInProgress) for r in lost), lost
    assert [d.id for d in await environments.list_deployments(clients[1], name)] == [made[0].id]
    await environments.delete_environment(clients[0], name, force=True, now=clock.now())


async def test_concurrent_updates_each_get_a_revision_of_their_own(
    clients: list[Store], name: str, clock: ManualClock
) -> None:
    await environments.create_environment(
        clients[0], Catalog(), name=name, cluster="prod", task_definition="web:1", now=clock.now()
    )
    catalog = Catalog()
    catalog.definitions.update({f"web:{n}": "ACTIVE" for n in range(2, WRITERS + 2)})
    results = await asyncio.gather(
        *(
            environments.update_environment(
                store, catalog, name=name, history_limit=n + 1, task_definition=f"web:{n + 2}",
                now=clock.now(),
            )
            for n, store in enumerate(clients)
        )
    )  # fmt: skip
    numbers = sorted(e.revision.number for e in results)
    # Every update read a different current revision: none was lost, none applied twice.
    assert numbers == list(range(2, WRITERS + 2))
    current = (await environments.get_environment(clients[0], name)).environment
    assert current.revision.number == numbers[-1]
    await environments.delete_environment(clients[0], name, force=True, now=clock.now())
    assert await environments.desired(clients[0], name) is None


async def test_status_written_while_the_api_updates_is_never_lost_or_left_behind(
    clients: list[Store], name: str, clock: ManualClock
) -> None:
    created = await environments.create_environment(
        clients[0], Catalog(), name=name, cluster="prod", task_definition="web:1", now=clock.now()
    )
    deployment = await environments.create_deployment(
        clients[0], name, token=created.revision.deployment_token, now=clock.now()
    )
    status = environments.Status(desired=2, current=1)
    await asyncio.gather(
        environments.write_status(clients[1], name, status=status),
        environments.set_paused(clients[2], name, paused=True, now=clock.now()),
        environments.set_deployment_status(
            clients[3],
            name,
            deployment_id=deployment.id,
            status=DeploymentStatus.RUNNING,
            now=clock.now(),
        ),
    )
    view = await environments.get_environment(clients[4], name)
    assert view.status == status and view.environment.paused
    assert view.environment.active_deployment == deployment.id
    await environments.delete_environment(clients[0], name, force=True, now=clock.now())
