"""The executor: carries out a plan's stops and starts on ECS, several calls at once.

`Executor.act(name, plan, revisions=, started_by=, now=)` sends every StopTask and every
StartTask batch (10 instances, one call) of a plan concurrently, at most
`max_in_flight` calls at a time, and returns once all are done. ECS's refusals of a start
(RESOURCE:*, AGENT, …) back that instance off exponentially (`backoffs`), for one environment
and one task definition; `cause` words them for the status after an automatic rollback.
Caller: `controller.Controller`, once per reconcile of an environment.

Assumptions / Invariants:
- Each batch's starts are written to the store (`StartsInFlight.issue`) before its StartTask
  call: neither a crash nor a retry nor a new leader starts a task twice.
- The actions of one plan are independent: a plan never starts and stops on one instance
  (a start goes where nothing of ours is live, a surge start next to an old task that stops
  in a later pass), so their order does not matter.
- StartTask is retried by `blox.ecs` only while throttled; a batch still throttled after
  those retries did not run, so its starts are forgotten and the next pass plans them again.
  Any other failed call leaves its starts in flight (it may have run) until their TTL; every
  other call of the plan still completes, then the first error is raised.
- A backoff belongs to one environment and one task definition: another environment's
  refusals, or those of a revision rolled back from, never hold a start back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol

from blox.ecs import START_TASK_BATCH, Started
from blox.ecs.errors import Throttled
from blox.model.daemon import Revision
from blox.scheduler.control.starts import StartsInFlight
from blox.scheduler.plan import snapshot
from blox.scheduler.plan.actions import Plan

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "MAX_IN_FLIGHT",
    "STOP_TTL_S",
    "EcsActions",
    "Executor",
]

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 4  # ECS calls at once (each takes a worker thread of the default executor)
STOP_TTL_S = 60.0
BACKOFF_BASE_S, BACKOFF_CAP_S = 2.0, 300.0


class EcsActions(Protocol):
    """The two ECS calls the executor makes (`blox.ecs.EcsClient` provides them)."""

    async def start_task(
        self,
        cluster: str,
        task_definition: str,
        instance_arns: Sequence[str],
        *,
        started_by: str,
        group: str | None = None,
    ) -> Started: ...

    async def stop_task(self, cluster: str, task_arn: str, reason: str) -> object: ...


class _Refusal(NamedTuple):
    until: datetime  # no start of `task_definition` on the instance before then
    failures: int  # refusals in a row
    task_definition: str
    reason: str  # ECS's word for the last one (RESOURCE:MEMORY, AGENT, …)


class Executor:
    """Stops and starts on ECS, bounded; remembers stops in flight and start refusals."""

    def __init__(
        self,
        ecs: EcsActions,
        starts: StartsInFlight,
        *,
        task_cluster: Callable[[str], str | None],
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._ecs = ecs
        self._starts = starts
        self._task_cluster = task_cluster
        self._gate = asyncio.Semaphore(max_in_flight)
        self._stops: dict[str, datetime] = {}  # task ARN → when StopTask was issued
        self._refused: defaultdict[str, dict[str, _Refusal]] = defaultdict(dict)
        self.actions: defaultdict[str, int] = defaultdict(int)  # started / stopped / failed / …

    async def act(
        self,
        name: str,
        plan: Plan,
        *,
        revisions: Mapping[int, Revision],
        started_by: str,
        now: datetime,
    ) -> None:
        """Every stop and start of `plan` (environment `name`); `revisions` by number."""
        calls: list[Callable[[], Awaitable[None]]] = []
        for stop in plan.stops:
            calls.append(partial(self._stop, name, stop.task_arn, f"blox: {stop.reason}", now))
        by_revision: defaultdict[int, list[str]] = defaultdict(list)
        for start in plan.starts:
            by_revision[start.revision].append(start.container_instance_arn)
        for number, instances in sorted(by_revision.items()):
            revision = revisions[number]
            for first in range(0, len(instances), START_TASK_BATCH):
                batch = instances[first : first + START_TASK_BATCH]
                calls.append(partial(self._start, name, revision, batch, started_by, now))
        await self._bounded(calls)

    def live_stops(self, now: datetime) -> frozenset[str]:
        """Task ARNs a StopTask was issued for within `STOP_TTL_S`."""
        expiry = timedelta(seconds=STOP_TTL_S)
        self._stops = {t: at for t, at in self._stops.items() if now - at < expiry}
        return frozenset(self._stops)

    def backoffs(self, name: str, task_definition: str, now: datetime) -> dict[str, datetime]:
        """Instance → until when starts of `task_definition` for `name` back off there."""
        return {
            instance: refusal.until
            for instance, refusal in self._refused.get(name, {}).items()
            if refusal.until > now and refusal.task_definition == task_definition
        }

    def cause(self, name: str, task_definition: str) -> str | None:
        """ECS's refusals of `task_definition` for `name`, in words ("StartTask failed:
        RESOURCE:MEMORY on 3 instances"), most frequent first; None when there were none."""
        reasons = Counter(
            refusal.reason
            for refusal in self._refused.get(name, {}).values()
            if refusal.task_definition == task_definition
        )
        if not reasons:
            return None
        parts = [
            f"{reason} on {count} instance{'' if count == 1 else 's'}"
            for reason, count in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0]))
        ]
        return "StartTask failed: " + ", ".join(parts)

    def forget(self, name: str) -> None:
        """Drop what is remembered of environment `name` (it is gone)."""
        self._refused.pop(name, None)

    async def _bounded(self, calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
        """Run `calls`, at most `max_in_flight` at once; all finish before an error is raised."""

        async def gated(call: Callable[[], Awaitable[None]]) -> None:
            async with self._gate:
                await call()

        if not calls:
            return
        results = await asyncio.gather(*(gated(call) for call in calls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _stop(self, name: str, task_arn: str, reason: str, now: datetime) -> None:
        cluster = self._task_cluster(task_arn)
        if cluster is None:
            logger.warning(
                "environment %s: task %s is no longer known; not stopping it", name, task_arn
            )
            return
        self._stops[task_arn] = now
        await self._ecs.stop_task(cluster, task_arn, reason[:255])
        self.actions["stopped"] += 1

    async def _start(
        self, name: str, revision: Revision, instances: list[str], started_by: str, now: datetime
    ) -> None:
        """One StartTask call, recorded in the store before it is made."""
        await self._starts.issue(name, revision.number, instances, now)
        try:
            started = await self._ecs.start_task(
                revision.cluster_arn,
                revision.task_definition,
                instances,
                started_by=started_by,
                group=snapshot.group_of(name, revision.number),
            )
        except Throttled as exc:  # still throttled after blox.ecs's retries: it did not run
            logger.warning("StartTask for %s stayed throttled (%s); next pass retries", name, exc)
            self.actions["throttled"] += len(instances)
            await self._starts.forget(name, instances)
            return
        self.actions["started"] += len(started.tasks)
        refused = self._refused[name]
        for task in started.tasks:
            refused.pop(str(task.get("containerInstanceArn")), None)
        failed = [f for f in started.failures if f.arn]
        for failure in failed:
            assert failure.arn is not None
            known = refused.get(failure.arn)
            failures = 0
            if known is not None and known.task_definition == revision.task_definition:
                failures = known.failures  # another task definition's refusals say nothing
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**failures)
            refused[failure.arn] = _Refusal(
                until=now + timedelta(seconds=delay),
                failures=failures + 1,
                task_definition=revision.task_definition,
                reason=failure.reason or "unknown",
            )
            logger.info(
                "ECS refused a start on %s (%s); backing off %.0fs",
                failure.arn,
                failure.reason,
                delay,
            )
        if failed:
            self.actions["failed"] += len(failed)
            await self._starts.forget(name, [f.arn for f in failed if f.arn])
