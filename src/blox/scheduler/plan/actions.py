"""What the planner decides: starts, stops and waits with short stable reasons, the deployment's
next state, and when to look again. Pure, frozen values.

Callers: `planner.plan` builds a `Plan`; the control loop records its starts and stops as
expectations, the executor performs them (StartTask with the revision's `group`, StopTask with
the reason), the status API shows the reasons and `status`.

Assumptions / Invariants:
- Reasons are stable strings (StrEnum values): tests, logs, metrics labels and the status API
  show them; renaming one is an API change.
- A `Plan` lists starts by container instance ARN, stops by task ARN and waits by container
  instance ARN: the same inputs give an equal `Plan`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from blox.scheduler.plan.status import DaemonStatus

__all__ = ["Plan", "Start", "StartReason", "Stop", "StopReason", "Verdict", "Wait", "WaitReason"]


class StartReason(enum.StrEnum):
    """Why a task of the target revision is started on an instance."""

    MISSING = "missing"  # an eligible instance runs no task of the environment
    SURGE = "surge"  # next to an old-revision task, which stops once this one is available


class StopReason(enum.StrEnum):
    """Why a task of the environment is stopped (also the StopTask reason, prefixed by blox)."""

    DELETED = "environment-deleted"  # the environment is being deleted
    UNMATCHED = "constraints-unmet"  # the instance no longer meets the revision's constraints
    NOT_ACTIVE = "instance-not-active"  # the instance is INACTIVE (or deregistering)
    GONE = "instance-gone"  # the instance is no longer in the cluster's observed state
    DRAINED = "instance-drained"  # the DRAINING instance runs nothing else any more
    DUPLICATE = "duplicate"  # a second task of the environment on one instance
    REPLACED = "replaced"  # an old-revision task next to its target-revision successor
    OUTDATED = "outdated"  # rolling update without surge: the old task goes first


class WaitReason(enum.StrEnum):
    """Why an instance does not converge in this pass; the status shows the first that applies,
    in this order."""

    PAUSED = "paused"  # the rollout is paused: old-revision tasks stay
    BACKING_OFF = "backing-off"  # a start failed here lately (RESOURCE:*, throttling): later
    AGENT_DISCONNECTED = "agent-disconnected"  # nothing is started or stopped until it returns
    NOT_READY = "not-ready"  # RUNNING but not HEALTHY yet
    MIN_READY = "min-ready"  # ready, but not for minReadySeconds yet
    STARTING = "starting"  # a start is in flight or the task is not RUNNING yet
    STOPPING = "stopping"  # a task of ours is stopping; the next one starts once it is gone
    MAX_SURGE = "max-surge"  # the rolling update has no surge left
    MAX_UNAVAILABLE = "max-unavailable"  # the rolling update has no unavailability left
    DRAINING = "draining"  # DRAINING: our task stops once the instance's other tasks are gone


class Verdict(enum.Enum):
    """The next state of the environment's deployment in progress, as this pass sees it."""

    UNCHANGED = "unchanged"  # no deployment in progress, or it goes on as it is
    RUNNING = "running"  # a pending deployment has begun (v0.3: pending → running)
    COMPLETED = "completed"  # every eligible instance runs an available target task, no old one
    FAILED = "failed"  # no progress within progressDeadlineSeconds
    ROLLBACK = "rollback"  # failed, and the policy asks for an automatic rollback


@dataclass(frozen=True, slots=True)
class Start:
    """Start one task of `revision` on a container instance."""

    container_instance_arn: str
    revision: int
    reason: StartReason


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop one task of the environment."""

    task_arn: str
    reason: StopReason


@dataclass(frozen=True, slots=True)
class Wait:
    """An instance (None: the whole environment) that waits, and for what."""

    container_instance_arn: str | None
    reason: WaitReason


@dataclass(frozen=True, slots=True)
class Plan:
    """One planning pass's decision for one environment."""

    starts: tuple[Start, ...]
    stops: tuple[Stop, ...]
    waits: tuple[Wait, ...]
    status: DaemonStatus
    verdict: Verdict
    wait_until: datetime | None = None  # plan again by then even if nothing is observed

    @property
    def is_idle(self) -> bool:
        """Nothing to do and nothing awaited (a deleted environment's cleanup is finished)."""
        return not (self.starts or self.stops or self.waits)
