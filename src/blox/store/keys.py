"""The key layout of the store, pure: every service builds its keys here and nowhere else.

Records are keyed by cluster ARN, not by cluster name, so that clusters of one name in two
accounts or regions do not collide (v0.3 keyed by name: `ecs/task/<clusterName>/<taskARN>`).
ARNs contain '/' and ':'; keys keep them verbatim, since a prefix scan only needs the separator
after the cluster ARN, and ARNs never contain the '|' used there. Secondary index entries and
the cluster registry are keys with empty values; their free-text parts are escaped (`_escape`)
so that '|' always separates parts and one prefix selects a value, a cluster name or an ARN.
"""

from __future__ import annotations

import re
from typing import Literal

SEPARATOR = "|"
_ESCAPED = re.compile("%(25|7C)")
TASKS = "ecs/tasks/"
INSTANCES = "ecs/instances/"
ENVIRONMENTS = "scheduler/environments/"
DEPLOYMENTS = "scheduler/deployments/"
# Secondary indexes of the records (keys only, empty values; see `index_entry`), the registry
# of clusters by name, and the index layout version the records are indexed by.
INDEX = "ecs/index/"
CLUSTERS = "ecs/clusters/"
INDEXED = "ecs/indexed"
RECONCILED = "css/reconciled"  # when the last CSS reconcile pass finished, and by whom


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


def records_of(kind: Literal["task", "instance"], cluster_arn: str) -> str:
    """The prefix of every task or instance record of one cluster, by record kind."""
    return tasks_of(cluster_arn) if kind == "task" else instances_of(cluster_arn)


def record_cluster(key: str) -> str:
    """The cluster ARN in a task or instance record key; ValueError for any other key."""
    for prefix in (TASKS, INSTANCES):
        if key.startswith(prefix):
            cluster_arn, sep, arn = key[len(prefix) :].partition(SEPARATOR)
            if sep and cluster_arn and arn:
                return cluster_arn
    raise ValueError(f"{key!r} is not a task or instance record key")


def cluster_name(cluster_arn: str) -> str:
    """The name in a cluster ARN (what follows `:cluster/`); '' when it has none."""
    _, sep, name = cluster_arn.rpartition(":cluster/")
    return name if sep else ""


def index_entry(
    kind: Literal["task", "instance"], field: str, value: str, cluster_arn: str, arn: str
) -> str:
    """The (empty) index entry saying that record `kind`/`cluster_arn`/`arn` has `field`=`value`.

    Laid out `INDEX<kind>/<field>/<value>|<cluster name>|<cluster ARN>|<ARN>`, each part after
    the field escaped (`_escape`), so that one prefix selects the value in every cluster, in the
    clusters of one name (v0.3 clients filter by name), or in one cluster.
    """
    return f"{index_of(kind, field, value, cluster_arn=cluster_arn)}{_escape(arn)}"


def index_of(
    kind: Literal["task", "instance"],
    field: str,
    value: str,
    *,
    named: str | None = None,
    cluster_arn: str | None = None,
) -> str:
    """The prefix of the index entries of `field`=`value`: every cluster's, those of the clusters
    `named` so (any account and region), or those of the cluster `cluster_arn`."""
    prefix = f"{INDEX}{kind}/{field}/{_escape(value)}{SEPARATOR}"
    if cluster_arn is not None:
        name = _escape(cluster_name(cluster_arn))
        return f"{prefix}{name}{SEPARATOR}{_escape(cluster_arn)}{SEPARATOR}"
    if named is not None:
        return f"{prefix}{_escape(named)}{SEPARATOR}"
    return prefix


def indexed_record(key: str) -> str:
    """The record key an index entry points at; ValueError if `key` is not an index entry."""
    kind, _, rest = key.removeprefix(INDEX).partition("/")
    field, _, rest = rest.partition("/")
    parts = rest.split(SEPARATOR)
    if not key.startswith(INDEX) or not field or len(parts) != 4 or not all(parts[2:]):
        raise ValueError(f"{key!r} is not an index entry")
    if kind not in ("task", "instance"):
        raise ValueError(f"{key!r} is an index entry of no record kind")
    return record(kind, _unescape(parts[2]), _unescape(parts[3]))  # type: ignore[arg-type]


def cluster(cluster_arn: str) -> str:
    """The (empty) registry entry of a cluster that has records, found by its name."""
    return f"{clusters_named(cluster_name(cluster_arn))}{_escape(cluster_arn)}"


def clusters_named(name: str) -> str:
    """The prefix of the registry entries of every cluster called `name`."""
    return f"{CLUSTERS}{_escape(name)}{SEPARATOR}"


