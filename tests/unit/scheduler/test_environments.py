"""Environments and revisions as store transactions, on the memory and the SQLite store.

The ECS catalog is `Catalog`, a dict-backed implementation of the `EcsCatalog` seam (the
simulator-backed one is tested over HTTP in tests/integration/test_scheduler_api.py).
Deployments: test_environments_deployments.py; races on a real etcd: test_environments_etcd.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from blox.clock import ManualClock
from blox.contract import texts
from blox.model.daemon import (
    DeploymentStatus,
    Environment,
    Revision,
    RolloutPolicy,
    Share,
    parse_constraint,
)
from blox.model.errors import DaemonInvalid
from blox.scheduler import environments, records
from blox.scheduler.environments import ClusterRef, RolloutChange
from blox.scheduler.errors import (
    ClusterInactive,
    ClusterNotFound,
    EnvironmentDeleting,
    EnvironmentExists,
    EnvironmentNotFound,
    RecordUnreadable,
    RequestInvalid,
    RevisionNotFound,
    TaskDefinitionInactive,
    TaskDefinitionNotFound,
)
from blox.store import Store, keys, open_store

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
OTHER = "arn:aws:ecs:eu-west-1:999999999999"
PROD, STAGE, PROD_ELSEWHERE = (
    f"{ACCOUNT}:cluster/prod",
    f"{ACCOUNT}:cluster/stage",
    f"{OTHER}:cluster/prod",
)
UUID_LENGTH = 36


class Catalog:
    """An `EcsCatalog` over dicts; counts the lookups, so tests see when ECS was not asked."""

    def __init__(self) -> None:
        self.clusters = {PROD: "ACTIVE", STAGE: "ACTIVE", PROD_ELSEWHERE: "ACTIVE"}
        self.definitions = {f"web:{n}": "ACTIVE" for n in range(1, 6)}
        self.lookups = 0

    def deregister(self, ref: str) -> None:
        self.definitions[ref] = "INACTIVE"

    async def cluster_arn(self, name_or_arn: str) -> str:
        self.lookups += 1
        if name_or_arn.startswith("arn:"):
            found = name_or_arn if name_or_arn in self.clusters else None
        else:
            found = next(
                (a for a in self.clusters if a == f"{ACCOUNT}:cluster/{name_or_arn}"), None
            )
        if found is None:
            raise ClusterNotFound(name_or_arn)
        if self.clusters[found] != "ACTIVE":
            raise ClusterInactive(name_or_arn)
        return found

    async def task_definition_arn(self, ref: str) -> str:
        self.lookups += 1
        family_revision = ref.rsplit("/", 1)[-1]
        if family_revision not in self.definitions:
            raise TaskDefinitionNotFound(ref)
        if self.definitions[family_revision] != "ACTIVE":
            raise TaskDefinitionInactive(ref)
        return td(family_revision)


def td(family_revision: str) -> str:
    return f"{ACCOUNT}:task-definition/{family_revision}"


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'scheduler.db'}"
    opened = await open_store(url, clock=ManualClock())
    yield opened
    await opened.close()


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


async def make(
    store: Store, catalog: Catalog, clock: ManualClock, name: str = "daemon", **extra: object
) -> Environment:
    arguments: dict[str, object] = {"cluster": "prod", "task_definition": "web:1", **extra}
    return await environments.create_environment(
        store,
        catalog,
        name=name,
        now=clock.now(),
        **arguments,  # type: ignore[arg-type]
    )


async def keys_of(store: Store, name: str) -> list[str]:
    """Every scheduler key that belongs to environment `name`."""
    found = []
    for prefix in (
        keys.environment(name),
        keys.revisions_of(name),
        keys.deployments_of(name),
        keys.deployment_orders_of(name),
        keys.scheduler_status(name),
    ):
        page = await store.list(prefix)
        found += [e.key for e in page.entries if e.key == prefix or prefix.endswith("|")]
    return found


# -- create, get, list ---------------------------------------------------------------------


async def test_create_stores_revision_1_with_the_arns_ecs_gave_and_a_fresh_token(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    created = await make(
        store, catalog, clock, constraints=(parse_constraint("attribute:a exists"),)
    )
    revision = created.revision
    assert (revision.number, revision.cluster_arn, revision.task_definition) == (
        1,
        PROD,
        td("web:1"),
    )
    assert len(revision.deployment_token) == UUID_LENGTH and revision.deployment_token.islower()
    assert created.history_limit == environments.DEFAULT_HISTORY_LIMIT and not created.paused
    view = await environments.get_environment(store, "daemon")
    assert view.environment == created and view.target is None and view.status is None
    assert await environments.list_revisions(store, "daemon") == [revision]
    other = await make(store, catalog, clock, name="second")
    assert other.revision.deployment_token != revision.deployment_token


async def test_a_second_create_of_one_name_fails_with_the_v03_text_and_changes_nothing(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    first = await make(store, catalog, clock)
    before = await store.revision()
    with pytest.raises(EnvironmentExists) as caught:
        await make(store, catalog, clock, task_definition="web:2")
    assert str(caught.value) == texts.ENVIRONMENT_EXISTS.format(name="daemon")
    assert str(caught.value) == (
        "Error saving environment daemon to store: An environment with name daemon already exists"
    )
    assert await store.revision() == before
    assert (await environments.get_environment(store, "daemon")).environment == first


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"cluster": "missing"}, ClusterNotFound),
        ({"cluster": "stage", "inactive_cluster": STAGE}, ClusterInactive),
        ({"task_definition": "nope:1"}, TaskDefinitionNotFound),
        ({"task_definition": "web:2", "deregister": "web:2"}, TaskDefinitionInactive),
    ],
    ids=["unknown cluster", "inactive cluster", "unknown task definition", "inactive one"],
)
async def test_create_on_what_ecs_does_not_have_active_is_not_found_and_stores_nothing(
    store: Store, catalog: Catalog, clock: ManualClock, change: dict[str, str], error: type
) -> None:
    change = dict(change)  # the parameter is shared by every store
    if "inactive_cluster" in change:
        catalog.clusters[change.pop("inactive_cluster")] = "INACTIVE"
    if "deregister" in change:
        catalog.deregister(change.pop("deregister"))
    before = await store.revision()
    with pytest.raises(error):
        await make(store, catalog, clock, **change)
    assert await store.revision() == before


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"name": ""}, DaemonInvalid, "environment name"),
        ({"name": "x" * 31}, DaemonInvalid, "environment name"),
        ({"cluster": "arn:aws:ecs:us-east-1:123456789012:task/prod/abc"}, RequestInvalid, None),
        ({"cluster": "no spaces"}, RequestInvalid, None),
        ({"rollout": RolloutChange(progress_deadline_s=0)}, DaemonInvalid, "progressDeadline"),
    ],
    ids=["blank name", "long name", "ARN of a task", "bad cluster name", "zero deadline"],
)
async def test_bad_input_is_refused_before_ecs_is_asked(
    store: Store,
    catalog: Catalog,
    clock: ManualClock,
    change: dict[str, Any],
    error: type,
    message: str | None,
) -> None:
    with pytest.raises(error, match=message or texts.INVALID_CLUSTER):
        await make(store, catalog, clock, **change)
    assert catalog.lookups == 0


async def test_list_filters_by_cluster_name_in_any_account_or_by_exact_arn(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock, name="a")
    await make(store, catalog, clock, name="b", cluster="stage")
    await make(store, catalog, clock, name="c", cluster=PROD_ELSEWHERE)

    async def names(cluster: ClusterRef | None) -> list[str]:
        views = await environments.list_environments(store, cluster=cluster)
        return [v.environment.name for v in views]

    assert await names(None) == ["a", "b", "c"]
    assert await names(environments.parse_cluster("prod")) == ["a", "c"]
    assert await names(environments.parse_cluster(PROD)) == ["a"]
    assert await names(environments.parse_cluster(STAGE)) == ["b"]
    assert await names(environments.parse_cluster("none")) == []


@pytest.mark.parametrize(
    "text", ["", "a b", "arn:aws:ecs:us-east-1:123456789012:cluster/", "x" * 256, "arn:nope"]
)
def test_parse_cluster_refuses_what_is_neither_a_name_nor_a_cluster_arn(text: str) -> None:
    with pytest.raises(RequestInvalid, match=texts.INVALID_CLUSTER):
        environments.parse_cluster(text)


# -- update and revisions ------------------------------------------------------------------


async def test_update_makes_a_new_revision_with_a_new_token_and_keeps_the_rest(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    first = await make(store, catalog, clock)
    await clock.advance(5)
    updated = await environments.update_environment(
        store,
        catalog,
        name="daemon",
        task_definition="web:2",
        rollout=RolloutChange(max_unavailable=Share(10, percent=True), min_ready_s=3),
        now=clock.now(),
    )
    revision = updated.revision
    assert (revision.number, revision.task_definition) == (2, td("web:2"))
    assert revision.deployment_token != first.revision.deployment_token
    assert (revision.rollout.max_unavailable, revision.rollout.min_ready_s) == (Share(10, True), 3)
    assert revision.rollout.max_surge == first.revision.rollout.max_surge
    assert revision.created_at == clock.now() and updated.created_at == first.created_at
    numbers = [r.number for r in await environments.list_revisions(store, "daemon")]
    assert numbers == [2, 1]
    assert await environments.get_revision(store, "daemon", number=1) == first.revision


async def test_an_update_that_changes_nothing_writes_nothing_and_history_limit_alone_no_revision(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    first = await make(store, catalog, clock)
    before = await store.revision()
    same = await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:1", cluster=PROD, now=clock.now()
    )
    assert same == first and await store.revision() == before
    limited = await environments.update_environment(
        store, catalog, name="daemon", history_limit=3, now=clock.now()
    )
    assert limited.history_limit == 3 and limited.revision == first.revision


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({}, texts.NOTHING_TO_UPDATE),
        ({"cluster": "stage"}, "cannot be changed"),
        ({"cluster": PROD_ELSEWHERE}, "cannot be changed"),
        ({"cluster": "bad name"}, texts.INVALID_CLUSTER),
    ],
    ids=["nothing given", "another cluster", "same name elsewhere", "bad cluster"],
)
async def test_update_refuses_an_empty_change_and_another_cluster(
    store: Store, catalog: Catalog, clock: ManualClock, change: dict[str, Any], text: str
) -> None:
    await make(store, catalog, clock)
    with pytest.raises(RequestInvalid, match=text):
        await environments.update_environment(
            store, catalog, name="daemon", now=clock.now(), **change
        )


async def test_update_of_a_missing_environment_is_not_found_before_ecs_is_asked(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    with pytest.raises(EnvironmentNotFound, match="Environment ghost does not exist"):
        await environments.update_environment(
            store, catalog, name="ghost", task_definition="web:2", now=clock.now()
        )
    assert catalog.lookups == 0


async def test_old_revisions_are_pruned_past_the_history_limit_but_the_target_is_kept(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    first = await make(store, catalog, clock, history_limit=2)
    await environments.create_deployment(
        store, "daemon", token=first.revision.deployment_token, now=clock.now()
    )
    for n in range(2, 6):  # revisions 2..5, then 6 back on web:1
        await environments.update_environment(
            store, catalog, name="daemon", task_definition=f"web:{n}", now=clock.now()
        )
    await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:1", now=clock.now()
    )
    numbers = [r.number for r in await environments.list_revisions(store, "daemon")]
    assert numbers == [6, 5, 4, 1]  # current, two before it, and the deployed (target) one
    with pytest.raises(RevisionNotFound, match="Revision 2 does not exist for environment daemon"):
        await environments.get_revision(store, "daemon", number=2)
    with pytest.raises(RevisionNotFound):
        await environments.get_revision(store, "daemon", number=7)


async def test_rollback_copies_the_previous_revision_as_a_new_one_and_deploys_it(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    first = await make(store, catalog, clock)
    second = await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:2", now=clock.now()
    )
    running = await environments.create_deployment(
        store, "daemon", token=second.revision.deployment_token, now=clock.now()
    )
    await environments.set_paused(store, "daemon", paused=True, now=clock.now())
    await clock.advance(60)
    deployment = await environments.rollback(store, "daemon", now=clock.now())
    state = await environments.desired(store, "daemon")
    assert state is not None and state.target is not None
    target = state.target
    assert (target.number, target.task_definition, target.rolled_back_from) == (3, td("web:1"), 2)
    assert target.deployment_token not in (first.revision.deployment_token, "")
    assert state.deployment == deployment and deployment.revision == 3
    assert state.environment.active_deployment == deployment.id and not state.environment.paused
    old = await environments.get_deployment(store, "daemon", deployment_id=running.id)
    assert old.status is DeploymentStatus.SUPERSEDED and old.finished_at == clock.now()
    assert "rolled back to revision 1 as revision 3" in (old.reason or "")


async def test_rollback_to_a_revision_and_the_ways_it_is_refused(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock, history_limit=1)
    with pytest.raises(RequestInvalid, match="has no earlier revision"):
        await environments.rollback(store, "daemon", now=clock.now())
    for n in (2, 3):
        await environments.update_environment(
            store, catalog, name="daemon", task_definition=f"web:{n}", now=clock.now()
        )
    with pytest.raises(RevisionNotFound):  # pruned: history limit 1 keeps 2 and 3
        await environments.rollback(store, "daemon", to=1, now=clock.now())
    with pytest.raises(RevisionNotFound):
        await environments.rollback(store, "daemon", to=9, now=clock.now())
    deployment = await environments.rollback(store, "daemon", to=2, now=clock.now())
    assert deployment.task_definition == td("web:2") and deployment.revision == 4
    with pytest.raises(EnvironmentNotFound):
        await environments.rollback(store, "ghost", now=clock.now())


async def test_pause_and_resume_flip_the_flag_and_a_repeat_writes_nothing(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    paused = await environments.set_paused(store, "daemon", paused=True, now=clock.now())
    before = await store.revision()
    assert (
        paused.paused
        and (await environments.set_paused(store, "daemon", paused=True, now=clock.now())).paused
    )
    assert await store.revision() == before
    assert not (
        await environments.set_paused(store, "daemon", paused=False, now=clock.now())
    ).paused


# -- delete and forget ---------------------------------------------------------------------


async def test_delete_hides_the_environment_and_supersedes_its_deployment_until_forgotten(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    created = await make(store, catalog, clock)
    deployment = await environments.create_deployment(
        store, "daemon", token=created.revision.deployment_token, now=clock.now()
    )
    await environments.delete_environment(store, "daemon", now=clock.now())
    with pytest.raises(EnvironmentNotFound):
        await environments.get_environment(store, "daemon")
    assert await environments.list_environments(store) == []
    hidden = await environments.list_environments(store, include_deleting=True)
    assert [v.environment.deleting for v in hidden] == [True]
    state = await environments.desired(store, "daemon")
    assert state is not None and state.environment.deleting and state.deployment is None
    assert state.target is not None and state.target.number == 1  # what its tasks run
    with pytest.raises(EnvironmentDeleting, match="is being deleted"):
        await make(store, catalog, clock)
    await environments.delete_environment(store, "daemon", now=clock.now())  # again: quiet
    ended = records.decode_deployment(
        (await store.get(keys.deployment("daemon", deployment.id))).value  # type: ignore[union-attr]
    )
    assert ended.status is DeploymentStatus.SUPERSEDED
    assert await environments.forget(store, "daemon") is True
    assert await keys_of(store, "daemon") == []
    assert await environments.desired(store, "daemon") is None
    assert await environments.forget(store, "daemon") is False
    await make(store, catalog, clock)  # the name is free again


async def test_forced_delete_removes_every_record_at_once_and_absent_names_are_quiet(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    created = await make(store, catalog, clock)
    await environments.create_deployment(
        store, "daemon", token=created.revision.deployment_token, now=clock.now()
    )
    await environments.write_status(store, "daemon", status=records.Status(desired=1))
    assert len(await keys_of(store, "daemon")) == 5
    await environments.delete_environment(store, "daemon", force=True, now=clock.now())
    assert await keys_of(store, "daemon") == []
    before = await store.revision()
    for name in ("daemon", "never-was", "not a name!"):
        await environments.delete_environment(store, name, force=True, now=clock.now())
    assert await store.revision() == before


async def test_forget_leaves_a_live_environment_alone(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    assert await environments.forget(store, "daemon") is False
    assert (await environments.get_environment(store, "daemon")).environment.name == "daemon"


# -- what the controller reads and writes --------------------------------------------------


async def test_desired_names_the_deployed_revision_not_the_latest_one(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    assert await environments.desired(store, "ghost") is None
    assert await environments.desired(store, "not a name") is None
    created = await make(store, catalog, clock)
    state = await environments.desired(store, "daemon")
    assert state is not None and (state.target, state.deployment) == (None, None)
    deployment = await environments.create_deployment(
        store, "daemon", token=created.revision.deployment_token, now=clock.now()
    )
    await environments.update_environment(
        store, catalog, name="daemon", task_definition="web:2", now=clock.now()
    )
    state = await environments.desired(store, "daemon")
    assert state is not None and state.target is not None
    assert (state.environment.revision.number, state.target.number) == (2, 1)
    assert state.deployment == deployment
    entry = await store.get(keys.environment("daemon"))
    assert entry is not None and state.version == entry.mod_revision


async def test_write_status_is_shown_by_get_and_list_and_refused_once_deleted(
    store: Store, catalog: Catalog, clock: ManualClock
) -> None:
    await make(store, catalog, clock)
    status = records.Status(
        desired=3, current=2, ready=2, updated=1, available=1, unavailable=2, misscheduled=0,
        current_revision=1, target_revision=1, reason="waiting", observed_at=clock.now(),
    )  # fmt: skip
    assert await environments.write_status(store, "daemon", status=status) is True
    assert (await environments.get_environment(store, "daemon")).status == status
    assert [v.status for v in await environments.list_environments(store)] == [status]
    await environments.delete_environment(store, "daemon", now=clock.now())
    assert await environments.write_status(store, "daemon", status=status) is False
    assert await environments.write_status(store, "ghost", status=status) is False


async def test_unreadable_stored_bytes_are_a_record_error_not_a_crash(store: Store) -> None:
    await store.put(keys.environment("broken"), b"{not json")
    with pytest.raises(RecordUnreadable, match="environment"):
        await environments.get_environment(store, "broken")
    await store.put(keys.environment("broken"), b'{"name": "broken"}')
    with pytest.raises(RecordUnreadable):
        await environments.desired(store, "broken")


def test_codecs_round_trip_every_field(clock: ManualClock) -> None:
    now = clock.now() + timedelta(seconds=1.5)
    revision = Revision(
        number=4,
        task_definition=td("web:3"),
        cluster_arn=PROD,
        constraints=tuple(map(parse_constraint, ["attribute:stack == prod", "attribute:g exists"])),
        rollout=environments.RolloutChange(
            max_unavailable=Share(25, True), max_surge=Share(2), min_ready_s=1.5,
            progress_deadline_s=90, auto_rollback=True,
        ).applied(RolloutPolicy()),
        deployment_token="t", created_at=now, rolled_back_from=3,
    )  # fmt: skip
    record = records.EnvironmentRecord(
        Environment(
            name="e", revision=revision, paused=True, health="unhealthy", created_at=now,
            updated_at=now, history_limit=4, active_deployment="d",
        ),
        target=revision, deployed_token="t", deployment_seq=7,
    )  # fmt: skip
    assert records.decode_environment(records.encode_environment(record)) == record
    assert records.decode_revision(records.encode_revision(revision)) == revision
