"""The planner's inputs: what should run (`Desired`), what runs (`Observed`), what is under way
(`Pending`), and how a task is recognised as one of an environment's (`group_of`, `revision_of`).

Pure values. The control loop builds them (desired state from the store, observed state from
the CSS informer, pending actions from its expectations) and hands them to `planner.plan`.

Assumptions / Invariants:
- The caller passes the container instances of the environment's cluster only (filtered by
  `cluster_arn`), and may pass all of the cluster's tasks: the planner keeps the environment's.
- A task belongs to environment E at revision R when its `group` is `blox:E:R` (`group_of`);
  v0.3 tasks carry no such group, only `startedBy` = a deployment id, which
  `Desired.deployments` maps to a revision. A `blox:` group of another environment is never
  ours, whatever its `startedBy`.
- A task "runs the target" when its task definition ARN is the target revision's: a revision
  that changes only constraints or the rollout policy, or a rollback to the same task definition,
  restarts nothing (as Kubernetes compares a pod's template hash, not its revision number).
- `Pending` is trusted as given: the shell drops expectations once observed or past their TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from blox.model.daemon import ENVIRONMENT_NAME, Deployment, Environment, Revision
from blox.model.errors import DaemonInvalid

__all__ = [
    "GROUP_MAX_CHARS",
    "GROUP_PREFIX",
    "Desired",
    "Observed",
    "ObservedInstance",
    "ObservedTask",
    "Pending",
    "PendingStart",
    "TaskNeeds",
    "Owned",
    "group_of",
    "parse_group",
    "revision_of",
    "tasks_by_instance",
]

GROUP_PREFIX = "blox"
GROUP_MAX_CHARS = 255  # ECS's limit on a task's `group`

# ECS container instance statuses the planner tells apart; any other (REGISTERING,
# DEREGISTERING, REGISTRATION_FAILED, …) is treated as INACTIVE: no new task, ours stopped.
ACTIVE = "ACTIVE"
DRAINING = "DRAINING"
# ECS task statuses the planner reads.
RUNNING = "RUNNING"
STOPPED = "STOPPED"
HEALTHY = "HEALTHY"


def group_of(environment: str, revision: int) -> str:
    """The ECS task `group` that marks a task as `environment`'s at `revision`: `blox:E:R`."""
    if not ENVIRONMENT_NAME.fullmatch(environment) or revision < 1:
        raise DaemonInvalid(f"no task group for environment {environment!r} at {revision}")
    group = f"{GROUP_PREFIX}:{environment}:{revision}"
    if len(group) > GROUP_MAX_CHARS:  # cannot happen with 30-char names; kept as the rule
        raise DaemonInvalid(f"task group {group!r} is longer than {GROUP_MAX_CHARS} characters")
    return group


def parse_group(group: str | None) -> tuple[str, int] | None:
    """(environment, revision) of a `blox:E:R` group; None for any other group or none."""
    if not group or not group.startswith(GROUP_PREFIX + ":"):
        return None
    _, _, rest = group.partition(":")
    name, sep, number = rest.rpartition(":")
    if not sep or not number.isascii() or not number.isdigit() or number.startswith("0"):
        return None
    if not ENVIRONMENT_NAME.fullmatch(name):
        return None
    return name, int(number)


@dataclass(frozen=True, slots=True)
class ObservedInstance:
    """A container instance of the cluster, as the CSS last showed it."""

    container_instance_arn: str
    status: str  # ACTIVE | DRAINING | INACTIVE | another ECS status
    agent_connected: bool = True
    attributes: dict[str, str | None] = field(default_factory=dict)  # name → value or None
    remaining_cpu: int | None = None  # CPU units left for new tasks; None: unknown
    remaining_memory: int | None = None  # MiB left for new tasks; None: unknown
    other_tasks: int = 0  # running + pending tasks on it that are not this environment's


@dataclass(frozen=True, slots=True)
class ObservedTask:
    """A task of the cluster, as the CSS last showed it."""

    task_arn: str
    container_instance_arn: str | None
    task_definition_arn: str
    last_status: str  # PROVISIONING | PENDING | ACTIVATING | RUNNING | … | STOPPED
    desired_status: str = RUNNING  # RUNNING, or STOPPED once a stop was asked for
    started_by: str | None = None
    group: str | None = None
    health_status: str | None = None  # HEALTHY | UNHEALTHY | UNKNOWN | None
    running_since: datetime | None = None  # when it reached RUNNING (ECS `startedAt`)


Owned = tuple[ObservedTask, int]  # a task of ours that has not STOPPED, and its revision


@dataclass(frozen=True, slots=True)
class Observed:
    """Observed state of one cluster: its container instances and (some or all of) its tasks."""

    instances: tuple[ObservedInstance, ...] = ()
    tasks: tuple[ObservedTask, ...] = ()


