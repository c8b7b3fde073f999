"""The cluster state service's v0.3 JSON (css-swagger-v0.3.0.json) and converters to it, pure.

Python names are snake_case; the aliases are v0.3's wire names with their odd capitalisation
(`clusterARN`, `EC2InstanceID`, `containerARN`, but `taskRoleArn`). Serialise with `dump`
(by alias, empties left out). `task_public` / `instance_public` turn a stored record (its ECS
event `detail`, as received) into these models; resources become `{"name", "type", "value"}`
with the value as a string. Callers: `blox.css.api` (and, later, the streams).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from blox.model import ecs

__all__ = [
    "ContainerInstanceAttributePublic",
    "ContainerInstanceDetailPublic",
    "ContainerInstancePublic",
    "ContainerInstanceResourcePublic",
    "ContainerInstanceVersionInfoPublic",
    "ContainerInstancesPage",
    "MetadataPublic",
    "TaskContainerOverridePublic",
    "TaskContainerPublic",
    "TaskDetailPublic",
    "TaskEnvironmentPublic",
    "TaskNetworkBindingPublic",
    "TaskOverridePublic",
    "TaskPublic",
    "TasksPage",
    "dump",
    "instance_public",
    "resource_value",
    "task_public",
]


class _Wire(BaseModel):
    model_config = ConfigDict(
        # extra="ignore": an older SDK must read a newer server's additions.
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )


class MetadataPublic(_Wire):
    """`metadata`: the store revision at which the record last changed, as a decimal string."""

    entity_version: str


class TaskNetworkBindingPublic(_Wire):
    """One host port bound by a container."""

    bind_ip: str = Field(validation_alias="bindIP", serialization_alias="bindIP")
    container_port: int
    host_port: int
    protocol: str | None = None


class TaskContainerPublic(_Wire):
    """One container of a task."""

    container_arn: str = Field(validation_alias="containerARN", serialization_alias="containerARN")
    exit_code: int | None = None
    last_status: str
    name: str
    network_bindings: list[TaskNetworkBindingPublic] | None = None
    reason: str | None = None


class TaskEnvironmentPublic(_Wire):
    """One environment variable of a container override."""

    name: str
    value: str


class TaskContainerOverridePublic(_Wire):
    """The overrides of one container."""

    command: list[str] | None = None
    environment: list[TaskEnvironmentPublic] | None = None
    name: str


class TaskOverridePublic(_Wire):
    """The task's overrides; `taskRoleArn` is spelled in lower case, unlike the other ARNs."""

    container_overrides: list[TaskContainerOverridePublic]
    task_role_arn: str | None = None


class TaskDetailPublic(_Wire):
    """`entity` of a task; `containerInstanceARN` is left out for Fargate tasks (none exists)."""

    cluster_arn: str = Field(validation_alias="clusterARN", serialization_alias="clusterARN")
    container_instance_arn: str | None = Field(
        default=None,
        validation_alias="containerInstanceARN",
        serialization_alias="containerInstanceARN",
    )
    containers: list[TaskContainerPublic]
    created_at: str
    desired_status: str
    last_status: str
    overrides: TaskOverridePublic
    started_at: str | None = None
    started_by: str | None = None
    stopped_at: str | None = None
    stopped_reason: str | None = None
    task_arn: str = Field(validation_alias="taskARN", serialization_alias="taskARN")
    task_definition_arn: str = Field(
        validation_alias="taskDefinitionARN", serialization_alias="taskDefinitionARN"
    )
    # blox-ecs additions (v0.3 clients ignore them): what the daemon scheduler plans with.
    group: str | None = None
    health_status: str | None = None
    version: int | None = None  # ECS's own version of the task (detail.version)


class TaskPublic(_Wire):
    """v0.3 `Task`: `{"metadata": {...}, "entity": TaskDetail}`."""

    metadata: MetadataPublic
    entity: TaskDetailPublic


