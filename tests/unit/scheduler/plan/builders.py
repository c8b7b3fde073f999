"""Small builders for planner tests, so that each table row reads as a sentence (Nomad's
`mock.Node()` / `assertDiffCount` idea): short ids in, short `"<id> <reason>"` strings out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from blox.model.daemon import Constraint, Deployment, DeploymentStatus, Revision, RolloutPolicy
from blox.scheduler.plan import planner
from blox.scheduler.plan.actions import Plan
from blox.scheduler.plan.snapshot import (
    Desired,
    Observed,
    ObservedInstance,
    ObservedTask,
    Pending,
    PendingStart,
    TaskNeeds,
    group_of,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
ENV = "web"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
INSTANCE_PREFIX = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/"
TASK_PREFIX = "arn:aws:ecs:us-east-1:123456789012:task/prod/"
TARGET = 2  # the target revision of `desired()` unless told otherwise


def td(revision: int) -> str:
    """The task definition ARN revision `revision` of the environment runs."""
    return f"arn:aws:ecs:us-east-1:123456789012:task-definition/app:{revision}"


def ci(name: str) -> str:
    """A container instance ARN from a short id such as `i-1`."""
    return INSTANCE_PREFIX + name


def ta(name: str) -> str:
    """A task ARN from a short id such as `t-1`."""
    return TASK_PREFIX + name


def short(arn: str | None) -> str:
    """The short id of an instance or task ARN (`*` for an environment-wide wait)."""
    return "*" if arn is None else arn.rsplit("/", 1)[-1]


def revision(
    number: int = TARGET,
    *,
    constraints: Iterable[Constraint] = (),
    rolled_back_from: int | None = None,
    **policy: Any,
) -> Revision:
    """Revision `number` running `td(number)` on the cluster, with RolloutPolicy(**policy)."""
    return Revision(
        number=number,
        task_definition=td(number),
        cluster_arn=CLUSTER,
        constraints=tuple(constraints),
        rollout=RolloutPolicy(**policy),
        rolled_back_from=rolled_back_from,
    )


def desired(rev: Revision | None = None, **fields: Any) -> Desired:
    """The desired state of environment `web` at `rev` (default: revision 2, default policy)."""
    return Desired(environment=ENV, revision=rev or revision(), **fields)


def deployment(
    rev: int = TARGET, status: DeploymentStatus = DeploymentStatus.RUNNING, *, at: datetime = T0
) -> Deployment:
    """A deployment of revision `rev` created at `at`."""
    return Deployment(
        id="0b0e7c2e-3f7e-4c55-9a59-5a1c1d1f0c00",
        environment_name=ENV,
        revision=rev,
        task_definition=td(rev),
        token="5d2c9a3e-8b1f-4a43-8f0e-1c2d3e4f5a6b",
        status=status,
        created_at=at,
    )


def instance(
    name: str,
    status: str = "ACTIVE",
    *,
    connected: bool = True,
    attrs: Mapping[str, str | None] | None = None,
    cpu: int | None = None,
    memory: int | None = None,
    others: int = 0,
) -> ObservedInstance:
    """Container instance `name` of the cluster."""
    return ObservedInstance(
        container_instance_arn=ci(name),
        status=status,
        agent_connected=connected,
        attributes=dict(attrs or {}),
        remaining_cpu=cpu,
        remaining_memory=memory,
        other_tasks=others,
    )


def task(
    name: str,
    *,
    on: str,
    rev: int = TARGET,
    status: str = "RUNNING",
    since: datetime | None = T0,
    health: str | None = None,
    stopping: bool = False,
    env: str = ENV,
    group: str | None = "",
    started_by: str | None = None,
) -> ObservedTask:
    """Task `name` of environment `env` at revision `rev` on instance `on` (group `blox:E:R`
    unless `group` is given; None: no group)."""
    return ObservedTask(
        task_arn=ta(name),
        container_instance_arn=ci(on),
        task_definition_arn=td(rev),
        last_status=status,
        desired_status="STOPPED" if stopping else "RUNNING",
        started_by=started_by,
        group=group_of(env, rev) if group == "" else group,
        health_status=health,
        running_since=since if status == "RUNNING" else None,
    )


def pending(
    starts: Mapping[str, int] | None = None, stops: Iterable[str] = (), *, at: datetime = NOW
) -> Pending:
    """In-flight starts (short instance id → revision) and stops (short task ids)."""
    return Pending(
        starts={ci(i): PendingStart(rev, at) for i, rev in (starts or {}).items()},
        stops=frozenset(ta(t) for t in stops),
    )


def run(
    want: Desired,
    instances: Iterable[ObservedInstance] = (),
    tasks: Iterable[ObservedTask] = (),
    in_flight: Pending | None = None,
    *,
    now: datetime = NOW,
) -> Plan:
    """`planner.plan` over these values."""
    return planner.plan(
        desired=want,
        observed=Observed(tuple(instances), tuple(tasks)),
        pending=in_flight or Pending(),
        now=now,
    )


def actions(plan: Plan) -> dict[str, list[str]]:
    """The plan as readable lists: `{"starts": ["i-1 missing"], "stops": [...], "waits": [...]}`."""
    return {
        "starts": [f"{short(s.container_instance_arn)} {s.reason}" for s in plan.starts],
        "stops": [f"{short(s.task_arn)} {s.reason}" for s in plan.stops],
        "waits": [f"{short(w.container_instance_arn)} {w.reason}" for w in plan.waits],
    }


def with_health_check(want: Desired) -> Desired:
    """`want` whose task definition has a health check."""
    return replace(want, needs=replace(want.needs, has_health_check=True))


NEEDS = TaskNeeds(cpu=256, memory=512)
