"""Container instances: registered and remaining resources, attributes, status, agent link.

Resources are typed as ECS shows them: CPU and MEMORY are `integerValue`, PORTS and PORTS_UDP
`stringSetValue`. Registered PORTS are the agent's reserved ports; a task's static host ports
appear only in `remainingResources` (see shared/fixtures/ecs-events/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blox.sim.state.paging import SeqIndex
from blox.sim.state.task_definitions import TaskDefinition

RESERVED_PORTS = ("22", "2375", "2376", "51678", "51679")
CUSTOM_ATTRIBUTES_MAX = 10
CAPABILITIES = (
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "com.amazonaws.ecs.capability.docker-remote-api.1.32",
    "com.amazonaws.ecs.capability.privileged-container",
    "com.amazonaws.ecs.capability.ecr-auth",
    "com.amazonaws.ecs.capability.task-iam-role",
    "ecs.capability.container-health-check",
    "ecs.capability.task-cpu-mem-limit",
)


def default_attributes(*, instance_type: str, zone: str, ami_id: str) -> dict[str, str | None]:
    """The attributes an ECS agent registers with, name to value (None: no value)."""
    attributes: dict[str, str | None] = dict.fromkeys(CAPABILITIES)
    attributes.update(
        {
            "ecs.os-type": "linux",
            "ecs.os-family": "LINUX",
            "ecs.cpu-architecture": "x86_64",
            "ecs.instance-type": instance_type,
            "ecs.availability-zone": zone,
            "ecs.ami-id": ami_id,
        }
    )
    return attributes


def is_custom(name: str) -> bool:
    """Attributes outside the agent's namespaces count against the limit of 10."""
    return not name.startswith(("ecs.", "com.amazonaws.ecs."))


def _integer(name: str, value: int) -> dict[str, Any]:
    return {"name": name, "type": "INTEGER", "integerValue": value}


def _string_set(name: str, values: Iterator[str] | list[str]) -> dict[str, Any]:
    return {"name": name, "type": "STRINGSET", "stringSetValue": list(values)}


@dataclass(slots=True)
class ContainerInstance:
    """One registered EC2 instance and what is left of it."""

    seq: int
    arn: str
    cluster_arn: str
    ec2_instance_id: str
    registered_at: datetime
    registered_cpu: int
    registered_memory: int
    reserved_tcp: tuple[str, ...]
    reserved_udp: tuple[str, ...]
    attributes: dict[str, str | None]
    version_info: dict[str, str]
    remaining_cpu: int = 0
    remaining_memory: int = 0
    used_tcp: set[str] = field(default_factory=set)
    used_udp: set[str] = field(default_factory=set)
    status: str = "ACTIVE"
    agent_connected: bool = True
    running_count: int = 0
    pending_count: int = 0
    version: int = 1

    @property
    def zone(self) -> str | None:
        """The instance's availability zone attribute."""
        return self.attributes.get("ecs.availability-zone")

    def fit_failure(self, definition: TaskDefinition) -> str | None:
        """Why a task of `definition` does not fit here (ECS reason), or None if it fits."""
        if definition.cpu > self.remaining_cpu:
            return "RESOURCE:CPU"
        if definition.memory > self.remaining_memory:
            return "RESOURCE:MEMORY"
        if not definition.tcp_ports.isdisjoint(
            self.used_tcp
        ) or not definition.tcp_ports.isdisjoint(self.reserved_tcp):
            return "RESOURCE:PORTS"
        if not definition.udp_ports.isdisjoint(self.used_udp):
            return "RESOURCE:PORTS_UDP"
        return None

    def reserve(self, definition: TaskDefinition) -> None:
        """Take a task's resources (on placement)."""
        self.remaining_cpu -= definition.cpu
        self.remaining_memory -= definition.memory
        self.used_tcp |= definition.tcp_ports
        self.used_udp |= definition.udp_ports

    def release(self, definition: TaskDefinition) -> None:
        """Give a task's resources back (when it is STOPPED)."""
        self.remaining_cpu += definition.cpu
        self.remaining_memory += definition.memory
        self.used_tcp -= definition.tcp_ports
        self.used_udp -= definition.udp_ports

    def describe(self) -> dict[str, Any]:
        """The botocore `ContainerInstance` shape."""
        return {
            "containerInstanceArn": self.arn,
            "ec2InstanceId": self.ec2_instance_id,
            "version": self.version,
            "versionInfo": dict(self.version_info),
            "remainingResources": [
                _integer("CPU", self.remaining_cpu),
                _integer("MEMORY", self.remaining_memory),
                _string_set("PORTS", [*self.reserved_tcp, *sorted(self.used_tcp, key=int)]),
                _string_set("PORTS_UDP", [*self.reserved_udp, *sorted(self.used_udp, key=int)]),
            ],
            "registeredResources": [
                _integer("CPU", self.registered_cpu),
                _integer("MEMORY", self.registered_memory),
                _string_set("PORTS", list(self.reserved_tcp)),
                _string_set("PORTS_UDP", list(self.reserved_udp)),
            ],
            "status": self.status,
            "agentConnected": self.agent_connected,
            "runningTasksCount": self.running_count,
            "pendingTasksCount": self.pending_count,
            "attributes": [
                {"name": name} if value is None else {"name": name, "value": value}
                for name, value in self.attributes.items()
            ],
            "registeredAt": self.registered_at,
        }