class TasksPage(_Wire):
    """v0.3 `Tasks`; `nextToken` (a blox-ecs addition) only when `maxResults` cut the list."""

    items: list[TaskPublic]
    next_token: str | None = None


class ContainerInstanceAttributePublic(_Wire):
    """One attribute; `value` is left out when ECS sent none (most capabilities)."""

    name: str
    value: str | None = None


class ContainerInstanceResourcePublic(_Wire):
    """One resource, its value always a string (see `resource_value`)."""

    name: str
    type: str
    value: str


class ContainerInstanceVersionInfoPublic(_Wire):
    """Agent and Docker versions of an instance."""

    agent_hash: str | None = None
    agent_version: str | None = None
    docker_version: str | None = None


class ContainerInstanceDetailPublic(_Wire):
    """`entity` of a container instance."""

    agent_connected: bool
    agent_update_status: str | None = None
    attributes: list[ContainerInstanceAttributePublic] | None = None
    cluster_arn: str = Field(validation_alias="clusterARN", serialization_alias="clusterARN")
    container_instance_arn: str = Field(
        validation_alias="containerInstanceARN", serialization_alias="containerInstanceARN"
    )
    ec2_instance_id: str | None = Field(
        default=None, validation_alias="EC2InstanceID", serialization_alias="EC2InstanceID"
    )
    registered_resources: list[ContainerInstanceResourcePublic]
    remaining_resources: list[ContainerInstanceResourcePublic]
    status: str
    version_info: ContainerInstanceVersionInfoPublic
    # blox-ecs additions (v0.3 clients ignore them).
    running_tasks_count: int | None = None
    pending_tasks_count: int | None = None
    version: int | None = None  # ECS's own version of the instance (detail.version)


class ContainerInstancePublic(_Wire):
    """v0.3 `ContainerInstance`: `{"metadata": {...}, "entity": ContainerInstanceDetail}`."""

    metadata: MetadataPublic
    entity: ContainerInstanceDetailPublic


class ContainerInstancesPage(_Wire):
    """v0.3 `ContainerInstances`; `nextToken` as in `TasksPage`."""

    items: list[ContainerInstancePublic]
    next_token: str | None = None


def dump(model: BaseModel) -> bytes:
    """The v0.3 JSON of `model`: wire names, absent optional fields left out."""
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


def task_public(record: ecs.Record, mod_revision: int) -> TaskPublic:
    """The v0.3 `Task` of a stored task record last changed at store revision `mod_revision`."""
    d = record.detail
    overrides = _dict(d.get("overrides"))
    return TaskPublic(
        metadata=MetadataPublic(entity_version=str(mod_revision)),
        entity=TaskDetailPublic(
            cluster_arn=_text(d.get("clusterArn")) or record.cluster_arn,
            container_instance_arn=_text(d.get("containerInstanceArn")),
            containers=[_container(c) for c in _dicts(d.get("containers"))],
            created_at=_time(d.get("createdAt")) or "",
            desired_status=_text(d.get("desiredStatus")) or "",
            last_status=_text(d.get("lastStatus")) or "",
            overrides=TaskOverridePublic(
                container_overrides=[
                    _container_override(o) for o in _dicts(overrides.get("containerOverrides"))
                ],
                task_role_arn=_text(overrides.get("taskRoleArn")),
            ),
            started_at=_time(d.get("startedAt")),
            started_by=_text(d.get("startedBy")),
            stopped_at=_time(d.get("stoppedAt")),
            stopped_reason=_text(d.get("stoppedReason")),
            task_arn=_text(d.get("taskArn")) or record.arn,
            task_definition_arn=_text(d.get("taskDefinitionArn")) or "",
            group=_text(d.get("group")),
            health_status=_text(d.get("healthStatus")),
            version=record.version,
        ),
    )


