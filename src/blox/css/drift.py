"""What the reconciler repairs, decided from values: ECS's answers against the stored records.

Pure: no I/O, no clock. The shell (`blox.css.reconciler`) lists and describes through
`blox.ecs`, reads the store, and performs what these functions return through the processor.

Assumptions / Invariants:
- A described entity becomes an event of the version ECS reports (`version` of a Task or a
  ContainerInstance), applied exactly like an ingested one: it can only move a record forward,
  so a reconcile racing newer events never overwrites them.
- Only ECS's own answer MISSING proves an entity gone. A record that was merely absent from the
  lists (the entity started after the list was read, or aged out of it) is described first;
  an id ECS neither described nor called MISSING is left alone until the next pass.
- A vanished cluster (ClusterNotFound) makes every live record of it gone.
- Records of accounts or regions this reconciler does not see are never judged (one queue
  may carry events of many accounts; their ECS is not ours to list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blox.model import arn
from blox.model.ecs import Kind
from blox.model.errors import ArnInvalid
from blox.model.events import Event, InstanceEvent, TaskEvent

__all__ = [
    "MISSING",
    "Gone",
    "Unrepairable",
    "event_of",
    "gone_of",
    "in_scope",
    "unlisted",
]

MISSING = "MISSING"  # the failure reason ECS gives for an id it does not know (any more)
_ARN_FIELD: dict[Kind, str] = {"task": "taskArn", "instance": "containerInstanceArn"}


@dataclass(frozen=True, slots=True)
class Unrepairable:
    """A described entity that cannot become a record, and why (logged, never written)."""

    arn: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    """Of the ids described again: the ones ECS says are MISSING, and those it left unanswered."""

    missing: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)


def event_of(kind: Kind, cluster_arn: str, detail: Mapping[str, Any]) -> Event | Unrepairable:
    """The event that brings a record to what ECS described, or why there can be none.

    `detail` is the JSON-safe shape of a DescribeTasks / DescribeContainerInstances item.
    ECS leaves `clusterArn` out of a container instance; it is added, as events carry it.
    """
    arn_text = detail.get(_ARN_FIELD[kind])
    if not isinstance(arn_text, str):
        return Unrepairable(None, f"a described {kind} has no {_ARN_FIELD[kind]}")
    version = detail.get("version")
    if type(version) is not int or version < 0:
        return Unrepairable(arn_text, f"version {version!r} is not a non-negative integer")
    try:
        cluster = arn.parse(cluster_arn)
        entity = arn.parse(arn_text)
    except ArnInvalid as exc:
        return Unrepairable(arn_text, str(exc))
    if entity.cluster is not None and entity.cluster != cluster.cluster:
        return Unrepairable(arn_text, f"it is not in cluster {cluster_arn}")
    full = {**detail, "clusterArn": cluster_arn}
    cls = TaskEvent if kind == "task" else InstanceEvent
    return cls(
        account=cluster.account,
        region=cluster.region,
        cluster_arn=cluster_arn,
        arn=arn_text,
        version=version,
        detail=full,
    )


def unlisted(live: Iterable[str], listed: Iterable[str]) -> list[str]:
    """ARNs of live stored records that ECS's lists did not name: to be described again."""
    seen = set(listed)
    return sorted(a for a in live if a not in seen)


def gone_of(asked: Sequence[str], found: Iterable[str], missing: Iterable[str]) -> Gone:
    """Which of the `asked` ids are proven gone (MISSING) and which got no answer at all."""
    found_set, missing_set = set(found), set(missing)
    return Gone(
        missing=[a for a in asked if a in missing_set and a not in found_set],
        unanswered=[a for a in asked if a not in missing_set and a not in found_set],
    )


def in_scope(cluster_arn: str, scopes: Iterable[tuple[str, str, str]]) -> bool:
    """Whether `cluster_arn` lies in a (partition, region, account) this ECS answers for."""
    try:
        parsed = arn.parse(cluster_arn)
    except ArnInvalid:
        return False
    return (parsed.partition, parsed.region, parsed.account) in set(scopes)