class InstanceRegistry:
    """Container instances by ARN, with per-cluster status indexes for ListContainerInstances."""

    def __init__(self) -> None:
        self.by_arn: dict[str, ContainerInstance] = {}
        self.by_seq: dict[int, ContainerInstance] = {}
        self._indexes: dict[tuple[str, str], SeqIndex] = {}

    def index(self, cluster_arn: str, status: str) -> SeqIndex:
        """Instances of `cluster_arn` in `status` ("*": ACTIVE or DRAINING)."""
        key = (cluster_arn, status)
        found = self._indexes.get(key)
        if found is None:
            found = self._indexes[key] = SeqIndex()
        return found

    def add(self, instance: ContainerInstance) -> None:
        """Register a new instance in its indexes."""
        self.by_arn[instance.arn] = instance
        self.by_seq[instance.seq] = instance
        self.index(instance.cluster_arn, "*").add(instance.seq)
        self.index(instance.cluster_arn, instance.status).add(instance.seq)

    def restore(self, instance: ContainerInstance) -> None:
        """Put back an instance from a snapshot; an INACTIVE one is in no listing (`set_status`)."""
        if instance.status != "INACTIVE":
            self.add(instance)
            return
        self.by_arn[instance.arn] = instance
        self.by_seq[instance.seq] = instance

    def set_status(self, instance: ContainerInstance, status: str) -> None:
        """Move an instance between status indexes (INACTIVE leaves the listings)."""
        self.index(instance.cluster_arn, instance.status).discard(instance.seq)
        instance.status = status
        if status == "INACTIVE":
            self.index(instance.cluster_arn, "*").discard(instance.seq)
        else:
            self.index(instance.cluster_arn, status).add(instance.seq)

    def remove(self, instance: ContainerInstance) -> None:
        """Forget an INACTIVE instance entirely (retention over)."""
        self.by_arn.pop(instance.arn, None)
        self.by_seq.pop(instance.seq, None)

    def find(self, cluster_arn: str, ref: str) -> ContainerInstance | None:
        """The instance of `cluster_arn` named by full ARN or by its ID."""
        if not ref.startswith("arn:"):
            cluster_name = cluster_arn.rsplit("/", 1)[-1]
            prefix = cluster_arn.split(":cluster/")[0]
            ref = f"{prefix}:container-instance/{cluster_name}/{ref}"
        found = self.by_arn.get(ref)
        return found if found is not None and found.cluster_arn == cluster_arn else None

    def placeable(self, cluster_arn: str) -> list[ContainerInstance]:
        """ACTIVE instances of the cluster, in registration order."""
        seqs, _ = self.index(cluster_arn, "ACTIVE").page(after=0, limit=1 << 62)
        return [self.by_seq[s] for s in seqs]
