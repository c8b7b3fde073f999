"""The reconciler: repair the store from ECS's own lists, at start and on an interval.

One pass (`Reconciler.reconcile_once`) lists every cluster ECS knows and every cluster the
store holds records of, and for each in this ECS's scope: lists its container instances and its
tasks (desiredStatus RUNNING and STOPPED, every page), describes them 100 at a time and applies
each as an event of the version ECS reports; then describes the live stored records that the
lists did not name, tombstones the ones ECS calls MISSING, and deletes tombstones older than
the TTL. The decisions are `blox.css.drift` (pure) and `blox.css.apply` (through the processor);
this module is their shell. `lead(...)` runs passes only while this replica leads the
`css-reconciler` election, so several CSS replicas on one etcd reconcile once, not N times.

Assumptions / Invariants:
- Every write goes through `Processor` (version-ordered compare-and-swap): a pass racing newer
  ingested events never overwrites them, and a record is tombstoned only on ECS's MISSING.
- A cluster that fails (throttled beyond the client's retries, unreachable ECS) is reported and
  retried next pass; the others go on. ClusterNotFound tombstones the cluster's records.
- After each pass the leader writes `keys.RECONCILED` ({"at", "by", "durationS"}): every replica
  reads it for its readiness ("a reconcile finished since I started").
Callers: `blox.css.service` (composition), the tests.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from blox import errors
from blox.clock import Clock
from blox.css import drift
from blox.css.processor import Outcome, Processor
from blox.ecs import ClusterNotFound, EcsClient
from blox.model import arn, ecs
from blox.model.errors import ArnInvalid, RecordInvalid
from blox.store import Election, Store, keys, while_leading

__all__ = ["ELECTION", "DESCRIBE_CHUNK", "Report", "Reconciler", "last_reconciled", "lead"]

logger = logging.getLogger(__name__)

ELECTION = "css-reconciler"
DESCRIBE_CHUNK = 100  # one Describe* call: details are applied as they arrive, not all held
SCAN_PAGE = 1000
TASK_LISTS: tuple[str, ...] = ("RUNNING", "STOPPED")


@dataclass
class Report:
    """What one pass did, for logs, metrics and the tests."""

    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = 0.0
    clusters: int = 0
    described: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)  # by kind: drift repaired by version
    tombstoned: Counter[str] = field(default_factory=Counter)
    expired: Counter[str] = field(default_factory=Counter)
    unrepairable: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # cluster ARN → why it was skipped

    @property
    def repaired(self) -> int:
        """Records this pass changed: written and tombstoned, every kind."""
        return sum(self.written.values()) + sum(self.tombstoned.values())


@dataclass
class _Stored:
    """The ARNs of one cluster's stored records, live and tombstoned (ARNs only: at 100k
    records the details would cost hundreds of MB)."""

    live: dict[ecs.Kind, list[str]] = field(default_factory=lambda: defaultdict(list))
    tombstones: dict[ecs.Kind, list[str]] = field(default_factory=lambda: defaultdict(list))


class Reconciler:
    """Repairs the records of every cluster one ECS endpoint answers for."""

    def __init__(
        self,
        store: Store,
        client: EcsClient,
        processor: Processor,
        *,
        clock: Clock,
        tombstone_ttl_s: float,
    ) -> None:
        self._store = store
        self._ecs = client
        self._processor = processor
        self._clock = clock
        self._ttl_s = tombstone_ttl_s

    async def reconcile_once(self) -> Report:
        """One full pass over every cluster; never raises for one cluster's failure."""
        report = Report(started_at=self._clock.now())
        began = self._clock.monotonic()
        listed = await self._ecs.list_clusters()
        stored = await self._stored_by_cluster()
        scopes = [scope for c in listed if (scope := _scope(c)) is not None]
        clusters = sorted(set(listed) | {c for c in stored if drift.in_scope(c, scopes)})
        for cluster in clusters:
            report.clusters += 1
            try:
                await self._cluster(cluster, stored.get(cluster, _Stored()), report)
            except errors.BloxError as exc:  # ECS or the store failed: next pass retries
                logger.warning("reconcile of %s failed: %s", cluster, exc)
                report.failed[cluster] = str(exc)
        report.duration_s = self._clock.monotonic() - began
        report.finished_at = self._clock.now()
        return report

    async def _cluster(self, cluster: str, stored: _Stored, report: Report) -> None:
        try:
            listed: dict[ecs.Kind, list[str]] = {
                "instance": await self._ecs.list_container_instances(cluster),
                "task": [
                    task
                    for status in TASK_LISTS
                    for task in await self._ecs.list_tasks(cluster, desired_status=status)  # type: ignore[arg-type]
                ],
            }
        except ClusterNotFound:
            logger.info("cluster %s is gone from ECS: its records become tombstones", cluster)
            for kind in ecs.KINDS:
                for entity in stored.live[kind]:
                    await self._tombstone(kind, cluster, entity, report)
        else:
            for kind in ecs.KINDS:
                await self._describe_and_apply(kind, cluster, listed[kind], report)
                unlisted = drift.unlisted(stored.live[kind], listed[kind])
                missing = await self._describe_and_apply(kind, cluster, unlisted, report)
                for gone in missing:
                    await self._tombstone(kind, cluster, gone, report)
        for kind in ecs.KINDS:
            for entity in stored.tombstones[kind]:
                if await self._processor.expire(kind, cluster, entity, ttl_s=self._ttl_s):
                    report.expired[kind] += 1

    async def _describe_and_apply(
        self, kind: ecs.Kind, cluster: str, arns: Sequence[str], report: Report
    ) -> list[str]:
        """Describe `arns` and apply what ECS says; return the ones ECS calls MISSING."""
        missing: list[str] = []
        for start in range(0, len(arns), DESCRIBE_CHUNK):
            chunk = arns[start : start + DESCRIBE_CHUNK]
            if kind == "task":
                described = await self._ecs.describe_tasks(cluster, chunk)
                details = described.details()
                failures = described.failures
            else:
                instances = await self._ecs.describe_container_instances(cluster, chunk)
                details, failures = instances.details(), instances.failures
            report.described[kind] += len(details)
            found: list[str] = []
            for detail in details:
                event = drift.event_of(kind, cluster, detail)
                if isinstance(event, drift.Unrepairable):
                    logger.warning("cannot repair %s %s: %s", kind, event.arn, event.reason)
                    report.unrepairable += 1
                    continue
                found.append(event.arn)
                if await self._processor.apply_event(event) is Outcome.APPLIED:
                    report.written[kind] += 1
            gone = drift.gone_of(
                chunk, found, [f.arn for f in failures if f.reason == drift.MISSING and f.arn]
            )
            missing.extend(gone.missing)
            if gone.unanswered:
                logger.info("ECS gave no answer for %d %ss; next pass", len(gone.unanswered), kind)
        return missing

    async def _tombstone(self, kind: ecs.Kind, cluster: str, entity: str, report: Report) -> None:
        if await self._processor.tombstone(kind, cluster, entity):
            report.tombstoned[kind] += 1

    async def _stored_by_cluster(self) -> dict[str, _Stored]:
        """Every stored record, grouped by cluster ARN (one paged scan per kind)."""
        grouped: dict[str, _Stored] = defaultdict(_Stored)
        for kind, prefix in (("task", keys.TASKS), ("instance", keys.INSTANCES)):
            after: str | None = None
            while True:
                page = await self._store.list(prefix, limit=SCAN_PAGE, after=after)
                for entry in page.entries:
                    try:
                        record = ecs.decode(entry.value)
                    except RecordInvalid:
                        continue  # the processor overwrites it on the next event or describe
                    bucket = grouped[record.cluster_arn]
                    target = bucket.tombstones if record.is_tombstone else bucket.live
                    target[kind].append(record.arn)  # type: ignore[index]
                after = page.next_after
                if after is None:
                    break
        return dict(grouped)


