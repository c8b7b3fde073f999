"""What ECS knows of clusters and task definitions, as the scheduler checks them on create/update.

`EcsCatalog` is the seam `environments.py` calls (before any store transaction, never inside
one); `EcsClientCatalog` implements it over `blox.ecs.EcsClient`, and tests may hand in any
other implementation. A reference ECS does not know, or knows as INACTIVE, is a `NotFound`
(v0.3 answered 404 for INACTIVE and crashed with a 500 on an unknown cluster); ECS being
unreachable or throttling stays the `blox.ecs` error it is (`Unavailable`: the API's 503).
"""

from __future__ import annotations

from typing import Protocol

from blox import ecs
from blox.scheduler.errors import (
    ClusterInactive,
    ClusterNotFound,
    TaskDefinitionInactive,
    TaskDefinitionNotFound,
)

__all__ = ["EcsCatalog", "EcsClientCatalog"]


class EcsCatalog(Protocol):
    """Resolves the references an environment names to ARNs of ACTIVE resources."""

    async def cluster_arn(self, name_or_arn: str) -> str:
        """The ARN of an ACTIVE cluster; ClusterNotFound / ClusterInactive otherwise."""
        ...

    async def task_definition_arn(self, ref: str) -> str:
        """The ARN of an ACTIVE task definition (family, family:revision or ARN);
        TaskDefinitionNotFound / TaskDefinitionInactive otherwise."""
        ...


class EcsClientCatalog:
    """`EcsCatalog` over ECS's DescribeClusters and DescribeTaskDefinition."""

    def __init__(self, client: ecs.EcsClient) -> None:
        self._client = client

    async def cluster_arn(self, name_or_arn: str) -> str:
        try:
            found = await self._client.describe_clusters([name_or_arn])
        except ecs.InvalidParameter as exc:  # a name ECS refuses to look up names nothing
            raise ClusterNotFound(name_or_arn) from exc
        if not found.items:
            raise ClusterNotFound(name_or_arn)
        cluster = found.items[0]
        if cluster.get("status") != "ACTIVE" or "clusterArn" not in cluster:
            raise ClusterInactive(name_or_arn)
        return cluster["clusterArn"]

    async def task_definition_arn(self, ref: str) -> str:
        try:
            definition = await self._client.describe_task_definition(ref)
        except (ecs.ClientRefused, ecs.InvalidParameter) as exc:
            # ECS answers ClientException "Unable to describe task definition." for one it
            # does not know, and InvalidParameterException for a malformed reference.
            raise TaskDefinitionNotFound(ref) from exc
        if definition.get("status") != "ACTIVE" or "taskDefinitionArn" not in definition:
            raise TaskDefinitionInactive(ref)
        return definition["taskDefinitionArn"]
