"""Task definitions: families, revisions, ACTIVE / INACTIVE, and what a task of each needs.

RegisterTaskDefinition keeps the container definitions as given (plus ECS's defaults) and
works out, once, the CPU, memory and static host ports (tcp and udp) a task reserves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blox.sim import errors

FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
LIST_PAGE_MAX = 100


@dataclass(slots=True)
class TaskDefinition:
    """One revision of a family, with the resources a task of it reserves."""

    arn: str
    family: str
    revision: int
    containers: list[dict[str, Any]]
    network_mode: str
    registered_at: datetime
    registered_by: str
    cpu: int
    memory: int
    tcp_ports: frozenset[str]
    udp_ports: frozenset[str]
    task_cpu: str | None = None
    task_memory: str | None = None
    status: str = "ACTIVE"
    deregistered_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The botocore `TaskDefinition` shape."""
        out: dict[str, Any] = {
            "taskDefinitionArn": self.arn,
            "containerDefinitions": self.containers,
            "family": self.family,
            "revision": self.revision,
            "volumes": [],
            "status": self.status,
            "requiresAttributes": [],
            "placementConstraints": [],
            "compatibilities": ["EXTERNAL", "EC2"],
            "networkMode": self.network_mode,
            "registeredAt": self.registered_at,
            "registeredBy": self.registered_by,
            **self.extra,
        }
        if self.task_cpu is not None:
            out["cpu"] = self.task_cpu
        if self.task_memory is not None:
            out["memory"] = self.task_memory
        if self.deregistered_at is not None:
            out["deregisteredAt"] = self.deregistered_at
        return out


def container_with_defaults(definition: dict[str, Any]) -> dict[str, Any]:
    """A container definition as DescribeTaskDefinition shows it."""
    return {
        "cpu": 0,
        "portMappings": [],
        "essential": True,
        "environment": [],
        "mountPoints": [],
        "volumesFrom": [],
        **definition,
    }


def _host_ports(containers: list[dict[str, Any]], network_mode: str) -> tuple[set[str], set[str]]:
    tcp: set[str] = set()
    udp: set[str] = set()
    for container in containers:
        for mapping in container.get("portMappings", []):
            host = mapping.get("hostPort")
            if network_mode == "host" and not host:
                host = mapping.get("containerPort")
            if host:
                (udp if mapping.get("protocol") == "udp" else tcp).add(str(host))
    return tcp, udp


def _memory_of(container: dict[str, Any], *, task_memory: int | None) -> int:
    memory = container.get("memory") or container.get("memoryReservation")
    if memory is None and task_memory is None:
        raise errors.ClientFault(
            f"Invalid setting for container '{container['name']}'. At least one of 'memory' "
            "or 'memoryReservation' must be specified."
        )
    return int(memory or 0)


def _parse_size(value: str | None, *, what: str) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise errors.ClientFault(f"Invalid '{what}' setting for task definition: {value!r}.")
    return int(value)


class TaskDefinitionRegistry:
    """Every revision ever registered, by family."""

    def __init__(self, *, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._families: dict[str, list[TaskDefinition]] = {}

    def register(self, request: dict[str, Any], *, now: datetime) -> TaskDefinition:
        """Add the next revision of `request["family"]` (a validated RegisterTaskDefinition)."""
        family = request["family"]
        if not FAMILY_RE.match(family):
            raise errors.ClientFault(
                "Family contains invalid characters: only letters, numbers, hyphens and "
                "underscores are allowed, up to 255."
            )
        containers = request["containerDefinitions"]
        if not containers:
            raise errors.ClientFault("Container list cannot be empty.")
        for container in containers:
            for key in ("name", "image"):
                if not container.get(key):
                    raise errors.ClientFault(f"Container.{key} should not be null or empty.")
        names = [c["name"] for c in containers]
        if len(set(names)) != len(names):
            raise errors.ClientFault("Container names must be unique within a task definition.")
        task_cpu = _parse_size(request.get("cpu"), what="cpu")
        task_memory = _parse_size(request.get("memory"), what="memory")
        mems = [_memory_of(c, task_memory=task_memory) for c in containers]
        network_mode = request.get("networkMode", "bridge")
        tcp, udp = _host_ports(containers, network_mode)
        revisions = self._families.setdefault(family, [])
        revision = len(revisions) + 1
        definition = TaskDefinition(
            arn=f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{family}:{revision}",
            family=family,
            revision=revision,
            containers=[container_with_defaults(c) for c in containers],
            network_mode=network_mode,
            registered_at=now,
            registered_by=f"arn:aws:iam::{self.account}:root",
            cpu=task_cpu if task_cpu is not None else sum(c.get("cpu", 0) for c in containers),
            memory=task_memory if task_memory is not None else sum(mems),
            tcp_ports=frozenset(tcp),
            udp_ports=frozenset(udp),
            task_cpu=request.get("cpu"),
            task_memory=request.get("memory"),
            extra={k: request[k] for k in ("taskRoleArn", "executionRoleArn") if k in request},
        )
        revisions.append(definition)
        return definition

    def all(self) -> list[TaskDefinition]:
        """Every revision ever registered: families in registration order, revisions ascending."""
        return [d for revisions in self._families.values() for d in revisions]

    def restore(self, definition: TaskDefinition) -> None:
        """Put back a revision from a snapshot (the caller keeps revisions in order)."""
        self._families.setdefault(definition.family, []).append(definition)

    def find(self, ref: str) -> TaskDefinition | None:
        """Resolve `family`, `family:revision` or an ARN; a bare family means latest ACTIVE."""
        if ref.startswith("arn:"):
            ref = ref.rsplit("task-definition/", 1)[-1]
        family, _, revision = ref.partition(":")
        revisions = self._families.get(family, [])
        if not revision:
            active = [d for d in revisions if d.status == "ACTIVE"]
            return active[-1] if active else None
        if not revision.isdigit() or not 1 <= int(revision) <= len(revisions):
            return None
        return revisions[int(revision) - 1]

    def deregister(self, ref: str, *, now: datetime) -> TaskDefinition:
        """Mark one revision INACTIVE (idempotent, as ECS)."""
        if ":" not in ref.rsplit("/", 1)[-1]:
            raise errors.ClientFault("Revision must be specified.")
        definition = self.find(ref)
        if definition is None:
            raise errors.ClientFault("The specified task definition does not exist.")
        if definition.status == "ACTIVE":
            definition.status = "INACTIVE"
            definition.deregistered_at = now
        return definition

    def list_arns(self, *, prefix: str | None, status: str, descending: bool) -> list[str]:
        """ARNs of matching revisions ordered by family then revision."""
        return [
            d.arn
            for family in sorted(self._families, reverse=descending)
            if prefix is None or family.startswith(prefix)
            for d in (reversed(self._families[family]) if descending else self._families[family])
            if d.status == status
        ]
