"""Deployments as store transactions: v0.3's token checks in its order, listing newest first,
the controller's status changes, and the compare-and-swap loop, on memory and SQLite."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from blox.clock import ManualClock
from blox.contract import texts
from blox.model.daemon import DeploymentStatus
from blox.scheduler import deployments, environments, records
from blox.scheduler.errors import (
    Contended,
    DeploymentExists,
    DeploymentInProgress,
    DeploymentNotFound,
    EnvironmentNotFound,
    TokenOutdated,
    TransitionInvalid,
)
from blox.store import Compare, Op, Store, errors, keys
from tests.unit.scheduler.test_environments import Catalog, catalog, make, store

__all__ = ["catalog", "store"]  # fixtures shared with test_environments

S = DeploymentStatus


async def deploy_current(store: Store, clock: ManualClock, name: str = "daemon") -> str:
    view = await environments.get_environment(store, name)
    token = view.environment.revision.deployment_token
    return (await environments.create_deployment(store, name, token=token, now=clock.now())).id


async def test_a_deployment_of_the_current_token_is_pending_active_and_targets_the_revision(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    created = await make(store, catalog, clock)
    token = created.revision.deployment_token
    deployment = await environments.create_deployment(store, "daemon", token=token, now=clock.now())
    assert deployment.status is S.PENDING and deployment.token == token
    assert (deployment.revision, deployment.task_definition) == (
        1,
        created.revision.task_definition,
    )
    assert deployment.environment_name == "daemon" and deployment.failed_instances == ()
    assert (
        await environments.get_deployment(store, "daemon", deployment_id=deployment.id)
        == deployment
    )
    view = await environments.get_environment(store, "daemon")
    assert view.environment.active_deployment == deployment.id
    assert view.target == created.revision


async def test_token_checks_come_in_the_v03_order_with_its_texts(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    created = await make(store, catalog, clock)
    token = created.revision.deployment_token
    wrong = "00000000-0000-4000-8000-000000000000"
    first = await environments.create_deployment(store, "daemon", token=token, now=clock.now())
    # Outdated first, even with a deployment in progress.
    with pytest.raises(TokenOutdated) as outdated:
        await environments.create_deployment(store, "daemon", token=wrong, now=clock.now())
    assert str(outdated.value) == (
        f"Token '{wrong}' is outdated and does not match the environment token '{token}'"
    )
    # The same token again: "already exists" before "in progress".
    with pytest.raises(DeploymentExists) as used:
        await environments.create_deployment(store, "daemon", token=token, now=clock.now())
    assert str(used.value) == f"Deployment with token '{token}' already exists"
    # A new revision's token while the first still runs: "in progress".
    updated = await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:2", now=clock.now()
    )
    new_token = updated.revision.deployment_token
    with pytest.raises(DeploymentInProgress) as busy:
        await environments.create_deployment(store, "daemon", token=new_token, now=clock.now())
    assert str(busy.value) == texts.DEPLOYMENT_IN_PROGRESS.format(id=first.id)
    with pytest.raises(TokenOutdated):  # the old revision's token is outdated now
        await environments.create_deployment(store, "daemon", token=token, now=clock.now())
    await environments.set_deployment_status(
        store, "daemon", deployment_id=first.id, status=S.COMPLETED, now=clock.now()
    )
    second = await environments.create_deployment(store, "daemon", token=new_token, now=clock.now())
    assert second.revision == 2
    with pytest.raises(EnvironmentNotFound, match="Environment ghost does not exist"):
        await environments.create_deployment(store, "ghost", token=token, now=clock.now())


async def test_deployments_are_listed_newest_first_and_unknown_ones_are_not_found(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    ids = []
    for n in range(2, 5):
        ids.append(await deploy_current(store, clock))
        await environments.set_deployment_status(
            store, "daemon", deployment_id=ids[-1], status=S.COMPLETED, now=clock.now()
        )
        await environments.update_environment(
            store, catalog, name="daemon", task_definition=f"web:{n}", now=clock.now()
        )
    listed = await environments.list_deployments(store, "daemon")
    assert [d.id for d in listed] == ids[::-1]
    assert [d.id for d in await environments.list_deployments(store, "daemon", limit=1)] == ids[-1:]
    with pytest.raises(DeploymentNotFound) as missing:
        await environments.get_deployment(store, "daemon", deployment_id="nope")
    assert str(missing.value) == "Deployment nope does not exist for environment daemon"
    with pytest.raises(EnvironmentNotFound):
        await environments.list_deployments(store, "ghost")
    with pytest.raises(EnvironmentNotFound):
        await environments.get_deployment(store, "ghost", deployment_id=ids[0])


async def test_old_deployments_fall_out_of_the_history(
    store: Store, catalog: Catalog, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deployments, "DEPLOYMENT_HISTORY", 2)
    await make(store, catalog, clock)
    ids = []
    for n in range(2, 6):
        ids.append(await deploy_current(store, clock))
        await environments.set_deployment_status(
            store, "daemon", deployment_id=ids[-1], status=S.FAILED, now=clock.now()
        )
        await environments.update_environment(
            store, catalog, name="daemon", task_definition=f"web:{n}", now=clock.now()
        )
    assert [d.id for d in await environments.list_deployments(store, "daemon")] == ids[:1:-1]
    page = await store.list(keys.deployments_of("daemon"))
    assert sorted(e.key for e in page.entries) == sorted(
        keys.deployment("daemon", i) for i in ids[2:]
    )


@pytest.mark.parametrize(
    ("path", "health"),
    [([S.RUNNING, S.COMPLETED], "healthy"), ([S.RUNNING, S.FAILED], "unhealthy")],
    ids=["completed", "failed"],
)
async def test_the_end_of_the_active_deployment_frees_the_environment_and_sets_its_health(
    store: Store,
    catalog: Catalog,
    clock: ManualClock,
    path: Sequence[DeploymentStatus],
    health: str,
) -> None:
    await make(store, catalog, clock)
    deployment_id = await deploy_current(store, clock)
    for status in path:
        await clock.advance(1)
        moved = await environments.set_deployment_status(
            store,
            "daemon",
            deployment_id=deployment_id,
            status=status,
            now=clock.now(),
            reason=status.value,
        )
        assert (moved.status, moved.reason, moved.updated_at) == (status, status.value, clock.now())
    assert moved.finished_at == clock.now()
    environment = (await environments.get_environment(store, "daemon")).environment
    assert environment.active_deployment is None and environment.health == health


async def test_status_changes_are_idempotent_and_final_statuses_never_move(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    deployment_id = await deploy_current(store, clock)
    running = await environments.set_deployment_status(
        store,
        "daemon",
        deployment_id=deployment_id,
        status=S.RUNNING,
        now=clock.now(),
        failed_instances=["ci-1"],
    )
    before = await store.revision()
    again = await environments.set_deployment_status(
        store,
        "daemon",
        deployment_id=deployment_id,
        status=S.RUNNING,
        now=clock.now(),
        failed_instances=["ci-1"],
    )
    assert again == running and await store.revision() == before
    more = await environments.set_deployment_status(
        store,
        "daemon",
        deployment_id=deployment_id,
        status=S.RUNNING,
        now=clock.now(),
        failed_instances=["ci-1", "c2"],
    )
    assert more.failed_instances == ("ci-1", "c2") and await store.revision() == before + 1
    done = await environments.set_deployment_status(
        store, "daemon", deployment_id=deployment_id, status=S.COMPLETED, now=clock.now()
    )
    same = await environments.set_deployment_status(
        store,
        "daemon",
        deployment_id=deployment_id,
        status=S.COMPLETED,
        now=clock.now(),
        reason="late",
    )
    assert same == done
    with pytest.raises(TransitionInvalid, match="is completed; it cannot become running"):
        await environments.set_deployment_status(
            store, "daemon", deployment_id=deployment_id, status=S.RUNNING, now=clock.now()
        )
    with pytest.raises(DeploymentNotFound):
        await environments.set_deployment_status(
            store, "daemon", deployment_id="nope", status=S.RUNNING, now=clock.now()
        )


async def test_an_automatic_rollback_marks_the_failed_deployment_rolled_back(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    first = await deploy_current(store, clock)
    await environments.set_deployment_status(
        store, "daemon", deployment_id=first, status=S.COMPLETED, now=clock.now()
    )
    await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:2", now=clock.now()
    )
    bad = await deploy_current(store, clock)
    await environments.set_deployment_status(
        store, "daemon", deployment_id=bad, status=S.FAILED, now=clock.now()
    )
    rollback = await environments.rollback(store, "daemon", now=clock.now(), failed_deployment=bad)
    failed = await environments.get_deployment(store, "daemon", deployment_id=bad)
    assert failed.status is S.ROLLED_BACK and "as revision 3" in (failed.reason or "")
    assert rollback.status is S.PENDING and rollback.revision == 3
    state = await environments.desired(store, "daemon")
    assert state is not None and state.deployment == rollback
    listed = [d.id for d in await environments.list_deployments(store, "daemon")]
    assert listed == [rollback.id, bad, first]


class LosingStore:
    """A store whose every transaction loses its compare, as under a storm of racing writers."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.attempts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        self.attempts += 1
        raise errors.CompareFailed([c.key for c in compares])


async def test_every_compare_lost_ends_in_a_temporary_contended_error(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    losing = LosingStore(store)
    with pytest.raises(Contended) as caught:
        await environments.set_paused(losing, "daemon", paused=True, now=clock.now())  # type: ignore[arg-type]
    assert losing.attempts == records.MAX_ATTEMPTS and caught.value.delay_s is not None
    assert not (await environments.get_environment(store, "daemon")).environment.paused
