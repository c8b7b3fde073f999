"""What the CSS shows, as the planner's snapshot: pure conversions of the CSS wire models.

`task(item)` and `instance(item)` turn the CSS's v0.3 JSON (with blox-ecs's additions: group,
healthStatus, task counts) into `ObservedTask` / `ObservedInstance`; `needs(definition)` reads
what one task needs from an ECS task definition; `for_environment` narrows a cluster's
instances to the planner's view of one environment (tasks that are not its own count as
`other_tasks`). Callers: the informer (`task`, `instance`: once per change) and the controller
(`for_environment` once per pass, `needs` once per task definition).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sized
from datetime import datetime
from typing import Any

from blox.contract import css
from blox.scheduler.plan.snapshot import ObservedInstance, ObservedTask, TaskNeeds

__all__ = ["for_environment", "instance", "needs", "task"]


def task(item: css.TaskPublic) -> ObservedTask:
    """The planner's view of one task the CSS shows."""
    e = item.entity
    return ObservedTask(
        task_arn=e.task_arn,
        container_instance_arn=e.container_instance_arn,
        task_definition_arn=e.task_definition_arn,
        last_status=e.last_status,
        desired_status=e.desired_status or "RUNNING",
        started_by=e.started_by,
        group=e.group,
        health_status=e.health_status,
        running_since=_time(e.started_at) if e.last_status == "RUNNING" else None,
    )


def instance(item: css.ContainerInstancePublic) -> ObservedInstance:
    """The planner's view of one container instance (`other_tasks` filled per environment)."""
    e = item.entity
    remaining = {r.name: r.value for r in e.remaining_resources}
    return ObservedInstance(
        container_instance_arn=e.container_instance_arn,
        status=e.status,
        agent_connected=e.agent_connected,
        attributes={a.name: a.value for a in e.attributes or []},
        remaining_cpu=_number(remaining.get("CPU")),
        remaining_memory=_number(remaining.get("MEMORY")),
        other_tasks=(e.running_tasks_count or 0) + (e.pending_tasks_count or 0),
    )


def for_environment(
    instances: Iterable[ObservedInstance], owned: Mapping[str, Sized]
) -> tuple[ObservedInstance, ...]:
    """`instances` with `other_tasks` counting only the tasks that are not the environment's.

    ECS's running + pending counts include the environment's own live tasks: subtract them.
    owned: container instance ARN → the environment's tasks on it that have not STOPPED
        (`snapshot.tasks_by_instance`). An instance without any is passed on as it is.
    """
    mine = owned.get
    return tuple(
        i
        if not (own := len(mine(i.container_instance_arn) or ())) or not i.other_tasks
        else ObservedInstance(  # not dataclasses.replace: 5,000 instances a pass
            container_instance_arn=i.container_instance_arn,
            status=i.status,
            agent_connected=i.agent_connected,
            attributes=i.attributes,
            remaining_cpu=i.remaining_cpu,
            remaining_memory=i.remaining_memory,
            other_tasks=max(0, i.other_tasks - own),
        )
        for i in instances
    )


def needs(definition: Mapping[str, Any]) -> TaskNeeds:
    """CPU units and MiB one task of `definition` (DescribeTaskDefinition) takes, and whether a
    container has a health check (then a task is ready only once HEALTHY)."""
    containers = [c for c in definition.get("containerDefinitions", []) if isinstance(c, dict)]
    cpu = _number(definition.get("cpu"))
    memory = _number(definition.get("memory"))
    if cpu is None and containers:
        cpu = sum(_number(c.get("cpu")) or 0 for c in containers)
    if memory is None and containers:
        memory = sum(
            _number(c.get("memory")) or _number(c.get("memoryReservation")) or 0 for c in containers
        )
    return TaskNeeds(
        cpu=cpu, memory=memory, has_health_check=any("healthCheck" in c for c in containers)
    )


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
