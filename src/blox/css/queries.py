"""Filters and paging of the cluster state service's read API, over store pages.

Parses a list route's query parameters (v0.3: `status`, `cluster`, `startedBy`; blox-ecs adds
the optional `maxResults` and an opaque `nextToken`), locates a task or instance named by a
path, and reads live records from the store. Callers: `blox.css.api` routes; raises the
`blox.css.errors` that `blox.css.api.errors` renders. No secondary indexes yet: a list scans
`keys.TASKS` / `keys.INSTANCES` (or one cluster's prefix when the cluster is given by ARN) in
store pages and filters in memory; indexes by status and startedBy come in a later increment.

Assumptions / Invariants:
- A tombstoned record is never shown, neither listed nor fetched.
- A cluster given by NAME matches that name in every account and region (v0.3 clients pass
  names); given by ARN it matches exactly that cluster (one store prefix).
- Without `maxResults` a list returns every match (v0.3); with it, at most that many and a
  `nextToken` (base64 of the last key returned) exactly when more records remain to scan.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from blox.css.errors import (
    ClusterInvalid,
    FilterRepeated,
    FilterUnsupported,
    InstanceNotFound,
    MaxResultsInvalid,
    NextTokenInvalid,
    RecordUnreadable,
    RouteNotFound,
    StatusInvalid,
    TaskNotFound,
)
from blox.model import arn, ecs
from blox.model.errors import ArnInvalid, RecordInvalid
from blox.store import Entry, Store, keys

__all__ = [
    "INSTANCE_STATUSES",
    "MAX_RESULTS",
    "TASK_STATUSES",
    "ClusterRef",
    "Filters",
    "Found",
    "Listing",
    "Paging",
    "cluster_ref",
    "get_record",
    "instance_query",
    "list_records",
    "locate",
    "task_query",
]

logger = logging.getLogger(__name__)

TASK_STATUSES = frozenset({"PENDING", "RUNNING", "STOPPED"})
INSTANCE_STATUSES = frozenset({"ACTIVE", "INACTIVE", "DRAINING"})
MAX_RESULTS = 1000
SCAN_BATCH = 500
# ECS: "up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens".
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """A cluster as a client named it: always its name, and its ARN when given by ARN."""

    name: str
    arn: str | None = None

    def matches(self, cluster_arn: str) -> bool:
        """Whether `cluster_arn` is this cluster (any account and region when given by name)."""
        if self.arn is not None:
            return cluster_arn == self.arn
        return cluster_arn.endswith(f":cluster/{self.name}")


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list keeps: records of `kind` with this status (upper case), cluster, startedBy."""

    kind: ecs.Kind
    status: str | None = None
    cluster: ClusterRef | None = None
    started_by: str | None = None

    @property
    def prefix(self) -> str:
        """The store prefix to scan: one cluster's when given by ARN, else every cluster's."""
        if self.cluster is not None and self.cluster.arn is not None:
            if self.kind == "task":
                return keys.tasks_of(self.cluster.arn)
            return keys.instances_of(self.cluster.arn)
        return keys.TASKS if self.kind == "task" else keys.INSTANCES

    def matches(self, record: ecs.Record) -> bool:
        """Whether `record` is live and passes every filter."""
        if record.is_tombstone or record.kind != self.kind:
            return False
        if self.cluster is not None and not self.cluster.matches(record.cluster_arn):
            return False
        if self.status is not None:
            field = "lastStatus" if self.kind == "task" else "status"
            status = record.detail.get(field)
            if not isinstance(status, str) or status.upper() != self.status:
                return False
        return self.started_by is None or record.detail.get("startedBy") == self.started_by


@dataclass(frozen=True, slots=True)
class Paging:
    """At most `max_results` items (None: all), starting after store key `after`."""

    max_results: int | None = None
    after: str | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """A live record and the store revision it last changed at (`metadata.entityVersion`)."""

    record: ecs.Record
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Listing:
    """One answer of a list: the matches in key order, and the token of the next page."""

    items: list[Found]
    next_token: str | None = None


def cluster_ref(text: str) -> ClusterRef | None:
    """The cluster `text` names (a name, or a cluster ARN of any partition), or None."""
    if _CLUSTER_NAME.fullmatch(text):
        return ClusterRef(name=text)
    try:
        parsed = arn.parse(text)
    except ArnInvalid:
        return None
    if parsed.resource_type != "cluster":
        return None
    return ClusterRef(name=parsed.resource_id, arn=text)


def task_query(params: Sequence[tuple[str, str]]) -> tuple[Filters, Paging]:
    """Filters and paging of `GET /v1/tasks` from its query parameters, in request order."""
    return _query("task", params, statuses=TASK_STATUSES, with_started_by=True)


def instance_query(params: Sequence[tuple[str, str]]) -> tuple[Filters, Paging]:
    """Filters and paging of `GET /v1/instances` from its query parameters, in request order."""
    return _query("instance", params, statuses=INSTANCE_STATUSES, with_started_by=False)