def _scope(cluster_arn: str) -> tuple[str, str, str] | None:
    try:
        parsed = arn.parse(cluster_arn)
    except ArnInvalid:
        return None
    return parsed.partition, parsed.region, parsed.account


async def last_reconciled(store: Store) -> datetime | None:
    """When the last reconcile pass (by any replica) finished, per `keys.RECONCILED`."""
    entry = await store.get(keys.RECONCILED)
    if entry is None:
        return None
    try:
        return datetime.fromisoformat(json.loads(entry.value)["at"])
    except (ValueError, KeyError, TypeError):
        return None


async def lead(
    store: Store,
    reconciler: Reconciler,
    *,
    interval_s: float,
    identity: str,
    clock: Clock,
    on_report: Callable[[Report], None] = lambda report: None,
    on_failure: Callable[[BaseException], None] = lambda error: None,
    election_ttl_s: int = 10,
) -> None:
    """Campaign for the reconciler's leadership and, while leading, pass every `interval_s`.

    Runs until cancelled. Losing the leadership cancels the pass in hand (its writes are all
    version-ordered, so half a pass is harmless) and campaigns again.
    """

    async def passes() -> None:
        while True:
            await _pass(store, reconciler, identity, on_report, on_failure)
            await clock.sleep(interval_s)

    election = Election(store, ELECTION, ttl_s=election_ttl_s, clock=clock)
    await while_leading(election, identity, passes, clock=clock)


async def _pass(
    store: Store,
    reconciler: Reconciler,
    identity: str,
    on_report: Callable[[Report], None],
    on_failure: Callable[[BaseException], None],
) -> None:
    """One pass, its marker and its report; a failure is logged, the next pass retries."""
    try:
        report = await reconciler.reconcile_once()
        finished = report.finished_at or report.started_at
        marker = {"at": finished.isoformat(), "by": identity, "durationS": report.duration_s}
        await store.put(keys.RECONCILED, json.dumps(marker).encode())
    except errors.BloxError as exc:
        logger.warning("reconcile pass failed: %s", exc)
        on_failure(exc)
        return
    logger.info(
        "reconciled %d clusters in %.2fs: %d written, %d tombstoned, %d expired, %d failed",
        report.clusters,
        report.duration_s,
        sum(report.written.values()),
        sum(report.tombstoned.values()),
        sum(report.expired.values()),
        len(report.failed),
    )
    on_report(report)
