"""The informer's incremental observed state (`control.cache.Kept` with the real conversions of
`control.observed`): a change converts and replaces only its own entry, a deletion removes it, a
relist replaces everything, and a view handed to a pass never changes under it. Also the
per-environment narrowing of instances (`observed.for_environment`)."""

from __future__ import annotations

from typing import Any

from blox.contract import css
from blox.model.daemon import Revision, RolloutPolicy
from blox.scheduler.control import observed
from blox.scheduler.control.cache import Kept
from blox.scheduler.plan import snapshot
from blox.scheduler.plan.snapshot import ObservedInstance, ObservedTask

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
PROD, STAGE = f"{ACCOUNT}:cluster/prod", f"{ACCOUNT}:cluster/stage"


def ci(n: int) -> str:
    return f"{ACCOUNT}:container-instance/prod/{n:032x}"


def ta(n: int) -> str:
    return f"{ACCOUNT}:task/prod/{n:032x}"


def task(
    n: int,
    *,
    version: int = 1,
    status: str = "RUNNING",
    cluster: str = PROD,
    group: str | None = "blox:web:1",
    on: int | None = None,
) -> css.TaskPublic:
    entity: dict[str, Any] = {
        "clusterARN": cluster,
        "containerInstanceARN": ci(n if on is None else on),
        "containers": [],
        "createdAt": "2026-03-01T12:00:00.000Z",
        "desiredStatus": "RUNNING",
        "lastStatus": status,
        "overrides": {"containerOverrides": []},
        "startedAt": "2026-03-01T12:00:02.000Z",
        "taskARN": ta(n),
        "taskDefinitionARN": f"{ACCOUNT}:task-definition/app:1",
        "group": group,
    }
    return css.TaskPublic.model_validate(
        {"metadata": {"entityVersion": str(version)}, "entity": entity}
    )


def instance(
    n: int, *, version: int = 1, status: str = "ACTIVE", running: int = 0
) -> css.ContainerInstancePublic:
    resources = [{"name": "MEMORY", "type": "INTEGER", "value": "1024"}]
    entity: dict[str, Any] = {
        "agentConnected": True,
        "clusterARN": PROD,
        "containerInstanceARN": ci(n),
        "attributes": [{"name": "stack", "value": "prod"}],
        "registeredResources": resources,
        "remainingResources": resources,
        "status": status,
        "versionInfo": {},
        "runningTasksCount": running,
        "pendingTasksCount": 0,
    }
    return css.ContainerInstancePublic.model_validate(
        {"metadata": {"entityVersion": str(version)}, "entity": entity}
    )


def tasks_kept() -> Kept[css.TaskPublic, ObservedTask]:
    return Kept(
        arn=lambda t: t.entity.task_arn,
        cluster=lambda t: t.entity.cluster_arn,
        version=lambda t: int(t.metadata.entity_version),
        convert=observed.task,
    )


def listed(kept: Kept[css.TaskPublic, ObservedTask], *items: css.TaskPublic) -> None:
    kept.replace(items)


def test_a_change_converts_and_replaces_only_its_own_entry() -> None:
    kept = tasks_kept()
    listed(kept, *(task(n) for n in range(3)))
    before = kept.view(PROD)
    assert [t.task_arn for t in before] == [ta(0), ta(1), ta(2)]
    assert kept.conversions == 3

    assert kept.apply(7, task(1, version=7, status="STOPPED"))
    after = kept.view(PROD)
    assert kept.conversions == 4, "one change, one conversion"
    assert after[0] is before[0] and after[2] is before[2], "the others are the same values"
    assert after[1] == observed.task(task(1, version=7, status="STOPPED"))
    assert kept.version_of(ta(1)) == 7
    assert before[1].last_status == "RUNNING", "a view a pass holds never changes"


def test_a_version_not_newer_than_the_kept_one_changes_nothing() -> None:
    kept = tasks_kept()
    kept.apply(5, task(1, version=5))
    view = kept.view(PROD)
    assert not kept.apply(5, task(1, version=5, status="STOPPED"))
    assert not kept.apply(4, task(1, version=4, status="STOPPED"))
    assert kept.view(PROD) is view, "no change: the same snapshot, nothing rebuilt"
    assert kept.conversions == 1


