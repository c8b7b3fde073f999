"""ECS ARNs: parse and format, for every partition and both resource-id formats.

`arn:<partition>:ecs:<region>:<account>:<resource>`, where the resource is one of
`cluster/<name>`, `task-definition/<family>:<revision>`, and for tasks, container instances
and containers either the long format (since April 2021) that names the cluster,
`task/<cluster>/<id>`, `container-instance/<cluster>/<id>`, `container/<cluster>/<task id>/<id>`,
or the short one that does not, `task/<id>`, `container-instance/<id>`, `container/<id>`.
Partitions are `aws`, `aws-cn`, `aws-us-gov` and any other `aws-…` (the ISO regions).
Invariant: `format(parse(text)) == text` for every text that parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from blox.model.errors import ArnInvalid

__all__ = ["RESOURCE_TYPES", "Arn", "ArnInvalid", "ResourceType", "cluster_arn", "format", "parse"]

ResourceType = Literal["cluster", "task", "container-instance", "task-definition", "container"]
RESOURCE_TYPES: tuple[ResourceType, ...] = (
    "cluster",
    "task",
    "container-instance",
    "task-definition",
    "container",
)

PARTITION = r"aws(?:-[a-z]+)*"
REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
ACCOUNT = r"[0-9]{12}"
# ECS: "up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens".
NAME = r"[A-Za-z0-9_-]{1,255}"
# Resource ids: 32 hex (long format) or a UUID (short); v0.3 accepted `[\-\w]+`, as we do.
RESOURCE_ID = r"[A-Za-z0-9_-]{1,128}"
REVISION = r"[1-9][0-9]{0,9}"

_ARN = re.compile(
    rf"arn:(?P<partition>{PARTITION}):ecs:(?P<region>{REGION}):(?P<account>{ACCOUNT}):"
    r"(?P<type>[a-z-]+)/(?P<rest>.+)",
    re.ASCII,
)
_CLUSTER = re.compile(rf"(?P<cluster>{NAME})", re.ASCII)
_TASK_DEFINITION = re.compile(rf"(?P<id>{NAME}:{REVISION})", re.ASCII)
_IN_CLUSTER = re.compile(rf"(?:(?P<cluster>{NAME})/)?(?P<id>{RESOURCE_ID})", re.ASCII)
_CONTAINER = re.compile(
    rf"(?:(?P<cluster>{NAME})/(?P<task>{RESOURCE_ID})/)?(?P<id>{RESOURCE_ID})", re.ASCII
)


@dataclass(frozen=True, slots=True)
class Arn:
    """One parsed ECS ARN.

    `cluster` is the cluster name: set for clusters and long-format ARNs, None for short-format
    ARNs and task definitions. `resource_id` is the part after the cluster: the id, the cluster
    name for a cluster, `family:revision` for a task definition, `<task id>/<id>` for a
    long-format container.
    """

    partition: str
    region: str
    account: str
    resource_type: ResourceType
    cluster: str | None
    resource_id: str

    def __str__(self) -> str:
        return format(self)

    @property
    def is_long_format(self) -> bool:
        """Whether the ARN names its cluster (always true of cluster ARNs)."""
        return self.cluster is not None


def parse(text: str) -> Arn:
    """The ARN `text` spells; raise ArnInvalid naming the problem when it is not one."""
    if not isinstance(text, str):
        raise ArnInvalid(f"an ARN must be a string, not {type(text).__name__}")
    head = _ARN.fullmatch(text)
    if head is None:
        raise ArnInvalid(f"{text!r} is not an ECS ARN")
    kind, rest = head["type"], head["rest"]
    cluster: str | None
    if kind == "cluster" and (m := _CLUSTER.fullmatch(rest)):
        cluster, resource_id = m["cluster"], m["cluster"]
    elif kind == "task-definition" and (m := _TASK_DEFINITION.fullmatch(rest)):
        cluster, resource_id = None, m["id"]
    elif kind in ("task", "container-instance") and (m := _IN_CLUSTER.fullmatch(rest)):
        cluster, resource_id = m["cluster"], m["id"]
    elif kind == "container" and (m := _CONTAINER.fullmatch(rest)):
        cluster = m["cluster"]
        resource_id = f"{m['task']}/{m['id']}" if cluster else m["id"]
    elif kind in RESOURCE_TYPES:
        raise ArnInvalid(f"{text!r} has a malformed {kind} resource {rest!r}")
    else:
        raise ArnInvalid(f"{text!r} names an unknown ECS resource type {kind!r}")
    return Arn(
        partition=head["partition"],
        region=head["region"],
        account=head["account"],
        resource_type=cast(ResourceType, kind),  # one of RESOURCE_TYPES: checked above
        cluster=cluster,
        resource_id=resource_id,
    )


def format(value: Arn) -> str:
    """The text of `value`; the inverse of `parse`."""
    prefix = f"arn:{value.partition}:ecs:{value.region}:{value.account}:{value.resource_type}/"
    if value.resource_type == "cluster" or value.cluster is None:
        return prefix + value.resource_id
    return f"{prefix}{value.cluster}/{value.resource_id}"


def cluster_arn(*, partition: str, region: str, account: str, name: str) -> str:
    """The ARN of cluster `name`; raise ArnInvalid if any part is malformed."""
    text = f"arn:{partition}:ecs:{region}:{account}:cluster/{name}"
    parse(text)
    return text
