"""Is a task ready, available, and since when? Kubernetes' pod readiness and `minReadySeconds`
in ECS terms. Pure.

Callers: `buckets.classify` (which task an instance keeps, whether it counts as available).

Assumptions / Invariants:
- Ready: the task is RUNNING and, when its task definition has a health check, HEALTHY
  (UNKNOWN and UNHEALTHY are not ready: ECS reports UNKNOWN until the first check passes).
- Available: ready since at least `min_ready_s`, counted from `running_since` (ECS's
  `startedAt`; the CSS does not record when a task turned HEALTHY). A ready task without a
  start time is available only when `min_ready_s` is 0.
- A task that is not live (STOPPED, or being stopped) is never asked about: the caller drops it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from blox.scheduler.plan.snapshot import HEALTHY, RUNNING, ObservedTask, TaskNeeds

__all__ = ["assess", "available_at", "is_ready"]


def is_ready(task: ObservedTask, *, needs: TaskNeeds) -> bool:
    """Whether `task` is RUNNING (and HEALTHY when the definition has a health check)."""
    if task.last_status != RUNNING:
        return False
    return not needs.has_health_check or task.health_status == HEALTHY


def assess(
    task: ObservedTask, *, has_health_check: bool, min_ready: timedelta, now: datetime
) -> tuple[bool, datetime | None]:
    """(ready, available at) of `task`, in one call: the planner asks for 5,000 tasks a pass.

    task: a live task of the environment.
    has_health_check: the target task definition has a health check (ready needs HEALTHY).
    min_ready: the rollout policy's minReadySeconds.
    now: the planning time; the availability of a ready task without a start time.
    The second item is when the task is (or will be) available if it stays ready; None while
    it is not ready, or ready without a start time while `min_ready` is not zero.
    """
    if task.last_status != RUNNING or (has_health_check and task.health_status != HEALTHY):
        return False, None
    since = task.running_since
    if since is None:
        return True, (now if not min_ready else None)
    return True, (since + min_ready if min_ready else since)


def available_at(
    task: ObservedTask, *, needs: TaskNeeds, min_ready_s: float, now: datetime
) -> datetime | None:
    """When `task` is (or will be) available if it stays ready (see `assess`)."""
    _, at = assess(
        task,
        has_health_check=needs.has_health_check,
        min_ready=timedelta(seconds=min_ready_s),
        now=now,
    )
    return at
