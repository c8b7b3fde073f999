"""blox.client's scheduler clients against the real scheduler API over HTTP: every method of
`SchedulerClient` and `AsyncSchedulerClient`, the models they return, and the error tree.

Uses test_scheduler_api's servers (the simulator, and the API under uvicorn on SQLite). Each
story runs once per client, written once: `done` awaits what the async client returns.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest

from blox.client import (
    AsyncSchedulerClient,
    Backoff,
    ConnectFailed,
    HttpConflict,
    HttpError,
    HttpInvalid,
    HttpNotFound,
    SchedulerClient,
)
from blox.contract import scheduler, texts
from blox.contract.scheduler import EnvironmentCreate, EnvironmentUpdate, InstanceGroupCreate
from blox.testing.ports import free_port
from tests.integration.test_scheduler_api import ARN, Served
from tests.integration.test_scheduler_api import served as served  # fixtures of that module
from tests.integration.test_scheduler_api import sim as sim

pytestmark = pytest.mark.integration

T = TypeVar("T")
Client = SchedulerClient | AsyncSchedulerClient
WEB = f"{ARN}:task-definition/web"
ALPHA = f"{ARN}:cluster/alpha"
FAST = Backoff(base_s=0.01, cap_s=0.05, max_attempts=3)


async def done(result: T | Awaitable[T]) -> T:
    """The result of a blocking call, or of an async one once awaited."""
    if inspect.isawaitable(result):
        return await result
    return result


@pytest.fixture(params=["blocking", "async"])
async def client(request: pytest.FixtureRequest, served: Served) -> AsyncIterator[Client]:
    """Each client of the scheduler API in turn, on the module's server."""
    if request.param == "blocking":
        with SchedulerClient(served.url, backoff=FAST) as blocking:
            yield blocking
    else:
        async with AsyncSchedulerClient(served.url, backoff=FAST) as aclient:
            yield aclient


def name_for(client: Client, story: str) -> str:
    return f"{story}-{'a' if isinstance(client, AsyncSchedulerClient) else 'b'}"


def creation(
    name: str, cluster: str = "alpha", task_definition: str = "web:1"
) -> EnvironmentCreate:
    return EnvironmentCreate(
        name=name,
        instance_group=InstanceGroupCreate(cluster=cluster),
        task_definition=task_definition,
    )


async def test_an_environment_lives_its_life_through_every_method(client: Client) -> None:
    name = name_for(client, "life")
    await done(client.ping())  # raises unless the server answers 200
    created = await done(client.create_environment(creation(name)))
    assert isinstance(created, scheduler.EnvironmentPublic)
    assert (created.name, created.instance_group.cluster) == (name, ALPHA)
    assert (created.task_definition, created.revision, created.health) == (f"{WEB}:1", 1, "healthy")
    assert await done(client.environment(name)) == created
    assert name in [e.name for e in await done(client.environments())]
    assert name in [e.name for e in await done(client.environments(cluster=ALPHA))]
    assert name not in [e.name for e in await done(client.environments(cluster="gamma"))]

    first = await done(client.deploy(name, created.deployment_token))
    assert isinstance(first, scheduler.DeploymentPublic)
    assert (first.environment_name, first.status, first.revision) == (name, "pending", 1)
    assert first.task_definition == f"{WEB}:1"
    assert await done(client.deployments(name)) == [first]
    assert await done(client.deployment(name, first.id)) == first

    change = EnvironmentUpdate(task_definition="web:2")
    updated = await done(client.update_environment(name, change))
    assert (updated.revision, updated.target_revision) == (2, 1)
    assert updated.task_definition == f"{WEB}:2"
    assert updated.deployment_token != created.deployment_token

    paused = await done(client.pause(name))
    assert paused.paused is True and (await done(client.environment(name))).paused is True
    assert (await done(client.resume(name))).paused is False

    revisions = await done(client.revisions(name))
    assert [(r.revision, r.task_definition) for r in revisions] == [
        (2, f"{WEB}:2"),
        (1, f"{WEB}:1"),
    ]
    assert await done(client.revision(name, 1)) == revisions[1]

    back = await done(client.rollback(name))
    assert (back.revision, back.task_definition, back.status) == (3, f"{WEB}:1", "pending")
    deployments = await done(client.deployments(name))
    assert [d.id for d in deployments] == [back.id, first.id]
    assert deployments[1].status == "superseded"
    again = await done(client.rollback(name, revision=2))
    assert (again.revision, again.task_definition) == (4, f"{WEB}:2")
    assert (await done(client.environment(name))).active_deployment == again.id

    await done(client.delete_environment(name))
    with pytest.raises(HttpNotFound) as gone:
        await done(client.environment(name))
    assert gone.value.text == texts.ENVIRONMENT_NOT_FOUND.format(name=name)
    await done(client.delete_environment(name, force=True))
    assert (await done(client.create_environment(creation(name)))).revision == 1


