"""Tasks: the Task record DescribeTasks shows, and the indexes ListTasks pages through.

Indexes are per cluster and keyed by (kind, value): all tasks, by container instance, by
family, by startedBy and by desired status, so that no request scans every task. A ListTasks
page walks the smallest index among its filters and checks the others per entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blox.sim.state.paging import SeqIndex
from blox.sim.state.task_definitions import TaskDefinition

STARTED_BY_MAX_CHARS = 36


@dataclass(slots=True)
class Task:
    """One EC2 task, from placement to expiry."""

    seq: int
    arn: str
    cluster_arn: str
    instance_arn: str
    zone: str | None
    definition: TaskDefinition
    container_arns: list[str]
    created_at: datetime
    started_by: str | None = None
    group: str | None = None
    desired_status: str = "RUNNING"
    last_status: str = "PENDING"
    version: int = 1
    pull_started_at: datetime | None = None
    pull_stopped_at: datetime | None = None
    started_at: datetime | None = None
    connectivity_at: datetime | None = None
    stopping_at: datetime | None = None
    execution_stopped_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None

    def describe(self) -> dict[str, Any]:
        """The botocore `Task` shape; optional fields are left out, never empty."""
        d = self.definition
        out: dict[str, Any] = {
            "attachments": [],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "clusterArn": self.cluster_arn,
            "containerInstanceArn": self.instance_arn,
            "containers": [
                self._container(c, arn)
                for c, arn in zip(d.containers, self.container_arns, strict=True)
            ],
            "cpu": str(d.cpu),
            "createdAt": self.created_at,
            "desiredStatus": self.desired_status,
            "enableExecuteCommand": False,
            "group": self.group or f"family:{d.family}",
            "lastStatus": self.last_status,
            "launchType": "EC2",
            "memory": str(d.memory),
            "overrides": {"containerOverrides": [{"name": c["name"]} for c in d.containers]},
            "taskArn": self.arn,
            "taskDefinitionArn": d.arn,
            "version": self.version,
        }
        optional = {
            "availabilityZone": self.zone,
            "connectivity": "CONNECTED" if self.connectivity_at else None,
            "connectivityAt": self.connectivity_at,
            "pullStartedAt": self.pull_started_at,
            "pullStoppedAt": self.pull_stopped_at,
            "startedAt": self.started_at,
            "startedBy": self.started_by,
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "stoppingAt": self.stopping_at,
            "executionStoppedAt": self.execution_stopped_at,
            "stoppedAt": self.stopped_at,
        }
        out.update((k, v) for k, v in optional.items() if v is not None)
        return out

    def _container(self, definition: dict[str, Any], arn: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "containerArn": arn,
            "taskArn": self.arn,
            "name": definition["name"],
            "image": definition["image"],
            "lastStatus": self.last_status,
            "networkInterfaces": [],
            "cpu": str(definition.get("cpu", 0)),
        }
        if "memory" in definition:
            out["memory"] = str(definition["memory"])
        if "memoryReservation" in definition:
            out["memoryReservation"] = str(definition["memoryReservation"])
        if self.started_at is not None:
            out["networkBindings"] = _bindings(definition, self.definition.network_mode)
        if self.last_status == "STOPPED" and self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.last_status == "STOPPED" and self.container_reason:
            out["reason"] = self.container_reason
        return out


def _bindings(definition: dict[str, Any], network_mode: str) -> list[dict[str, Any]]:
    bindings = []
    for mapping in definition.get("portMappings", []):
        host = mapping.get("hostPort") or (
            mapping.get("containerPort") if network_mode == "host" else None
        )
        if host:
            bindings.append(
                {
                    "bindIP": "0.0.0.0",
                    "containerPort": mapping.get("containerPort", host),
                    "hostPort": host,
                    "protocol": mapping.get("protocol", "tcp"),
                }
            )
    return bindings


class TaskRegistry:
    """Tasks by ARN and sequence number, with the per-cluster ListTasks indexes."""

    def __init__(self) -> None:
        self.by_arn: dict[str, Task] = {}
        self.by_seq: dict[int, Task] = {}
        self._indexes: dict[tuple[str, str, str], SeqIndex] = {}

    def index(self, cluster_arn: str, kind: str, value: str) -> SeqIndex:
        """The index of tasks in `cluster_arn` whose `kind` ("*", instance, family,
        startedBy, desired) equals `value`."""
        key = (cluster_arn, kind, value)
        found = self._indexes.get(key)
        if found is None:
            found = self._indexes[key] = SeqIndex()
        return found

    def _keys(self, task: Task) -> list[tuple[str, str]]:
        keys = [("*", ""), ("instance", task.instance_arn), ("family", task.definition.family)]
        keys.append(("desired", task.desired_status))
        if task.started_by is not None:
            keys.append(("startedBy", task.started_by))
        return keys

    def add(self, task: Task) -> None:
        """Index a newly placed task."""
        self.by_arn[task.arn] = task
        self.by_seq[task.seq] = task
        for kind, value in self._keys(task):
            self.index(task.cluster_arn, kind, value).add(task.seq)

    def set_desired(self, task: Task, status: str) -> None:
        """Change desiredStatus and move the task between desired-status indexes."""
        self.index(task.cluster_arn, "desired", task.desired_status).discard(task.seq)
        task.desired_status = status
        self.index(task.cluster_arn, "desired", status).add(task.seq)

    def remove(self, task: Task) -> None:
        """Forget a stopped task whose retention is over."""
        for kind, value in self._keys(task):
            self.index(task.cluster_arn, kind, value).discard(task.seq)
        self.by_arn.pop(task.arn, None)
        self.by_seq.pop(task.seq, None)

    def find(self, cluster_arn: str, ref: str) -> Task | None:
        """The task of `cluster_arn` named by full ARN or by its ID."""
        if not ref.startswith("arn:"):
            prefix, _, name = cluster_arn.partition(":cluster/")
            ref = f"{prefix}:task/{name}/{ref}"
        found = self.by_arn.get(ref)
        return found if found is not None and found.cluster_arn == cluster_arn else None

    def on_instance(self, cluster_arn: str, instance_arn: str) -> list[Task]:
        """Every task placed on the instance, stopped ones included."""
        seqs, _ = self.index(cluster_arn, "instance", instance_arn).page(after=0, limit=1 << 62)
        return [self.by_seq[s] for s in seqs]

    def page(
        self, *, cluster_arn: str, filters: dict[str, str], after: int, limit: int
    ) -> tuple[list[Task], bool]:
        """A ListTasks page: tasks matching every (kind, value) filter, after `after`."""
        indexes = [self.index(cluster_arn, k, v) for k, v in filters.items()] or [
            self.index(cluster_arn, "*", "")
        ]
        indexes.sort(key=len)
        smallest, others = indexes[0], indexes[1:]
        accept: Callable[[int], bool] | None = None
        if others:
            accept = lambda seq: all(seq in other for other in others)  # noqa: E731
        seqs, more = smallest.page(after=after, limit=limit, accept=accept)
        return [self.by_seq[s] for s in seqs], more