def test_a_view_is_shared_until_its_cluster_changes() -> None:
    kept = tasks_kept()
    listed(kept, task(1), task(2, cluster=STAGE))
    prod, stage = kept.view(PROD), kept.view(STAGE)
    assert kept.view(PROD) is prod
    kept.apply(9, task(2, version=9, cluster=STAGE, status="STOPPED"))
    assert kept.view(PROD) is prod, "another cluster's change leaves this view alone"
    assert kept.view(STAGE) is not stage
    assert kept.view(f"{ACCOUNT}:cluster/none") == ()


def test_a_deletion_removes_the_entry() -> None:
    kept = tasks_kept()
    listed(kept, task(1), task(2))
    before = kept.view(PROD)
    assert kept.remove(ta(1))
    assert [t.task_arn for t in kept.view(PROD)] == [ta(2)]
    assert kept.cluster_of(ta(1)) is None and kept.version_of(ta(1)) is None
    assert len(before) == 2, "the view a pass holds keeps the removed task"
    assert not kept.remove(ta(1)), "removing an unknown entry is a no-op"
    assert kept.remove(ta(2)) and kept.view(PROD) == () and len(kept) == 0


def test_a_task_that_names_another_cluster_moves_there() -> None:
    kept = tasks_kept()
    kept.apply(1, task(1))
    kept.apply(2, task(1, version=2, cluster=STAGE))
    assert kept.view(PROD) == ()
    assert [t.task_arn for t in kept.view(STAGE)] == [ta(1)]
    assert kept.cluster_of(ta(1)) == STAGE


def test_a_relist_replaces_everything_keeping_newer_stream_entries() -> None:
    kept = tasks_kept()
    listed(kept, task(1), task(2), task(3))
    kept.apply(10, task(3, version=10, status="STOPPED"))  # streamed while the list was read
    old_view = kept.view(PROD)
    unchanged = old_view[1]
    conversions = kept.conversions

    listed(kept, task(2), task(3, version=4), task(4, version=6))
    view = kept.view(PROD)
    assert [t.task_arn for t in view] == [ta(2), ta(3), ta(4)], "task 1 is forgotten"
    assert kept.version_of(ta(3)) == 10 and view[1].last_status == "STOPPED", "newer kept"
    assert view[0] is unchanged, "an unchanged entry is not converted again"
    assert kept.conversions == conversions + 1, "only task 4 was converted"
    assert len(old_view) == 3 and kept.cluster_of(ta(1)) is None


def test_instances_are_kept_the_same_way() -> None:
    kept: Kept[css.ContainerInstancePublic, ObservedInstance] = Kept(
        arn=lambda i: i.entity.container_instance_arn,
        cluster=lambda i: i.entity.cluster_arn,
        version=lambda i: int(i.metadata.entity_version),
        convert=observed.instance,
    )
    kept.replace([instance(1), instance(2)])
    kept.apply(3, instance(2, version=3, status="DRAINING"))
    assert [(i.container_instance_arn, i.status) for i in kept.view(PROD)] == [
        (ci(1), "ACTIVE"),
        (ci(2), "DRAINING"),
    ]
    assert kept.view(PROD)[0].remaining_memory == 1024


def test_for_environment_counts_only_other_tasks_on_each_instance() -> None:
    desired = snapshot.Desired(environment="web", revision=_revision())
    tasks = tuple(
        observed.task(t)
        for t in (
            task(1, on=1),  # ours on instance 1
            task(2, on=1, group="blox:other:1"),  # another environment's on instance 1
            task(3, on=2, status="STOPPED"),  # ours, stopped: no longer counted
        )
    )
    instances = (
        observed.instance(instance(1, running=2)),
        observed.instance(instance(2, running=1)),
        observed.instance(instance(3)),
    )
    owned = snapshot.tasks_by_instance(tasks, desired=desired)
    narrowed = observed.for_environment(instances, owned)
    assert [i.other_tasks for i in narrowed] == [1, 1, 0]
    assert narrowed[1] is instances[1] and narrowed[2] is instances[2], "nothing of ours: as is"
    assert narrowed[0] == ObservedInstance(
        container_instance_arn=ci(1),
        status="ACTIVE",
        agent_connected=True,
        attributes={"stack": "prod"},
        remaining_cpu=None,
        remaining_memory=1024,
        other_tasks=1,
    )


def _revision() -> Revision:
    return Revision(
        number=1,
        task_definition=f"{ACCOUNT}:task-definition/app:1",
        cluster_arn=PROD,
        constraints=(),
        rollout=RolloutPolicy(),
    )