def registered_cluster(key: str) -> str:
    """The cluster ARN of a registry entry; ValueError if `key` is not one."""
    _, sep, cluster_arn = key.removeprefix(CLUSTERS).partition(SEPARATOR)
    if not key.startswith(CLUSTERS) or not sep or not cluster_arn or SEPARATOR in cluster_arn:
        raise ValueError(f"{key!r} is not a cluster registry entry")
    return _unescape(cluster_arn)


def _escape(text: str) -> str:
    """`text` without SEPARATOR, reversibly: '%' and '|' become '%25' and '%7C'."""
    return text.replace("%", "%25").replace(SEPARATOR, "%7C")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: "%" if m[1] == "25" else SEPARATOR, text)


# -- The daemon scheduler (`blox.scheduler.environments`). Environment names match
# `[a-zA-Z0-9_-]{1,30}` (v0.3), so they never contain SEPARATOR and need no escaping.
REVISIONS = "scheduler/revisions/"
DEPLOYMENT_ORDER = "scheduler/deployment-order/"
SCHEDULER_STATUS = "scheduler/status/"
REVISION_DIGITS = 10  # zero-padded, so that key order is number order
DEPLOYMENT_SEQ_DIGITS = 12
_DEPLOYMENT_SEQ_MAX = 10**DEPLOYMENT_SEQ_DIGITS - 1


def environment(name: str) -> str:
    """The record of one daemon environment."""
    return f"{ENVIRONMENTS}{name}"


def environment_name(key: str) -> str:
    """The environment name in an environment record key; ValueError for any other key."""
    name = key.removeprefix(ENVIRONMENTS)
    if not key.startswith(ENVIRONMENTS) or not name or SEPARATOR in name or "/" in name:
        raise ValueError(f"{key!r} is not an environment record key")
    return name


def revision(environment_name: str, number: int) -> str:
    """The record of one revision of an environment (numbers from 1)."""
    if not 1 <= number < 10**REVISION_DIGITS:
        raise ValueError(f"revision number {number} is out of range")
    return f"{revisions_of(environment_name)}{number:0{REVISION_DIGITS}d}"


def revisions_of(environment_name: str) -> str:
    """The prefix of every revision of one environment, listed oldest first."""
    return f"{REVISIONS}{environment_name}{SEPARATOR}"


def deployment(environment_name: str, deployment_id: str) -> str:
    """The record of one deployment of an environment, by its id."""
    return f"{deployments_of(environment_name)}{deployment_id}"


def deployments_of(environment_name: str) -> str:
    """The prefix of every deployment of one environment (in id order: see `deployment_order`)."""
    return f"{DEPLOYMENTS}{environment_name}{SEPARATOR}"


def deployment_order(environment_name: str, seq: int) -> str:
    """The order entry of the `seq`-th deployment of an environment; its value is the id.

    The number is stored inverted, so that a list of `deployment_orders_of` reads newest first.
    """
    if not 1 <= seq <= _DEPLOYMENT_SEQ_MAX:
        raise ValueError(f"deployment sequence number {seq} is out of range")
    inverted = _DEPLOYMENT_SEQ_MAX - seq
    return f"{deployment_orders_of(environment_name)}{inverted:0{DEPLOYMENT_SEQ_DIGITS}d}"


def deployment_orders_of(environment_name: str) -> str:
    """The prefix of the order entries of one environment's deployments, newest first."""
    return f"{DEPLOYMENT_ORDER}{environment_name}{SEPARATOR}"


def scheduler_status(environment_name: str) -> str:
    """The status counters the scheduler's controller last wrote for one environment."""
    return f"{SCHEDULER_STATUS}{environment_name}"


SCHEDULER_STARTS = "scheduler/starts/"


def scheduler_start(environment_name: str, container_instance_arn: str) -> str:
    """A StartTask the scheduler issued on one instance and has not yet seen in the CSS.

    Written before the call, so that a new leader after a crash knows it (no double start).
    """
    return f"{scheduler_starts_of(environment_name)}{container_instance_arn}"


def scheduler_starts_of(environment_name: str) -> str:
    """The prefix of the issued, not yet observed starts of one environment."""
    return f"{SCHEDULER_STARTS}{environment_name}{SEPARATOR}"


def split(key: str) -> tuple[str, str]:
    """(prefix and owner, last part) of a record key, e.g. (tasks_of(cluster), task_arn)."""
    head, sep, tail = key.rpartition(SEPARATOR)
    if not sep:
        raise ValueError(f"{key!r} is not a record key")
    return head + sep, tail


KINESIS_CHECKPOINTS = "css/kinesis/"


def kinesis_checkpoint(stream_arn: str, shard_id: str) -> str:
    """The checkpoint of one shard of a Kinesis stream the CSS ingests (`css/ingest/kinesis.py`).

    Keyed by stream ARN rather than name, as records are keyed by cluster ARN: two streams of
    one name in two accounts or regions keep apart checkpoints.
    """
    return f"{KINESIS_CHECKPOINTS}{stream_arn}{SEPARATOR}{shard_id}"
