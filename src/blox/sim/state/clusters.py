"""Clusters: names, ARNs, ACTIVE / INACTIVE status and the counters DescribeClusters shows.

Pure bookkeeping; `state/ecs.py` keeps the counters in step as instances and tasks change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from blox.sim import errors

DEFAULT_CLUSTER = "default"
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@dataclass(slots=True)
class Cluster:
    """One cluster and its running counters."""

    name: str
    arn: str
    status: str = "ACTIVE"
    registered_instances: int = 0
    running_tasks: int = 0
    pending_tasks: int = 0

    def describe(self) -> dict[str, Any]:
        """The botocore `Cluster` shape."""
        return {
            "clusterArn": self.arn,
            "clusterName": self.name,
            "status": self.status,
            "registeredContainerInstancesCount": self.registered_instances,
            "runningTasksCount": self.running_tasks,
            "pendingTasksCount": self.pending_tasks,
            "activeServicesCount": 0,
            "statistics": [],
            "settings": [{"name": "containerInsights", "value": "disabled"}],
            "capacityProviders": [],
            "defaultCapacityProviderStrategy": [],
        }


class ClusterRegistry:
    """Clusters by name, in creation order; INACTIVE ones stay describable."""

    def __init__(self, *, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._by_name: dict[str, Cluster] = {}

    def arn_of(self, name: str) -> str:
        """The cluster ARN for `name`."""
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{name}"

    def name_of(self, ref: str | None) -> str:
        """The cluster name in a name-or-ARN reference; `default` when absent."""
        if ref is None:
            return DEFAULT_CLUSTER
        if ref.startswith("arn:"):
            return ref.rsplit("/", 1)[-1] if ":cluster/" in ref else ref
        return ref

    def create(self, name: str | None) -> Cluster:
        """Create (or return, idempotently, or reactivate) a cluster."""
        name = name or DEFAULT_CLUSTER
        if not CLUSTER_NAME_RE.match(name):
            raise errors.InvalidParameter(
                "Cluster name should only contain letters, numbers, hyphens and underscores, "
                "and be at most 255 characters."
            )
        cluster = self._by_name.get(name)
        if cluster is None:
            cluster = self._by_name[name] = Cluster(name=name, arn=self.arn_of(name))
        cluster.status = "ACTIVE"
        return cluster

    def find(self, ref: str | None) -> Cluster | None:
        """The cluster named by `ref` in any status, or None."""
        return self._by_name.get(self.name_of(ref))

    def get(self, ref: str | None) -> Cluster:
        """The ACTIVE cluster named by `ref`; ClusterNotFoundException otherwise."""
        cluster = self.find(ref)
        if cluster is None or cluster.status != "ACTIVE":
            raise errors.ClusterNotFound("Cluster not found.")
        return cluster

    def all(self) -> list[Cluster]:
        """Every cluster, INACTIVE ones too, in creation order."""
        return list(self._by_name.values())

    def restore(self, cluster: Cluster) -> None:
        """Put back a cluster from a snapshot (`state/snapshot.py`)."""
        self._by_name[cluster.name] = cluster

    def active_arns(self) -> list[str]:
        """ARNs of ACTIVE clusters in creation order."""
        return [c.arn for c in self._by_name.values() if c.status == "ACTIVE"]
