"""EcsClient: the typed async calls blox makes to ECS, over a blocking boto3 client.

Every call runs in a worker thread (`asyncio.to_thread`), inside `translated()` so only our
errors come out, and under our retry (botocore's own retries are off). List calls follow every
`nextToken`; Describe* batches by 100 ids and StartTask by 10 instances, merging the
`failures` of every batch.

Assumptions: StartTask is not idempotent (ECS has no client token), so it is retried only
when ECS throttled it, which proves it did not run; every other call is safe to repeat.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config

from blox.clock import Clock
from blox.ecs import convert
from blox.ecs.convert import Described, Failure
from blox.ecs.errors import Throttled, translated
from blox.ecs.retry import RetryPolicy, is_retryable, retrying

if TYPE_CHECKING:  # the stubs are a dev dependency: annotations only
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_ecs.literals import ContainerInstanceStatusType, DesiredStatusType
    from mypy_boto3_ecs.type_defs import (
        ClusterTypeDef,
        ContainerInstanceTypeDef,
        ListClustersRequestTypeDef,
        ListContainerInstancesRequestTypeDef,
        ListTasksRequestTypeDef,
        StartTaskRequestTypeDef,
        TaskDefinitionTypeDef,
        TaskTypeDef,
    )


__all__ = ["DESCRIBE_BATCH", "PAGE_SIZE", "START_TASK_BATCH", "EcsClient", "Started"]

R = TypeVar("R")
DESCRIBE_BATCH = 100
START_TASK_BATCH = 10
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Started:
    """Tasks StartTask placed and the instances it refused, over every batch."""

    tasks: list[TaskTypeDef] = field(default_factory=list, hash=False)
    failures: list[Failure] = field(default_factory=list, hash=False)


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _throttled_only(error: BaseException) -> bool:
    return isinstance(error, Throttled)


class EcsClient:
    """Typed async ECS calls with pagination, batching, retries and translated errors."""

    def __init__(
        self,
        boto: ECSClient,
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.boto = boto
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()

    @classmethod
    def create(
        cls,
        *,
        region: str,
        endpoint_url: str | None = None,
        clock: Clock,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_pool_connections: int = 10,
    ) -> EcsClient:
        """A client on the default credential chain; dummy credentials for a bare endpoint.

        When `endpoint_url` is given (the simulator) and no credentials are configured, the
        requests are signed with placeholder keys, which the simulator does not check.
        """
        session = boto3.session.Session(region_name=region)
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=max_pool_connections,
        )
        dummy = None
        if endpoint_url is not None and session.get_credentials() is None:
            dummy = "blox-sim"
        boto = session.client(
            "ecs",
            endpoint_url=endpoint_url,
            config=config,
            aws_access_key_id=dummy,
            aws_secret_access_key=dummy,
        )
        return cls(boto, clock=clock, policy=policy, rng=rng)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.boto.close()

    async def _call(
        self,
        operation: str,
        fn: Callable[[], R],
        *,
        retryable: Callable[[BaseException], bool] = is_retryable,
    ) -> R:
        def attempt() -> R:
            with translated(operation):
                return fn()

        return await retrying(
            lambda: asyncio.to_thread(attempt),
            policy=self.policy,
            clock=self.clock,
            rng=self.rng,
            retryable=retryable,
        )

    # -- lists (every page) ----------------------------------------------------------------

    async def list_clusters(self) -> list[str]:
        """Every cluster ARN."""
        request: ListClustersRequestTypeDef = {"maxResults": PAGE_SIZE}
        arns: list[str] = []
        while True:
            page = await self._call("ListClusters", lambda: self.boto.list_clusters(**request))
            arns.extend(page.get("clusterArns", []))
            token = page.get("nextToken")
            if not token:
                return arns
            request["nextToken"] = token

    async def list_container_instances(
        self, cluster: str, status: ContainerInstanceStatusType | None = None
    ) -> list[str]:
        """Every container instance ARN of `cluster`, optionally only those in `status`."""
        request: ListContainerInstancesRequestTypeDef = {
            "cluster": cluster,
            "maxResults": PAGE_SIZE,
        }
        if status is not None:
            request["status"] = status
        arns: list[str] = []
        while True:
            page = await self._call(
                "ListContainerInstances", lambda: self.boto.list_container_instances(**request)
            )
            arns.extend(page.get("containerInstanceArns", []))
            token = page.get("nextToken")
            if not token:
                return arns
            request["nextToken"] = token

    async def list_tasks(
        self,
        cluster: str,
        *,
        desired_status: DesiredStatusType | None = None,
        container_instance: str | None = None,
        started_by: str | None = None,
        family: str | None = None,
    ) -> list[str]:
        """Every task ARN of `cluster` matching the filters given.

        The page request is mutated only between awaited calls, so each (re)try sends the
        page it was made for.
        """
        request: ListTasksRequestTypeDef = {"cluster": cluster, "maxResults": PAGE_SIZE}
        if desired_status is not None:
            request["desiredStatus"] = desired_status
        if container_instance is not None:
            request["containerInstance"] = container_instance
        if started_by is not None:
            request["startedBy"] = started_by
        if family is not None:
            request["family"] = family
        arns: list[str] = []
        while True:
            page = await self._call("ListTasks", lambda: self.boto.list_tasks(**request))
            arns.extend(page.get("taskArns", []))
            token = page.get("nextToken")
            if not token:
                return arns
            request["nextToken"] = token

    # -- describes (batches of 100) --------------------------------------------------------

    async def describe_clusters(self, refs: Sequence[str]) -> Described[ClusterTypeDef]:
        """The clusters named (names or ARNs, any number), INACTIVE ones included; MISSING
        and other failures merged. No name, no call (ECS would describe `default`)."""
        found: Described[ClusterTypeDef] = Described()
        for batch in _batches(refs, DESCRIBE_BATCH):
            page = await self._call(
                "DescribeClusters", partial(self.boto.describe_clusters, clusters=batch)
            )
            found.items.extend(page.get("clusters", []))
            found.failures.extend(convert.failures(page.get("failures", [])))
        return found

    async def describe_container_instances(
        self, cluster: str, arns: Sequence[str]
    ) -> Described[ContainerInstanceTypeDef]:
        """The instances named (any number), with MISSING and other failures merged."""
        found: Described[ContainerInstanceTypeDef] = Described()
        for batch in _batches(arns, DESCRIBE_BATCH):
            page = await self._call(
                "DescribeContainerInstances",
                partial(
                    self.boto.describe_container_instances,
                    cluster=cluster,
                    containerInstances=batch,
                ),
            )
            found.items.extend(page.get("containerInstances", []))
            found.failures.extend(convert.failures(page.get("failures", [])))
        return found

    async def describe_tasks(self, cluster: str, arns: Sequence[str]) -> Described[TaskTypeDef]:
        """The tasks named (any number), with MISSING and other failures merged."""
        found: Described[TaskTypeDef] = Described()
        for batch in _batches(arns, DESCRIBE_BATCH):
            page = await self._call(
                "DescribeTasks",
                partial(self.boto.describe_tasks, cluster=cluster, tasks=batch),
            )
            found.items.extend(page.get("tasks", []))
            found.failures.extend(convert.failures(page.get("failures", [])))
        return found

    async def describe_task_definition(self, ref: str) -> TaskDefinitionTypeDef:
        """One task definition by family, family:revision or ARN."""
        page = await self._call(
            "DescribeTaskDefinition",
            lambda: self.boto.describe_task_definition(taskDefinition=ref),
        )
        return page["taskDefinition"]

    # -- changes ---------------------------------------------------------------------------

    async def start_task(
        self,
        cluster: str,
        task_definition: str,
        instance_arns: Sequence[str],
        *,
        started_by: str,
        group: str | None = None,
    ) -> Started:
        """One task on each instance named, 10 instances per call; refusals come as failures."""
        started = Started()
        for batch in _batches(instance_arns, START_TASK_BATCH):
            request: StartTaskRequestTypeDef = {
                "cluster": cluster,
                "taskDefinition": task_definition,
                "containerInstances": batch,
                "startedBy": started_by,
            }
            if group is not None:
                request["group"] = group
            page = await self._call(
                "StartTask",
                partial(self.boto.start_task, **request),
                retryable=_throttled_only,
            )
            started.tasks.extend(page.get("tasks", []))
            started.failures.extend(convert.failures(page.get("failures", [])))
        return started

    async def stop_task(self, cluster: str, task_arn: str, reason: str) -> TaskTypeDef:
        """Ask ECS to stop a task; the task as ECS now describes it."""
        page = await self._call(
            "StopTask",
            lambda: self.boto.stop_task(cluster=cluster, task=task_arn, reason=reason),
        )
        return page["task"]
