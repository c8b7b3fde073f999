"""The daemon scheduler's v0.3 JSON (scheduler-swagger-v0.3.0.json), its additions, converters.

v0.3's fields keep their names and meaning: `Environment` {name, instanceGroup {cluster},
taskDefinition, deploymentToken, health}, `Deployment` {id, status, taskDefinition,
environmentName, failedInstances}, `CreateEnvironmentRequest`, pages `{"items": [...]}`.
Everything else is a blox-ecs addition that v0.3 clients ignore: revisions, pause, rollout
settings, attribute constraints, status counters, deployment revision / reason / times, and
the update and rollback requests. Serialise with `dump` (wire names, absent optionals left
out). Pure: the converters take `blox.model.daemon` values. Callers: `blox.scheduler.api`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from blox.model import daemon

__all__ = [
    "CreateEnvironmentRequest",
    "DeploymentPublic",
    "DeploymentsPage",
    "EnvironmentCreate",
    "EnvironmentPublic",
    "EnvironmentUpdate",
    "EnvironmentsPage",
    "InstanceGroupCreate",
    "InstanceGroupPublic",
    "InstanceGroupUpdate",
    "MAX_CONSTRAINTS",
    "MAX_HISTORY_LIMIT",
    "NAME_PATTERN",
    "RevisionPublic",
    "RevisionsPage",
    "RollbackRequest",
    "RolloutPublic",
    "RolloutSettings",
    "StatusPublic",
    "deployment_public",
    "dump",
    "environment_public",
    "revision_public",
    "rollout_public",
    "timestamp",
]

NAME_PATTERN = r"^[a-zA-Z0-9-_]{1,30}$"  # v0.3's, verbatim
MAX_CONSTRAINTS = 10  # ECS allows 10 placement constraints per task
MAX_HISTORY_LIMIT = 100
MAX_MIN_READY_S = 86_400.0
MAX_PROGRESS_DEADLINE_S = 7 * 86_400.0
REF_MAX = 1600  # an ARN is at most 1600 characters (AWS)

DeploymentState = Literal["pending", "running", "completed", "failed", "rolled_back", "superseded"]
ShareText = StrictInt | StrictStr


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


# -- responses -----------------------------------------------------------------------------


class InstanceGroupPublic(_Wire):
    """Where the daemon runs: the cluster ARN and (blox-ecs) the attribute constraints."""

    cluster: str
    constraints: list[str] | None = None


class RolloutPublic(_Wire):
    """How a new revision replaces the old (blox-ecs); a share is a count or "N%"."""

    max_unavailable: int | str
    max_surge: int | str
    min_ready_seconds: float
    progress_deadline_seconds: float
    auto_rollback: bool


class StatusPublic(_Wire):
    """What the controller last observed, as a DaemonSet's status (blox-ecs; all optional)."""

    desired: int | None = None
    current: int | None = None
    ready: int | None = None
    updated: int | None = None
    available: int | None = None
    unavailable: int | None = None
    misscheduled: int | None = None
    current_revision: int | None = None
    target_revision: int | None = None
    reason: str | None = None
    observed_at: str | None = None


class EnvironmentPublic(_Wire):
    """v0.3 `Environment`; `deploymentToken` is the current revision's (it changes with each)."""

    name: str
    instance_group: InstanceGroupPublic
    task_definition: str
    deployment_token: str
    health: Literal["healthy", "unhealthy"]
    revision: int | None = None
    target_revision: int | None = None
    paused: bool | None = None
    rollout: RolloutPublic | None = None
    history_limit: int | None = None
    active_deployment: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    status: StatusPublic | None = None


class EnvironmentsPage(_Wire):
    """v0.3 `Environments`."""

    items: list[EnvironmentPublic]


class DeploymentPublic(_Wire):
    """v0.3 `Deployment`; blox-ecs adds the final statuses failed, rolled_back, superseded."""

    id: str
    status: DeploymentState
    task_definition: str
    environment_name: str
    failed_instances: list[str]
    revision: int | None = None
    reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None


class DeploymentsPage(_Wire):
    """v0.3 `Deployments`, newest first."""

    items: list[DeploymentPublic]


class RevisionPublic(_Wire):
    """One kept revision of an environment (blox-ecs)."""

    revision: int
    task_definition: str
    instance_group: InstanceGroupPublic
    rollout: RolloutPublic
    deployment_token: str
    created_at: str | None = None
    rolled_back_from: int | None = None


class RevisionsPage(_Wire):
    """The kept revisions of an environment, newest first (blox-ecs)."""

    items: list[RevisionPublic]


# -- requests ------------------------------------------------------------------------------


class InstanceGroupCreate(_Wire):
    """The cluster by name or ARN; constraints such as `attribute:stack == prod` (blox-ecs)."""

    cluster: str = Field(max_length=REF_MAX)
    constraints: list[str] | None = Field(default=None, max_length=MAX_CONSTRAINTS)


