"""The controller: for each environment, observe, plan (pure), act, record — level-triggered.

`reconcile(name)` reads what the environment wants (`environments.desired`), what the CSS shows
of its cluster (the informer), the starts in flight (`StartsInFlight`, in the store) and the
stops in flight (here); asks `plan.planner.plan` for actions; issues the stops, then the starts
(each batch remembered in the store BEFORE StartTask, so no crash or retry starts twice), moves
the deployment by the plan's verdict, and writes the status counters. `run()` reconciles every
environment whenever the informer sees a change, whenever an environment record changes in
the store (a watch: create, deploy, update, pause, delete act at once, not at the next
resync), when time alone changes a plan (its `wait_until`: a task turning available after
minReadySeconds, a backoff ending, a progress deadline passing), and at least every
`resync_s`.

Assumptions / Invariants:
- Only the leader runs a Controller (see `blox.scheduler.service`); a new leader rebuilds every
  piece of state it needs from the store and the CSS (stops in flight are only an
  optimisation: a second StopTask is harmless).
- ECS refusals (RESOURCE:*, AGENT, …) back the instance off exponentially (`backoff_until`),
  shown in the status; a failed call leaves the environment for the next pass. A backoff
  belongs to one environment and one task definition: another environment's refusals, or
  those of a revision rolled back from, never hold a start back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from blox import errors
from blox.clock import Clock
from blox.ecs import EcsClient
from blox.model.daemon import Deployment, DeploymentStatus
from blox.scheduler import environments
from blox.scheduler.control import observed
from blox.scheduler.control.informer import Informer
from blox.scheduler.control.starts import StartsInFlight
from blox.scheduler.errors import EnvironmentNotFound
from blox.scheduler.plan import planner, snapshot
from blox.scheduler.plan.actions import Plan, Verdict
from blox.scheduler.plan.snapshot import TaskNeeds
from blox.store import Store, keys
from blox.store import errors as store_errors

__all__ = ["Controller"]

logger = logging.getLogger(__name__)

RESYNC_S = 5.0
STOP_TTL_S = 60.0
BACKOFF_BASE_S, BACKOFF_CAP_S = 2.0, 300.0
WATCH_RETRY_S = 1.0
_VERDICTS = {
    Verdict.RUNNING: DeploymentStatus.RUNNING,
    Verdict.COMPLETED: DeploymentStatus.COMPLETED,
    Verdict.FAILED: DeploymentStatus.FAILED,
}


class Controller:
    """Keeps every environment's tasks where its target revision wants them."""

    def __init__(
        self,
        store: Store,
        informer: Informer,
        ecs: EcsClient,
        *,
        clock: Clock,
        resync_s: float = RESYNC_S,
        observe_pass: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._informer = informer
        self._ecs = ecs
        self._clock = clock
        self._resync_s = resync_s
        self._observe_pass = observe_pass
        self._starts = StartsInFlight(store)
        self._stops: dict[str, datetime] = {}  # task ARN → when StopTask was issued
        # environment → instance → (until, failures, the task definition ECS refused)
        self._backoff: defaultdict[str, dict[str, tuple[datetime, int, str]]] = defaultdict(dict)
        self._progress: dict[str, tuple[int, datetime]] = {}  # deployment → (updated, when)
        self._needs: dict[str, TaskNeeds] = {}  # task definition ARN → needs
        self.passes = 0
        self.actions: defaultdict[str, int] = defaultdict(int)  # started / stopped / failed

    async def run(self) -> None:
        """Reconcile every environment on each change, when a plan's `wait_until` comes, and
        every `resync_s`, until cancelled."""
        await self._informer.synced.wait()
        watching = asyncio.ensure_future(self._watch_desired(await self._store.revision() + 1))
        try:
            await self._passes()
        finally:
            watching.cancel()
            await asyncio.wait({watching})

    async def _passes(self) -> None:
        while True:
            names = [
                view.environment.name
                for view in await environments.list_environments(self._store, include_deleting=True)
            ]
            wake: datetime | None = None
            for name in names:
                began = self._clock.monotonic()
                try:
                    plan = await self.reconcile(name)
                except errors.BloxError as exc:  # ECS or the store: the next pass retries
                    logger.warning("reconcile of environment %s failed: %s", name, exc)
                    plan = None
                if plan is not None and plan.wait_until is not None:
                    wake = plan.wait_until if wake is None else min(wake, plan.wait_until)
                if self._observe_pass is not None:
                    self._observe_pass(self._clock.monotonic() - began)
            self.passes += 1
            pause = self._resync_s
            if wake is not None:
                pause = min(pause, max(0.0, (wake - self._clock.now()).total_seconds()))
            await self._informer.wait_changed(pause)

    async def _watch_desired(self, start_revision: int) -> None:
        """Wake the loop (as an informer change does) on every change of an environment record
        from `start_revision` on; a lost or compacted watch starts again from now."""
        while True:
            try:
                async for _ in self._store.watch(keys.ENVIRONMENTS, start_revision=start_revision):
                    self._informer.changed.set()
            except store_errors.StoreError as exc:
                logger.info("watching environments failed (%s); watching again", exc)
            await self._clock.sleep(WATCH_RETRY_S)
            self._informer.changed.set()  # whatever changed meanwhile: one more pass
            start_revision = await self._revision_or(start_revision)

    async def _revision_or(self, fallback: int) -> int:
        try:
            return await self._store.revision() + 1
        except store_errors.StoreError:
            return fallback

    async def reconcile(self, name: str) -> Plan | None:
        """One pass over environment `name`; the plan it carried out (None: nothing to run)."""
        state = await environments.desired(self._store, name)
        if state is None:
            return None
        revision = state.target or state.environment.revision
        if state.target is None and not state.environment.deleting:
            return None  # v0.3: nothing runs before the first deployment
        now = self._clock.now()
        deployments = await self._deployments(name)
        tasks = [observed.task(t) for t in self._informer.tasks(revision.cluster_arn)]
        ours = {
            t.task_arn: number
            for t in tasks
            if (number := snapshot.revision_of(t, environment=name, deployments=deployments))
        }
        instances = observed.for_environment(
            [observed.instance(i) for i in self._informer.instances(revision.cluster_arn)],
            tasks,
            environment=name,
            deployments=deployments,
        )
        pending = snapshot.Pending(
            starts=await self._starts.pending(name, tasks, ours=ours, now=now),
            stops=frozenset(self._live_stops(now)),
        )
        desired = snapshot.Desired.of(
            state.environment,
            revision=revision,
            needs=await self._task_needs(revision.task_definition),
            deployment=state.deployment,
            last_progress_at=self._last_progress(state.deployment, now),
            backoff_until=self._backoffs(name, revision.task_definition, now),
            deployments=deployments,
        )
        plan = planner.plan(
            desired=desired,
            observed=snapshot.Observed(instances=instances, tasks=tuple(tasks)),
            pending=pending,
            now=now,
        )
        await self._act(name, plan, state.deployment.id if state.deployment else None, now)
        await self._record(name, state, plan, now)
        return plan

    async def _act(self, name: str, plan: Plan, deployment_id: str | None, now: datetime) -> None:
        for stop in plan.stops:
            await self._stop(name, stop.task_arn, f"blox: {stop.reason}", now)
        by_revision: defaultdict[int, list[str]] = defaultdict(list)
        for start in plan.starts:
            by_revision[start.revision].append(start.container_instance_arn)
        for revision, instances in sorted(by_revision.items()):
            await self._start(name, revision, instances, deployment_id, now)

    async def _stop(self, name: str, task_arn: str, reason: str, now: datetime) -> None:
        cluster = _cluster_of_task(task_arn, self._informer, name)
        if cluster is None:
            return
        self._stops[task_arn] = now
        await self._ecs.stop_task(cluster, task_arn, reason[:255])
        self.actions["stopped"] += 1

    async def _start(
        self,
        name: str,
        revision_number: int,
        instances: list[str],
        deployment_id: str | None,
        now: datetime,
    ) -> None:
        state = await environments.desired(self._store, name)
        if state is None:
            return
        revision = state.target if state.target and state.target.number == revision_number else None
        if revision is None:
            revision = await environments.get_revision(self._store, name, number=revision_number)
        await self._starts.issue(name, revision_number, instances, now)
        started = await self._ecs.start_task(
            revision.cluster_arn,
            revision.task_definition,
            instances,
            started_by=(deployment_id or f"blox-{name}")[:36],
            group=snapshot.group_of(name, revision_number),
        )
        self.actions["started"] += len(started.tasks)
        refused = [f.arn for f in started.failures if f.arn]
        backoffs = self._backoff[name]
        for instance in refused:
            _, failures, refused_definition = backoffs.get(instance, (now, 0, ""))
            if refused_definition != revision.task_definition:
                failures = 0  # another task definition's refusals say nothing of this one
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**failures)
            until = now + timedelta(seconds=delay)
            backoffs[instance] = (until, failures + 1, revision.task_definition)
            logger.info("ECS refused a start on %s; backing off %.0fs", instance, delay)
        for task in started.tasks:
            backoffs.pop(str(task.get("containerInstanceArn")), None)
        if refused:
            self.actions["failed"] += len(refused)
            await self._starts.forget(name, refused)

    async def _record(
        self, name: str, state: environments.DesiredState, plan: Plan, now: datetime
    ) -> None:
        deployment = state.deployment
        if deployment is not None:
            moved, _ = self._progress.get(deployment.id, (-1, now))
            if plan.status.updated_available > moved:
                self._progress[deployment.id] = (plan.status.updated_available, now)
            if plan.verdict is Verdict.ROLLBACK:
                await environments.rollback(
                    self._store, name, now=now, failed_deployment=deployment.id
                )
            elif plan.verdict in _VERDICTS and _VERDICTS[plan.verdict] != deployment.status:
                await environments.set_deployment_status(
                    self._store,
                    name,
                    deployment_id=deployment.id,
                    status=_VERDICTS[plan.verdict],
                    now=now,
                    reason=plan.status.reason,
                    failed_instances=sorted(self._backoffs(name, deployment.task_definition, now)),
                )
        if state.environment.deleting and plan.is_idle:
            await environments.forget(self._store, name)
            self._backoff.pop(name, None)
            return
        counters = dataclasses.asdict(plan.status)
        counters.pop("updated_available", None)
        await environments.write_status(
            self._store, name, status=environments.Status(**counters, observed_at=now)
        )

    async def _deployments(self, name: str) -> dict[str, int]:
        """Deployment id → revision (v0.3 tasks are known by their startedBy); {} while the
        environment is being deleted (its records answer as gone; groups still name its tasks)."""
        try:
            found = await environments.list_deployments(self._store, name)
        except EnvironmentNotFound:
            return {}
        return {d.id: d.revision for d in found}

    def _backoffs(self, name: str, task_definition: str, now: datetime) -> dict[str, datetime]:
        """Instance → until when starts of `task_definition` for `name` back off there."""
        return {
            instance: until
            for instance, (until, _, refused) in self._backoff.get(name, {}).items()
            if until > now and refused == task_definition
        }

    def _live_stops(self, now: datetime) -> list[str]:
        expiry = timedelta(seconds=STOP_TTL_S)
        self._stops = {t: at for t, at in self._stops.items() if now - at < expiry}
        return list(self._stops)

    def _last_progress(self, deployment: Deployment | None, now: datetime) -> datetime | None:
        """When the deployment in progress last moved (tracked by its updated count)."""
        if deployment is None:
            return None
        return self._progress.get(deployment.id, (0, deployment.created_at or now))[1]

    async def _task_needs(self, task_definition: str) -> TaskNeeds:
        if task_definition not in self._needs:
            definition = await self._ecs.describe_task_definition(task_definition)
            self._needs[task_definition] = observed.needs(definition)
        return self._needs[task_definition]


def _cluster_of_task(task_arn: str, informer: Informer, name: str) -> str | None:
    """The cluster of a task the informer knows (StopTask needs it)."""
    found = informer.task_cluster(task_arn)
    if found is None:
        logger.warning(
            "environment %s: task %s is no longer known; not stopping it", name, task_arn
        )
    return found