def instance_public(record: ecs.Record, mod_revision: int) -> ContainerInstancePublic:
    """The v0.3 `ContainerInstance` of a stored instance record (see `task_public`)."""
    d = record.detail
    version_info = _dict(d.get("versionInfo"))
    return ContainerInstancePublic(
        metadata=MetadataPublic(entity_version=str(mod_revision)),
        entity=ContainerInstanceDetailPublic(
            agent_connected=d.get("agentConnected") is True,
            agent_update_status=_text(d.get("agentUpdateStatus")),
            attributes=[
                ContainerInstanceAttributePublic(
                    name=_text(a.get("name")) or "", value=_text(a.get("value"))
                )
                for a in _dicts(d.get("attributes"))
            ]
            or None,
            cluster_arn=_text(d.get("clusterArn")) or record.cluster_arn,
            container_instance_arn=_text(d.get("containerInstanceArn")) or record.arn,
            ec2_instance_id=_text(d.get("ec2InstanceId")),
            registered_resources=[_resource(r) for r in _dicts(d.get("registeredResources"))],
            remaining_resources=[_resource(r) for r in _dicts(d.get("remainingResources"))],
            status=_text(d.get("status")) or "",
            version_info=ContainerInstanceVersionInfoPublic(
                agent_hash=_text(version_info.get("agentHash")),
                agent_version=_text(version_info.get("agentVersion")),
                docker_version=_text(version_info.get("dockerVersion")),
            ),
            running_tasks_count=_count(d.get("runningTasksCount")),
            pending_tasks_count=_count(d.get("pendingTasksCount")),
            version=record.version,
        ),
    )


def resource_value(resource: dict[str, Any]) -> str:
    """An ECS resource's value as v0.3 wrote it: INTEGER/LONG digits, DOUBLE two decimals,
    STRINGSET joined with commas; "" when the typed value is missing or malformed."""
    kind = resource.get("type")
    if kind in ("INTEGER", "LONG"):
        value = resource.get("integerValue" if kind == "INTEGER" else "longValue")
        return str(value) if type(value) is int else ""
    if kind == "DOUBLE":
        number = resource.get("doubleValue")
        is_number = isinstance(number, int | float) and not isinstance(number, bool)
        return f"{number:.2f}" if is_number else ""
    if kind == "STRINGSET":
        return ",".join(s for s in _list(resource.get("stringSetValue")) if isinstance(s, str))
    return ""


def _container(c: dict[str, Any]) -> TaskContainerPublic:
    exit_code = c.get("exitCode")
    bindings = [
        TaskNetworkBindingPublic(
            bind_ip=_text(b.get("bindIP")) or "",
            container_port=_int(b.get("containerPort")),
            host_port=_int(b.get("hostPort")),
            protocol=_text(b.get("protocol")),
        )
        for b in _dicts(c.get("networkBindings"))
    ]
    return TaskContainerPublic(
        container_arn=_text(c.get("containerArn")) or "",
        exit_code=exit_code if type(exit_code) is int else None,
        last_status=_text(c.get("lastStatus")) or "",
        name=_text(c.get("name")) or "",
        network_bindings=bindings or None,
        reason=_text(c.get("reason")),
    )


def _container_override(o: dict[str, Any]) -> TaskContainerOverridePublic:
    command = [s for s in _list(o.get("command")) if isinstance(s, str)]
    environment = [
        TaskEnvironmentPublic(name=_text(e.get("name")) or "", value=_text(e.get("value")) or "")
        for e in _dicts(o.get("environment"))
    ]
    return TaskContainerOverridePublic(
        command=command or None, environment=environment or None, name=_text(o.get("name")) or ""
    )


def _resource(r: dict[str, Any]) -> ContainerInstanceResourcePublic:
    return ContainerInstanceResourcePublic(
        name=_text(r.get("name")) or "", type=_text(r.get("type")) or "", value=resource_value(r)
    )


def _text(value: object) -> str | None:
    """A non-empty string, else None (v0.3 left empty optional strings out)."""
    return value if isinstance(value, str) and value else None


def _time(value: object) -> str | None:
    """Timestamps stay the strings ECS sent; epoch seconds (DescribeTasks) become ISO-8601."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return None
    return _text(value)


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in _list(value) if isinstance(item, dict)]
