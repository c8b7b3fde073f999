"""The key layout of the store, pure: every service builds its keys here and nowhere else.

Records are keyed by cluster ARN, not by cluster name, so that clusters of one name in two
accounts or regions do not collide (v0.3 keyed by name: `ecs/task/<clusterName>/<taskARN>`).
ARNs contain '/' and ':'; keys keep them verbatim, since a prefix scan only needs the separator
after the cluster ARN, and ARNs never contain the '|' used there.
"""

from __future__ import annotations

from typing import Literal

SEPARATOR = "|"
TASKS = "ecs/tasks/"
INSTANCES = "ecs/instances/"
ENVIRONMENTS = "scheduler/environments/"
DEPLOYMENTS = "scheduler/deployments/"


def task(cluster_arn: str, task_arn: str) -> str:
    """The record of one task."""
    return f"{tasks_of(cluster_arn)}{task_arn}"


def tasks_of(cluster_arn: str) -> str:
    """The prefix of every task record of one cluster."""
    return f"{TASKS}{cluster_arn}{SEPARATOR}"


def instance(cluster_arn: str, container_instance_arn: str) -> str:
    """The record of one container instance."""
    return f"{instances_of(cluster_arn)}{container_instance_arn}"


def instances_of(cluster_arn: str) -> str:
    """The prefix of every container instance record of one cluster."""
    return f"{INSTANCES}{cluster_arn}{SEPARATOR}"


def record(kind: Literal["task", "instance"], cluster_arn: str, arn: str) -> str:
    """The record of one task or container instance, by the record kind `blox.model.ecs` uses."""
    if kind == "task":
        return task(cluster_arn, arn)
    if kind == "instance":
        return instance(cluster_arn, arn)
    raise ValueError(f"{kind!r} is not a record kind")


def environment(name: str) -> str:
    """The record of one daemon environment."""
    return f"{ENVIRONMENTS}{name}"


def deployment(environment_name: str, deployment_id: str) -> str:
    """The record of one deployment of an environment."""
    return f"{deployments_of(environment_name)}{deployment_id}"


def deployments_of(environment_name: str) -> str:
    """The prefix of every deployment of one environment."""
    return f"{DEPLOYMENTS}{environment_name}{SEPARATOR}"


def split(key: str) -> tuple[str, str]:
    """(prefix and owner, last part) of a record key, e.g. (tasks_of(cluster), task_arn)."""
    head, sep, tail = key.rpartition(SEPARATOR)
    if not sep:
        raise ValueError(f"{key!r} is not a record key")
    return head + sep, tail
