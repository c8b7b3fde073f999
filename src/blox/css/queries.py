"""Filters and paging of the cluster state service's read API, over the store's indexes.

Parses a list route's query (v0.3: `status`, `cluster`, `startedBy`; blox-ecs adds
`containerInstance`, `family`, `group`, `maxResults` and an opaque `nextToken`), locates a task
or instance named by a path, and reads live records. Callers: the `blox.css.api` routes; raises
the `blox.css.errors` that `blox.css.api.errors` renders. A list reads the most selective index
among its filters (`blox.css.index`), one range and one `get_many` per page; a cluster alone
reads its records' prefix. A list over every cluster (no cluster filter; or a cluster given by
name) reads one registered cluster after another (`Scan.per_cluster`), never one range over the
whole fleet: etcd counts every key of a range it is asked for, whatever the limit. The ranges
themselves are read by `blox.css.scan`.

Assumptions / Invariants:
- A tombstoned record is never shown, neither listed nor fetched.
- Every record read is re-checked against every filter: an index entry is a hint, never an
  answer, so a stale or dangling one costs a read and changes no result.
- A cluster given by NAME matches that name in every account and region (v0.3 clients pass
  names); given by ARN it matches exactly that cluster.
- Without `maxResults` a list returns every match (v0.3); with it, at most that many and a
  `nextToken` (base64 of the last store key read) exactly when more keys remain to read.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass

from blox.css import errors, index
from blox.css.scan import Found, clusters, read_range
from blox.model import arn, ecs
from blox.model.errors import ArnInvalid, RecordInvalid
from blox.store import Store, keys

__all__ = [
    "INSTANCE_STATUSES",
    "MAX_RESULTS",
    "TASK_STATUSES",
    "ClusterRef",
    "Filters",
    "Found",
    "Listing",
    "Paging",
    "Scan",
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
MAX_GROUP_CHARS = 255  # ECS RunTask / StartTask `group`
# ECS, of cluster names and task definition families: "up to 255 letters (uppercase and
# lowercase), numbers, underscores, and hyphens".
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)
# The task filters beyond status and cluster, as query parameter (and index field) → attribute.
_TASK_FILTERS: dict[index.Field, str] = {
    "startedBy": "started_by",
    "containerInstance": "container_instance",
    "family": "family",
    "group": "group",
}
_ATTRIBUTES: dict[index.Field, str] = {"status": "status", **_TASK_FILTERS}
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
class Scan:
    """Where a list reads: records or (`indexed`) index entries of `field`=`value` under
    `prefix`, at once, or `per_cluster`: one registered cluster after another (those called
    `cluster_name`, or all), each in its own bounded range. etcd counts every key of a range
    it is asked for, whatever the limit, so a page read in one range over all clusters costs
    the whole fleet; per cluster it costs that cluster's keys."""

    prefix: str
    indexed: bool = False
    per_cluster: bool = False
    cluster_name: str | None = None
    field: index.Field | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list keeps: live records of `kind` in `cluster` whose indexed values (upper-case
    status, startedBy, containerInstance ARN, family, group) equal the ones given."""

    kind: ecs.Kind
    status: str | None = None
    cluster: ClusterRef | None = None
    started_by: str | None = None
    container_instance: str | None = None
    family: str | None = None
    group: str | None = None

    @property
    def values(self) -> dict[index.Field, str]:
        """The indexed values asked for, by index field."""
        given = {field: getattr(self, name) for field, name in _ATTRIBUTES.items()}
        return {field: value for field, value in given.items() if value is not None}

    @property
    def scan(self) -> Scan:
        """The most selective index among the filters, else the records (see `Scan`)."""
        values, cluster = self.values, self.cluster
        for field in index.FIELDS[self.kind]:
            if field in values:
                named = cluster.name if cluster is not None and cluster.arn is None else None
                arn_ = cluster.arn if cluster is not None else None
                value = values[field]
                prefix = keys.index_of(self.kind, field, value, named=named, cluster_arn=arn_)
                if cluster is not None:
                    return Scan(prefix, indexed=True)
                # the value in every cluster: one cluster at a time
                return Scan(prefix, indexed=True, per_cluster=True, field=field, value=value)
        if cluster is not None and cluster.arn is not None:
            return Scan(keys.records_of(self.kind, cluster.arn))
        everything = keys.TASKS if self.kind == "task" else keys.INSTANCES
        name = None if cluster is None else cluster.name
        return Scan(everything, per_cluster=True, cluster_name=name)

    def matches(self, record: ecs.Record) -> bool:
        """Whether `record` is live and passes every filter."""
        if record.is_tombstone or record.kind != self.kind:
            return False
        if self.cluster is not None and not self.cluster.matches(record.cluster_arn):
            return False
        wanted = self.values
        has = index.values(record) if wanted else {}
        return all(has.get(field) == value for field, value in wanted.items())

    def owns(self, key: str) -> bool:
        """Whether `key` is one this query reads, so a `nextToken` naming it belongs here."""
        scan, cluster = self.scan, self.cluster
        if not key.startswith(scan.prefix) or not scan.per_cluster:
            return key.startswith(scan.prefix)
        try:
            cluster_arn = _cluster_of(scan, key)
        except ValueError:
            return False
        return cluster is None or cluster.matches(cluster_arn)


@dataclass(frozen=True, slots=True)
class Paging:
    """At most `max_results` items (None: all), starting after store key `after`."""

    max_results: int | None = None
    after: str | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """One answer of a list: the matches in key order, and the token of the next page."""

    items: list[Found]
    next_token: str | None = None


def cluster_ref(text: str) -> ClusterRef | None:
    """The cluster `text` names (a name, or a cluster ARN of any partition), or None."""
    if _NAME.fullmatch(text):
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
    return _query("task", params, statuses=TASK_STATUSES, extra=tuple(_TASK_FILTERS))


def instance_query(params: Sequence[tuple[str, str]]) -> tuple[Filters, Paging]:
    """Filters and paging of `GET /v1/instances` from its query parameters, in request order."""
    return _query("instance", params, statuses=INSTANCE_STATUSES, extra=())


def _query(
    kind: ecs.Kind,
    params: Sequence[tuple[str, str]],
    *,
    statuses: frozenset[str],
    extra: tuple[str, ...],
) -> tuple[Filters, Paging]:
    allowed = {"status", "cluster", "maxResults", "nextToken", *extra}
    names = [name for name, _ in params]
    if any(name not in allowed for name in names):
        raise errors.FilterUnsupported(f"unsupported query parameters in {sorted(set(names))}")
    if len(set(names)) != len(names):
        raise errors.FilterRepeated(f"repeated query parameters in {names}")
    given = dict(params)
    status = given.get("status")
    if status is not None and status.upper() not in statuses:
        raise errors.StatusInvalid(f"{status!r} is not one of {sorted(statuses)}")
    cluster = None
    if "cluster" in given and (cluster := cluster_ref(given["cluster"])) is None:
        raise errors.ClusterInvalid(f"{given['cluster']!r} is neither a cluster name nor its ARN")
    _check_task_filters(given)
    filters = Filters(
        kind=kind,
        status=None if status is None else status.upper(),
        cluster=cluster,
        # v0.3 took an empty startedBy for no filter; the blox-ecs filters refuse one instead.
        **{field: given.get(name) or None for name, field in _TASK_FILTERS.items()},
    )
    return filters, _paging(filters, given.get("maxResults"), given.get("nextToken"))


def _check_task_filters(given: dict[str, str]) -> None:
    """Raise the error of the first blox-ecs task filter whose value is malformed."""
    instance, family, group = (given.get(n) for n in ("containerInstance", "family", "group"))
    if instance is not None and not _is_instance_arn(instance):
        raise errors.ContainerInstanceInvalid(f"{instance!r} is not a container instance ARN")
    if family is not None and not _NAME.fullmatch(family):
        raise errors.FamilyInvalid(f"{family!r} is not a task definition family")
    if group is not None and not 0 < len(group) <= MAX_GROUP_CHARS:
        raise errors.GroupInvalid(f"{group!r} is not a group of 1..{MAX_GROUP_CHARS} characters")


def _is_instance_arn(text: str) -> bool:
    try:
        return arn.parse(text).resource_type == "container-instance"
    except ArnInvalid:
        return False


def _paging(filters: Filters, max_results: str | None, token: str | None) -> Paging:
    limit = None
    if max_results is not None:
        if not _DIGITS.fullmatch(max_results) or not 1 <= int(max_results) <= MAX_RESULTS:
            raise errors.MaxResultsInvalid(f"maxResults {max_results!r} is not in 1..{MAX_RESULTS}")
        limit = int(max_results)
    if token is None:
        return Paging(max_results=limit)
    try:
        after = base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except ValueError as exc:
        raise errors.NextTokenInvalid(f"nextToken {token!r} is not base64 text") from exc
    if not filters.owns(after):
        raise errors.NextTokenInvalid(f"nextToken {token!r} does not belong to this query")
    return Paging(max_results=limit, after=after)


def _token(key: str) -> str:
    return base64.b64encode(key.encode(), altchars=b"-_").decode()


async def list_records(store: Store, filters: Filters, paging: Paging) -> Listing:
    """The live records passing `filters`, one `paging` page of them (see the module doc)."""
    scan, found, limit = filters.scan, list[Found](), paging.max_results
    if not scan.per_cluster:
        last = await read_range(
            store,
            filters.matches,
            scan.prefix,
            indexed=scan.indexed,
            after=paging.after,
            limit=limit,
            found=found,
        )
        return Listing(items=found, next_token=None if last is None else _token(last))
    after = paging.after  # cluster by cluster, in registry order, from the token's on
    first = None if after is None else _cluster_of(scan, after)
    async with aclosing(clusters(store, scan.cluster_name, first=first)) as each:
        async for cluster_arn in each:
            one = Scan(_cluster_prefix(scan, filters.kind, cluster_arn), indexed=scan.indexed)
            if len(found) == paging.max_results:  # full: a token only if keys remain to read
                if (await store.list(one.prefix, limit=1)).entries:
                    return Listing(items=found, next_token=_token(_scan_key(scan, found[-1])))
                continue
            last = await read_range(
                store,
                filters.matches,
                one.prefix,
                indexed=one.indexed,
                after=after,
                limit=limit,
                found=found,
            )
            if last is not None:
                return Listing(items=found, next_token=_token(last))
            after = None
    return Listing(items=found)


def _cluster_of(scan: Scan, key: str) -> str:
    """The cluster ARN of a key `scan` reads (a record's or an index entry's); ValueError."""
    return keys.record_cluster(keys.indexed_record(key) if scan.indexed else key)


def _cluster_prefix(scan: Scan, kind: ecs.Kind, cluster_arn: str) -> str:
    """What `scan` reads of one cluster: its index entries of the value, or its records."""
    if scan.indexed and scan.field is not None and scan.value is not None:
        return keys.index_of(kind, scan.field, scan.value, cluster_arn=cluster_arn)
    return keys.records_of(kind, cluster_arn)


def _scan_key(scan: Scan, found: Found) -> str:
    """The key `scan` read `found` at: its index entry, or its record."""
    record = found.record
    if scan.indexed and scan.field is not None and scan.value is not None:
        return keys.index_entry(record.kind, scan.field, scan.value, record.cluster_arn, record.arn)
    return _key(found)


def _key(found: Found) -> str:
    return keys.record(found.record.kind, found.record.cluster_arn, found.record.arn)


def locate(kind: ecs.Kind, path: str) -> tuple[ClusterRef, arn.Arn, str]:
    """(cluster, parsed ARN, ARN text) of `<cluster name or ARN>/<task or instance ARN>`.

    Raises RouteNotFound when either part fails its pattern: v0.3 matched no route then.
    """
    cut = path.rfind("/arn:")
    cluster = cluster_ref(path[:cut]) if cut > 0 else None
    if cluster is None:
        raise errors.RouteNotFound(f"{path!r} names no cluster and {kind} ARN")
    text = path[cut + 1 :]
    try:
        parsed = arn.parse(text)
    except ArnInvalid as exc:
        raise errors.RouteNotFound(f"{text!r} is not a {kind} ARN") from exc
    if parsed.resource_type != ("task" if kind == "task" else "container-instance"):
        raise errors.RouteNotFound(f"{text!r} is not a {kind} ARN")
    return cluster, parsed, text


async def get_record(store: Store, kind: ecs.Kind, path: str) -> Found:
    """The live record of the task or instance `path` names (see `locate`).

    A cluster given by name is looked up in the account and region of the entity's ARN, where
    ECS keeps an entity's cluster. Raises TaskNotFound / InstanceNotFound when there is none.
    """
    cluster, parsed, text = locate(kind, path)
    missing = errors.TaskNotFound if kind == "task" else errors.InstanceNotFound
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
        raise errors.RecordUnreadable(f"the record at {entry.key} does not decode") from exc
    if record.is_tombstone:
        raise missing(f"{text} in {cluster_arn} was deleted")
    return Found(record=record, mod_revision=entry.mod_revision)