def _query(
    kind: ecs.Kind,
    params: Sequence[tuple[str, str]],
    *,
    statuses: frozenset[str],
    with_started_by: bool,
) -> tuple[Filters, Paging]:
    allowed = {"status", "cluster", "maxResults", "nextToken"} | (
        {"startedBy"} if with_started_by else set()
    )
    names = [name for name, _ in params]
    if any(name not in allowed for name in names):
        raise FilterUnsupported(f"unsupported query parameters in {sorted(set(names))}")
    if len(set(names)) != len(names):
        raise FilterRepeated(f"repeated query parameters in {names}")
    given = dict(params)
    status = given.get("status")
    if status is not None and status.upper() not in statuses:
        raise StatusInvalid(f"{status!r} is not one of {sorted(statuses)}")
    cluster = None
    if "cluster" in given and (cluster := cluster_ref(given["cluster"])) is None:
        raise ClusterInvalid(f"{given['cluster']!r} is neither a cluster name nor its ARN")
    filters = Filters(
        kind=kind,
        status=None if status is None else status.upper(),
        cluster=cluster,
        started_by=given.get("startedBy") or None,
    )
    return filters, _paging(filters, given.get("maxResults"), given.get("nextToken"))


def _paging(filters: Filters, max_results: str | None, token: str | None) -> Paging:
    limit = None
    if max_results is not None:
        if not _DIGITS.fullmatch(max_results) or not 1 <= int(max_results) <= MAX_RESULTS:
            raise MaxResultsInvalid(f"maxResults {max_results!r} is not in 1..{MAX_RESULTS}")
        limit = int(max_results)
    if token is None:
        return Paging(max_results=limit)
    try:
        after = base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except ValueError as exc:
        raise NextTokenInvalid(f"nextToken {token!r} is not base64 text") from exc
    if not after.startswith(filters.prefix):
        raise NextTokenInvalid(f"nextToken {token!r} does not belong to this query")
    return Paging(max_results=limit, after=after)


def _token(key: str) -> str:
    return base64.b64encode(key.encode(), altchars=b"-_").decode()


async def list_records(store: Store, filters: Filters, paging: Paging) -> Listing:
    """The live records passing `filters`, in key order, one `paging` page of them."""
    items: list[Found] = []
    after = paging.after
    while True:
        page = await store.list(filters.prefix, limit=SCAN_BATCH, after=after)
        for entry in page.entries:
            record = _listed(entry)
            if record is None or not filters.matches(record):
                continue
            items.append(Found(record=record, mod_revision=entry.mod_revision))
            if len(items) == paging.max_results:
                is_last = entry is page.entries[-1] and not page.more
                return Listing(items=items, next_token=None if is_last else _token(entry.key))
        if not page.more or not page.entries:
            return Listing(items=items)
        after = page.entries[-1].key


def locate(kind: ecs.Kind, path: str) -> tuple[ClusterRef, arn.Arn, str]:
    """(cluster, parsed ARN, ARN text) of `<cluster name or ARN>/<task or instance ARN>`.

    Raises RouteNotFound when either part fails its pattern: v0.3 matched no route then.
    """
    cut = path.rfind("/arn:")
    cluster = cluster_ref(path[:cut]) if cut > 0 else None
    if cluster is None:
        raise RouteNotFound(f"{path!r} names no cluster and {kind} ARN")
    text = path[cut + 1 :]
    try:
        parsed = arn.parse(text)
    except ArnInvalid as exc:
        raise RouteNotFound(f"{text!r} is not a {kind} ARN") from exc
    if parsed.resource_type != ("task" if kind == "task" else "container-instance"):
        raise RouteNotFound(f"{text!r} is not a {kind} ARN")
    return cluster, parsed, text


async def get_record(store: Store, kind: ecs.Kind, path: str) -> Found:
    """The live record of the task or instance `path` names (see `locate`).

    A cluster given by name is looked up in the account and region of the entity's ARN, where
    ECS keeps an entity's cluster. Raises TaskNotFound / InstanceNotFound when there is none.
    """
    cluster, parsed, text = locate(kind, path)
    missing = TaskNotFound if kind == "task" else InstanceNotFound
    if parsed.cluster is not None and parsed.cluster != cluster.name:
        raise missing(f"{text} is not in cluster {cluster.name}")
    cluster_arn = cluster.arn or arn.cluster_arn(
        partition=parsed.partition, region=parsed.region, account=parsed.account, name=cluster.name
    )
    entry = await store.get(keys.record(kind, cluster_arn, text))
    if entry is None:
        raise missing(f"no record of {text} in {cluster_arn}")
    try:
        record = ecs.decode(entry.value)
    except RecordInvalid as exc:
        raise RecordUnreadable(f"the record at {entry.key} does not decode") from exc
    if record.is_tombstone:
        raise missing(f"{text} in {cluster_arn} was deleted")
    return Found(record=record, mod_revision=entry.mod_revision)


def _listed(entry: Entry) -> ecs.Record | None:
    """The record in `entry`; an unreadable one is logged and left out of lists."""
    try:
        return ecs.decode(entry.value)
    except RecordInvalid as exc:
        logger.warning("leaving the unreadable record at %s out of a list: %s", entry.key, exc)
        return None