class InstanceGroupUpdate(_Wire):
    """An update's instance group: the cluster may be named again but not changed."""

    cluster: str | None = Field(default=None, max_length=REF_MAX)
    constraints: list[str] | None = Field(default=None, max_length=MAX_CONSTRAINTS)


class RolloutSettings(_Wire):
    """Rollout settings to set; those left out keep their value (defaults on create)."""

    max_unavailable: ShareText | None = None
    max_surge: ShareText | None = None
    min_ready_seconds: float | None = Field(
        default=None, ge=0, le=MAX_MIN_READY_S, allow_inf_nan=False
    )
    progress_deadline_seconds: float | None = Field(
        default=None, gt=0, le=MAX_PROGRESS_DEADLINE_S, allow_inf_nan=False
    )
    auto_rollback: bool | None = None


class EnvironmentCreate(_Wire):
    """v0.3 `CreateEnvironmentRequest` plus optional rollout settings and history limit."""

    name: str = Field(pattern=NAME_PATTERN)
    instance_group: InstanceGroupCreate
    task_definition: str = Field(min_length=1, max_length=REF_MAX)
    rollout: RolloutSettings | None = None
    history_limit: int | None = Field(default=None, ge=1, le=MAX_HISTORY_LIMIT)


CreateEnvironmentRequest = EnvironmentCreate  # v0.3's name for it


class EnvironmentUpdate(_Wire):
    """A change that makes a new revision (blox-ecs): only the fields given change."""

    task_definition: str | None = Field(default=None, min_length=1, max_length=REF_MAX)
    instance_group: InstanceGroupUpdate | None = None
    rollout: RolloutSettings | None = None
    history_limit: int | None = Field(default=None, ge=1, le=MAX_HISTORY_LIMIT)


class RollbackRequest(_Wire):
    """Roll back to `revision`, or to the one before the current revision when left out."""

    revision: int | None = Field(default=None, ge=1)


# -- converters ----------------------------------------------------------------------------


def dump(model: BaseModel) -> bytes:
    """The JSON of `model`: wire names, absent optional fields left out."""
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


def timestamp(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, as ECS writes times; None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _share(share: daemon.Share) -> int | str:
    return str(share) if share.percent else share.value


def rollout_public(policy: daemon.RolloutPolicy) -> RolloutPublic:
    """The wire form of a rollout policy."""
    return RolloutPublic(
        max_unavailable=_share(policy.max_unavailable),
        max_surge=_share(policy.max_surge),
        min_ready_seconds=policy.min_ready_s,
        progress_deadline_seconds=policy.progress_deadline_s,
        auto_rollback=policy.auto_rollback,
    )


def _instance_group(revision: daemon.Revision) -> InstanceGroupPublic:
    constraints = [str(c) for c in revision.constraints] or None
    return InstanceGroupPublic(cluster=revision.cluster_arn, constraints=constraints)


def environment_public(
    environment: daemon.Environment,
    *,
    target_revision: int | None = None,
    status: StatusPublic | None = None,
) -> EnvironmentPublic:
    """v0.3 `Environment` of `environment` at its current revision, with the additions."""
    revision = environment.revision
    return EnvironmentPublic(
        name=environment.name,
        instance_group=_instance_group(revision),
        task_definition=revision.task_definition,
        deployment_token=revision.deployment_token,
        health=environment.health,
        revision=revision.number,
        target_revision=target_revision,
        paused=environment.paused,
        rollout=rollout_public(revision.rollout),
        history_limit=environment.history_limit,
        active_deployment=environment.active_deployment,
        created_at=timestamp(environment.created_at),
        updated_at=timestamp(environment.updated_at),
        status=status,
    )


def deployment_public(deployment: daemon.Deployment) -> DeploymentPublic:
    """v0.3 `Deployment` of `deployment`, with the additions."""
    return DeploymentPublic(
        id=deployment.id,
        status=deployment.status.value,
        task_definition=deployment.task_definition,
        environment_name=deployment.environment_name,
        failed_instances=list(deployment.failed_instances),
        revision=deployment.revision,
        reason=deployment.reason,
        created_at=timestamp(deployment.created_at),
        updated_at=timestamp(deployment.updated_at),
        finished_at=timestamp(deployment.finished_at),
    )


def revision_public(revision: daemon.Revision) -> RevisionPublic:
    """One revision as the revisions routes show it."""
    return RevisionPublic(
        revision=revision.number,
        task_definition=revision.task_definition,
        instance_group=_instance_group(revision),
        rollout=rollout_public(revision.rollout),
        deployment_token=revision.deployment_token,
        created_at=timestamp(revision.created_at),
        rolled_back_from=revision.rolled_back_from,
    )