@dataclass(frozen=True, slots=True)
class PendingStart:
    """A StartTask issued for an instance whose task the CSS has not shown yet."""

    revision: int
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    """Actions issued but not yet observed (client-go's expectations), for one environment."""

    starts: Mapping[str, PendingStart] = field(default_factory=dict)  # instance ARN → start
    stops: frozenset[str] = frozenset()  # task ARNs a StopTask was issued for


@dataclass(frozen=True, slots=True)
class TaskNeeds:
    """What one task of the target task definition takes, from its registration."""

    cpu: int | None = None  # CPU units; None: not declared at task level
    memory: int | None = None  # MiB; None: not declared at task level
    has_health_check: bool = False  # any container has a healthCheck: ready needs HEALTHY

    def fit(self, instance: ObservedInstance) -> bool:
        """Whether `instance` has room for one more such task; an unknown figure has room
        (ECS's own placement check answers RESOURCE:* and the shell then backs off)."""
        cpu, memory = instance.remaining_cpu, instance.remaining_memory
        if self.cpu is not None and cpu is not None and cpu < self.cpu:
            return False
        return self.memory is None or memory is None or memory >= self.memory


@dataclass(frozen=True, slots=True)
class Desired:
    """What one environment should run, and the state of its rollout."""

    environment: str  # the environment's name
    revision: Revision  # the target: task definition, constraints, rollout policy
    needs: TaskNeeds = TaskNeeds()
    paused: bool = False  # the rollout is paused (placement and cleanup go on)
    deleting: bool = False  # the environment was deleted: stop every task of it
    deployment: Deployment | None = None  # the deployment in progress, if any
    last_progress_at: datetime | None = None  # when the deployment last moved (shell-tracked)
    backoff_until: Mapping[str, datetime] = field(default_factory=dict)  # instance ARN → until
    deployments: Mapping[str, int] = field(default_factory=dict)  # v0.3 startedBy → revision

    @classmethod
    def of(
        cls,
        environment: Environment,
        *,
        revision: Revision | None = None,
        needs: TaskNeeds = TaskNeeds(),
        deployment: Deployment | None = None,
        last_progress_at: datetime | None = None,
        backoff_until: Mapping[str, datetime] | None = None,
        deployments: Mapping[str, int] | None = None,
    ) -> Desired:
        """The desired state of `environment`, rolling out `revision` (default: its latest;
        v0.3 runs nothing before the first deployment, so the shell passes the deployed one)."""
        return cls(
            environment=environment.name,
            revision=revision or environment.revision,
            needs=needs,
            paused=environment.paused,
            deleting=environment.deleting,
            deployment=deployment,
            last_progress_at=last_progress_at,
            backoff_until=backoff_until or {},
            deployments=deployments or {},
        )


def revision_of(
    task: ObservedTask, *, environment: str, deployments: Mapping[str, int]
) -> int | None:
    """The revision of `environment` that `task` runs, or None when it is not the environment's.

    task: any task of the cluster.
    environment: the environment's name.
    deployments: v0.3 fallback, deployment id (a task's `startedBy`) → revision number.
    """
    group, started_by = task.group, task.started_by
    if group is not None:  # the fast path first: most tasks of a cluster are ours or others'
        mine = f"{GROUP_PREFIX}:{environment}:"
        if group.startswith(mine):
            number = group[len(mine) :]
            if number.isascii() and number.isdigit() and not number.startswith("0"):
                return int(number)
    if started_by is None or started_by not in deployments:
        return None
    return deployments[started_by] if parse_group(group) is None else None


def tasks_by_instance(tasks: Iterable[ObservedTask], *, desired: Desired) -> dict[str, list[Owned]]:
    """The environment's tasks that have not STOPPED, by container instance ARN.

    tasks: any tasks of the cluster; others' and those without an instance are skipped.
    desired: names the environment and the v0.3 deployment → revision fallback.
    """
    ours: dict[str, list[Owned]] = {}
    name, deployments = desired.environment, desired.deployments
    mine = f"{GROUP_PREFIX}:{name}:"
    cut = len(mine)
    for task in tasks:
        if task.last_status == STOPPED or task.container_instance_arn is None:
            continue
        # `revision_of`, with its two common cases inlined: 10,000 tasks a pass
        group = task.group
        number = group[cut:] if group is not None and group.startswith(mine) else ""
        if number.isdigit() and number.isascii() and number[0] != "0":
            revision: int | None = int(number)
        elif group is not None and group.startswith(f"{GROUP_PREFIX}:") and not deployments:
            continue  # another environment's: the common case, decided without parsing
        else:
            revision = revision_of(task, environment=name, deployments=deployments)
        if revision is not None:
            ours.setdefault(task.container_instance_arn, []).append((task, revision))
    return ours