async def test_deployment_tokens_are_checked_with_the_servers_texts(client: Client) -> None:
    name = name_for(client, "tokens")
    created = await done(client.create_environment(creation(name)))
    token = created.deployment_token
    deployed = await done(client.deploy(name, token))
    with pytest.raises(HttpInvalid) as repeated:
        await done(client.deploy(name, token))
    assert repeated.value.text == texts.DEPLOYMENT_EXISTS.format(token=token)
    newer = await done(client.update_environment(name, EnvironmentUpdate(task_definition="web:2")))
    with pytest.raises(HttpInvalid) as outdated:
        await done(client.deploy(name, token))
    assert outdated.value.status == 400
    assert outdated.value.text == texts.TOKEN_OUTDATED.format(
        token=token, current=newer.deployment_token
    )
    with pytest.raises(HttpInvalid) as busy:
        await done(client.deploy(name, newer.deployment_token))
    assert busy.value.text == texts.DEPLOYMENT_IN_PROGRESS.format(id=deployed.id)
    with pytest.raises(HttpInvalid) as malformed:
        await done(client.deploy(name, "not-a-uuid"))
    assert malformed.value.text == texts.TOKEN_INVALID.format(token="not-a-uuid")


async def test_a_name_still_being_deleted_is_a_409_conflict(client: Client) -> None:
    name = name_for(client, "deleting")
    await done(client.create_environment(creation(name)))
    await done(client.delete_environment(name))  # its tasks stop first: the name stays taken
    with pytest.raises(HttpConflict) as conflict:
        await done(client.create_environment(creation(name)))
    assert conflict.value.status == 409
    assert conflict.value.text == texts.ENVIRONMENT_DELETING.format(name=name)
    assert str(conflict.value) == f"the server answered 409: {conflict.value.text}"


async def test_what_does_not_exist_is_a_404_with_the_servers_line(client: Client) -> None:
    name = name_for(client, "missing")
    await done(client.create_environment(creation(name)))
    with pytest.raises(HttpNotFound) as cluster:
        await done(client.create_environment(creation("nowhere", cluster="never")))
    assert cluster.value.text == texts.CLUSTER_NOT_FOUND.format(cluster="never")
    with pytest.raises(HttpNotFound) as deployment:
        await done(client.deployment(name, "nope"))
    assert deployment.value.text == texts.DEPLOYMENT_NOT_FOUND.format(id="nope", name=name)
    with pytest.raises(HttpNotFound) as revision:
        await done(client.revision(name, 9))
    assert revision.value.text == texts.REVISION_NOT_FOUND.format(revision=9, name=name)
    for call in (client.environment, client.deployments, client.revisions, client.pause):
        with pytest.raises(HttpNotFound) as environment:
            await done(call("absent"))
        assert environment.value.text == texts.ENVIRONMENT_NOT_FOUND.format(name="absent")
    with pytest.raises(HttpNotFound):  # a name is one path segment: never another route
        await done(client.environment("x/deployments"))


async def test_bad_input_is_a_400_with_the_servers_line(client: Client) -> None:
    name = name_for(client, "bad")
    await done(client.create_environment(creation(name)))
    with pytest.raises(HttpInvalid) as taken:
        await done(client.create_environment(creation(name)))
    assert taken.value.text == texts.ENVIRONMENT_EXISTS.format(name=name)
    unchecked = EnvironmentCreate.model_construct(
        name="has space",
        instance_group=InstanceGroupCreate(cluster="alpha"),
        task_definition="web:1",
    )
    with pytest.raises(HttpInvalid) as bad_name:
        await done(client.create_environment(unchecked))
    assert bad_name.value.text.startswith("Invalid request: name: String should match pattern")
    with pytest.raises(HttpInvalid) as bad_cluster:
        await done(client.environments(cluster="bad name"))
    assert bad_cluster.value.text == texts.INVALID_CLUSTER
    with pytest.raises(HttpInvalid) as nothing_earlier:
        await done(client.rollback(name))
    assert nothing_earlier.value.text == texts.NO_EARLIER_REVISION.format(name=name)
    with pytest.raises(HttpInvalid) as zero:
        await done(client.rollback(name, revision=0))
    assert zero.value.text.startswith("Invalid request: revision:")
    with pytest.raises(HttpInvalid) as nothing:
        await done(client.update_environment(name, EnvironmentUpdate()))
    assert nothing.value.text == texts.NOTHING_TO_UPDATE
    assert isinstance(nothing.value, HttpError) and nothing.value.status == 400


@pytest.mark.parametrize("kind", ["blocking", "async"])
async def test_a_create_where_nothing_listens_fails_as_not_sent(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    if kind == "blocking":
        with SchedulerClient(url, backoff=FAST) as blocking, pytest.raises(ConnectFailed) as err:
            blocking.create_environment(creation("x"))
    else:
        async with AsyncSchedulerClient(url, backoff=FAST) as aclient:
            with pytest.raises(ConnectFailed) as err:
                await aclient.create_environment(creation("x"))
    assert str(err.value).startswith("POST /v1/environments: could not connect")
