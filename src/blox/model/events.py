"""ECS state-change events as they arrive in an SQS message body (an EventBridge envelope).

`parse(body)` returns a `TaskEvent` or an `InstanceEvent`, or raises `EventInvalid` (poison:
the poller dead-letters it). Callers: `blox.css.processor`, fed by `blox.css.ingest`.
Rules (shared/fixtures/ecs-events/README.md): the cluster comes from `detail.clusterArn`, never
from the resource ARN; `detail.version` orders the changes of one entity; unknown fields are
tolerated and `detail` is kept whole for storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from blox.model import arn
from blox.model.errors import ArnInvalid, EventInvalid

__all__ = [
    "INSTANCE_DETAIL_TYPE",
    "SOURCE",
    "TASK_DETAIL_TYPE",
    "Event",
    "EventInvalid",
    "InstanceEvent",
    "TaskEvent",
    "parse",
]

SOURCE = "aws.ecs"
TASK_DETAIL_TYPE = "ECS Task State Change"
INSTANCE_DETAIL_TYPE = "ECS Container Instance State Change"


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A task state change: the task `arn` of `cluster_arn` reached `version`."""

    KIND: ClassVar[Literal["task"]] = "task"
    account: str
    region: str
    cluster_arn: str
    arn: str
    version: int
    detail: dict[str, Any] = field(hash=False)
    time: datetime | None = None

    @property
    def kind(self) -> Literal["task"]:
        """The record kind this event updates."""
        return self.KIND


@dataclass(frozen=True, slots=True)
class InstanceEvent:
    """A container instance state change: instance `arn` of `cluster_arn` reached `version`."""

    KIND: ClassVar[Literal["instance"]] = "instance"
    account: str
    region: str
    cluster_arn: str
    arn: str
    version: int
    detail: dict[str, Any] = field(hash=False)
    time: datetime | None = None

    @property
    def kind(self) -> Literal["instance"]:
        """The record kind this event updates."""
        return self.KIND


Event = TaskEvent | InstanceEvent

# detail-type → (event class, the detail field holding the entity ARN, its ARN resource type)
_KINDS: dict[str, tuple[type[TaskEvent] | type[InstanceEvent], str, str]] = {
    TASK_DETAIL_TYPE: (TaskEvent, "taskArn", "task"),
    INSTANCE_DETAIL_TYPE: (InstanceEvent, "containerInstanceArn", "container-instance"),
}


def parse(body: str, *, accounts: frozenset[str] | None = None) -> Event:
    """The event in an SQS message `body`; raise EventInvalid naming the problem.

    accounts: the AWS account ids whose clusters may be written (None: any account).
    """
    envelope = _load(body)
    if envelope.get("source") != SOURCE:
        raise EventInvalid(f"source is {envelope.get('source')!r}, not {SOURCE!r}")
    detail_type = envelope.get("detail-type")
    if not isinstance(detail_type, str) or detail_type not in _KINDS:
        raise EventInvalid(f"unknown detail-type {detail_type!r}")
    cls, arn_field, resource_type = _KINDS[detail_type]
    account = _optional_string(envelope, "account")
    region = _optional_string(envelope, "region")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise EventInvalid(f"detail is missing or not an object in a {detail_type!r} event")
    version = detail.get("version")
    if type(version) is not int or version < 0:
        raise EventInvalid(f"detail.version {version!r} is not a non-negative integer")
    cluster = _arn(detail, "clusterArn", "cluster")
    entity = _arn(detail, arn_field, resource_type)
    # moto's EventBridge drops `account` on the way to SQS; AWS always sends both. Absent, they
    # are the cluster's own (the ARN is the authority anyway); present, they must agree.
    account, region = account or cluster.account, region or cluster.region
    _check_owner(cluster=cluster, entity=entity, account=account, region=region)
    if accounts is not None and cluster.account not in accounts:
        raise EventInvalid(f"account {cluster.account} is not in the allowed accounts")
    return cls(
        account=account,
        region=region,
        cluster_arn=detail["clusterArn"],
        arn=detail[arn_field],
        version=version,
        detail=detail,
        time=_time(envelope),
    )


def _load(body: str) -> dict[str, Any]:
    try:
        envelope = json.loads(body)
    except (TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise EventInvalid(f"the message body is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise EventInvalid(f"the message body is a JSON {type(envelope).__name__}, not an object")
    return envelope


def _string(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise EventInvalid(f"{where}{name} is missing or not a non-empty string")
    return value


def _optional_string(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise EventInvalid(f"{name} is not a non-empty string")
    return value


def _arn(detail: dict[str, Any], name: str, resource_type: str) -> arn.Arn:
    text = _string(detail, name, "detail.")
    try:
        parsed = arn.parse(text)
    except ArnInvalid as exc:
        raise EventInvalid(f"detail.{name}: {exc}") from exc
    if parsed.resource_type != resource_type:
        raise EventInvalid(f"detail.{name} {text!r} is not a {resource_type} ARN")
    return parsed


def _check_owner(*, cluster: arn.Arn, entity: arn.Arn, account: str, region: str) -> None:
    """The entity lives in the cluster, and the envelope speaks for the cluster's owner."""
    where = (cluster.partition, cluster.region, cluster.account)
    if (entity.partition, entity.region, entity.account) != where:
        raise EventInvalid(
            f"{arn.format(entity)} is not in the partition/region/account of {arn.format(cluster)}"
        )
    if entity.cluster is not None and entity.cluster != cluster.cluster:
        raise EventInvalid(f"{arn.format(entity)} names another cluster than {cluster.cluster}")
    if (account, region) != (cluster.account, cluster.region):
        raise EventInvalid(
            f"envelope account/region {account}/{region} do not match {arn.format(cluster)}"
        )


def _time(envelope: dict[str, Any]) -> datetime | None:
    """The envelope's `time` (whole seconds, UTC); None when absent, since nothing orders by it."""
    text = envelope.get("time")
    if text is None:
        return None
    if not isinstance(text, str):
        raise EventInvalid(f"time {text!r} is not a string")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise EventInvalid(f"time {text!r} is not an ISO-8601 timestamp") from exc
