"""The daemon scheduler's domain values: environments, revisions, rollout policies, deployments.

An `Environment` is one daemon: a task definition on every matching container instance of a
cluster. Each change of what it runs or how it rolls out is a new `Revision` (numbered from 1,
with a fresh deployment token: v0.3's token never changed, so an environment could be deployed
only once). A `Deployment` rolls one revision out; at most one is in progress per environment.
Pure values, shared by the store layer, the planner, the API and the SDK.

Assumptions / Invariants:
- A revision is immutable once written; a rollback writes a new revision that copies an old
  one (as Kubernetes does), so revision numbers only grow.
- `RolloutPolicy.max_unavailable` / `max_surge` are a count or a percentage of the desired
  instances; as in Kubernetes, a percentage of maxUnavailable rounds down, of maxSurge up, and
  when both come to 0, one instance may be unavailable (a rollout always moves).
- Attribute constraints are ECS's own attributes (`ecs.os-type`, custom `stack`, …) of a
  container instance; every constraint of a revision must hold for an instance to be chosen.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from blox.model.errors import DaemonInvalid

__all__ = [
    "ENVIRONMENT_NAME",
    "Constraint",
    "Deployment",
    "DeploymentStatus",
    "Environment",
    "Revision",
    "RolloutPolicy",
    "Share",
    "parse_constraint",
    "parse_share",
]

# v0.3: `^[a-zA-Z0-9-_]{1,30}$`.
ENVIRONMENT_NAME = re.compile(r"[a-zA-Z0-9_-]{1,30}", re.ASCII)
_SHARE = re.compile(r"([0-9]{1,9})(%?)", re.ASCII)
# `attribute:<name> == <value>`, `attribute:<name> != <value>`, `attribute:<name> exists`.
_CONSTRAINT = re.compile(
    r"\s*attribute:([A-Za-z0-9_.\-/]{1,128})\s*(?:(==|!=)\s*([^\s]{1,128})|(exists))\s*",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class Share:
    """A count (`5`) or a percentage (`10%`) of the desired instances."""

    value: int
    percent: bool = False

    def of(self, total: int, *, round_up: bool) -> int:
        """The count this share is of `total` instances."""
        if not self.percent:
            return self.value
        exact = total * self.value / 100
        return math.ceil(exact) if round_up else math.floor(exact)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


def parse_share(text: str | int, what: str) -> Share:
    """`text` as a Share: a non-negative integer or a percentage 0%..100%."""
    if isinstance(text, bool):
        raise DaemonInvalid(f"{what} must be a count or a percentage, got {text!r}")
    match = _SHARE.fullmatch(str(text).strip())
    if match is None:
        raise DaemonInvalid(f"{what} must be a count or a percentage such as 10%, got {text!r}")
    value, percent = int(match[1]), match[2] == "%"
    if percent and value > 100:
        raise DaemonInvalid(f"{what} must not exceed 100%, got {text!r}")
    return Share(value, percent)


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """How a revision replaces the previous one (Kubernetes' DaemonSet RollingUpdate, plus ECS's
    deployment circuit breaker as `auto_rollback`)."""

    max_unavailable: Share = Share(1)
    max_surge: Share = Share(0)
    min_ready_s: float = 0.0
    progress_deadline_s: float = 600.0
    auto_rollback: bool = False

    def __post_init__(self) -> None:
        if self.min_ready_s < 0:
            raise DaemonInvalid(f"minReadySeconds must not be negative, got {self.min_ready_s}")
        if self.progress_deadline_s <= 0:
            raise DaemonInvalid(
                f"progressDeadlineSeconds must be positive, got {self.progress_deadline_s}"
            )

    def budget(self, desired: int) -> tuple[int, int]:
        """(max unavailable, max surge) as counts for `desired` instances; never both 0."""
        unavailable = self.max_unavailable.of(desired, round_up=False)
        surge = self.max_surge.of(desired, round_up=True)
        if unavailable == 0 and surge == 0:
            unavailable = 1
        return unavailable, surge


@dataclass(frozen=True, slots=True)
class Constraint:
    """One ECS attribute condition a container instance must meet."""

    attribute: str
    op: Literal["==", "!=", "exists"]
    value: str | None = None

    def holds(self, attributes: dict[str, str | None]) -> bool:
        """Whether an instance with these attributes (name → value or None) meets it."""
        if self.op == "exists":
            return self.attribute in attributes
        present = attributes.get(self.attribute)
        if self.op == "==":
            return self.attribute in attributes and present == self.value
        return present != self.value  # an instance without the attribute differs from it

    def __str__(self) -> str:
        if self.op == "exists":
            return f"attribute:{self.attribute} exists"
        return f"attribute:{self.attribute} {self.op} {self.value}"


def parse_constraint(text: str) -> Constraint:
    """`attribute:stack == prod`, `attribute:stack != test` or `attribute:gpu exists`."""
    match = _CONSTRAINT.fullmatch(text)
    if match is None:
        raise DaemonInvalid(
            f"constraint {text!r} must look like 'attribute:NAME == VALUE', "
            "'attribute:NAME != VALUE' or 'attribute:NAME exists'"
        )
    if match[4]:
        return Constraint(match[1], "exists")
    return Constraint(match[1], match[2], match[3])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Revision:
    """What an environment runs and how it rolls out, as of one numbered change."""

    number: int
    task_definition: str  # a task definition ARN
    cluster_arn: str
    constraints: tuple[Constraint, ...] = ()
    rollout: RolloutPolicy = RolloutPolicy()
    deployment_token: str = ""  # the token a deployment of this revision must quote
    created_at: datetime | None = None
    rolled_back_from: int | None = None  # the revision this one undid, when it is a rollback

    def selects(self, attributes: dict[str, str | None]) -> bool:
        """Whether an instance with these attributes is one this revision runs on."""
        return all(c.holds(attributes) for c in self.constraints)


class DeploymentStatus(enum.Enum):
    """v0.3's pending / running / completed, and blox-ecs's ends of a rollout that did not."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # the progress deadline passed
    ROLLED_BACK = "rolled_back"  # failed, and a rollback deployment replaced it
    SUPERSEDED = "superseded"  # a later deployment took over before this one finished

    @property
    def in_progress(self) -> bool:
        """Whether the deployment still moves instances (at most one per environment)."""
        return self in (DeploymentStatus.PENDING, DeploymentStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One rollout of `revision` of an environment."""

    id: str  # a lower-case UUID
    environment_name: str
    revision: int
    task_definition: str
    token: str  # the deploymentToken it quoted
    status: DeploymentStatus = DeploymentStatus.PENDING
    failed_instances: tuple[str, ...] = ()
    reason: str | None = None  # why it ended as it did, or what it waits for
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """One daemon: its current (latest) revision and whether it is paused or being deleted."""

    name: str
    revision: Revision
    paused: bool = False
    deleting: bool = False  # deleted by the user: its tasks are being stopped
    health: Literal["healthy", "unhealthy"] = "healthy"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    history_limit: int = 10  # how many old revisions are kept
    active_deployment: str | None = field(default=None)  # id of the deployment in progress

    def __post_init__(self) -> None:
        if not ENVIRONMENT_NAME.fullmatch(self.name):
            raise DaemonInvalid(
                f"environment name {self.name!r} must be 1-30 letters, digits, '-' or '_'"
            )
        if self.history_limit < 1:
            raise DaemonInvalid(f"revision history limit must be >= 1, got {self.history_limit}")
