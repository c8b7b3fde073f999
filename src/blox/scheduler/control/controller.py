"""The controller: for each environment, observe, plan (pure), act, record — level-triggered.

`reconcile(name)` reads what the environment wants (`environments.desired`), what the CSS shows
of its cluster (the informer's immutable snapshot, already in the planner's values), the starts
in flight (`StartsInFlight`, in the store) and the stops in flight (the executor's); asks
`plan.planner.plan` for actions; has the `executor` carry them out (concurrently, each start
batch remembered in the store BEFORE StartTask, so no crash or retry starts twice), moves the
deployment by the plan's verdict, and writes the status counters. `run()` reconciles every
environment whenever the informer sees a change, whenever an environment record changes in
the store (a watch: create, deploy, update, pause, delete act at once, not at the next
resync), when time alone changes a plan (its `wait_until`: a task turning available after
minReadySeconds, a backoff ending, a progress deadline passing), and at least every
`resync_s`.

Assumptions / Invariants:
- Only the leader runs a Controller (see `blox.scheduler.service`); a new leader rebuilds every
  piece of state it needs from the store and the CSS (stops in flight are only an
  optimisation: a second StopTask is harmless).
- ECS refusals (RESOURCE:*, AGENT, …) back the instance off exponentially (`backoff_until`,
  kept by the executor), shown in the status; a failed call leaves the environment for the
  next pass.
- After an automatic rollback the status reason, when no wait reason takes its place, says
  what caused it ("rolled back: StartTask failed: RESOURCE:MEMORY on 3 instances") until the
  environment deploys another revision; a new leader picks the words up from the stored status.
- One pass reads the environment once: the starts use the revisions of that reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from blox import errors
from blox.clock import Clock
from blox.ecs import EcsClient
from blox.model.daemon import Deployment, DeploymentStatus, Revision
from blox.scheduler import environments
from blox.scheduler.control import observed
from blox.scheduler.control.executor import MAX_IN_FLIGHT, Executor
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
WATCH_RETRY_S = 1.0
ROLLED_BACK = "rolled back: "  # how the status reason after an automatic rollback begins
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
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._store = store
        self._informer = informer
        self._ecs = ecs
        self._clock = clock
        self._resync_s = resync_s
        self._observe_pass = observe_pass
        self._starts = StartsInFlight(store)
        self.executor = Executor(
            ecs, self._starts, task_cluster=informer.task_cluster, max_in_flight=max_in_flight
        )
        self._progress: dict[str, tuple[int, datetime]] = {}  # deployment → (updated, when)
        self._needs: dict[str, TaskNeeds] = {}  # task definition ARN → needs
        # environment → (the revision an automatic rollback deployed, the status reason)
        self._rolled_back: dict[str, tuple[int, str]] = {}
        self._seen: set[str] = set()  # environments this controller has reconciled
        self.passes = 0

    @property
    def actions(self) -> defaultdict[str, int]:
        """Tasks started and stopped, starts refused (failed) or throttled, by action."""
        return self.executor.actions

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
        if name not in self._seen:
            await self._recall_rollback(name)
            self._seen.add(name)
        now = self._clock.now()
        desired = snapshot.Desired.of(
            state.environment,
            revision=revision,
            needs=await self._task_needs(revision.task_definition),
            deployment=state.deployment,
            last_progress_at=self._last_progress(state.deployment, now),
            backoff_until=self.executor.backoffs(name, revision.task_definition, now),
            deployments=await self._deployments(name),
        )
        tasks = self._informer.tasks(revision.cluster_arn)  # immutable, shared until a change
        owned = snapshot.tasks_by_instance(tasks, desired=desired)
        instances = observed.for_environment(self._informer.instances(revision.cluster_arn), owned)
        pending = snapshot.Pending(
            starts=await self._starts.pending(name, owned, now=now),
            stops=self.executor.live_stops(now),
        )
        plan = planner.plan(
            desired=desired,
            observed=snapshot.Observed(instances=instances, tasks=tasks),
            pending=pending,
            now=now,
        )
        deployment_id = state.deployment.id if state.deployment else None
        await self.executor.act(
            name,
            plan,
            revisions=await self._revisions(name, state, {s.revision for s in plan.starts}),
            started_by=(deployment_id or f"blox-{name}")[:36],
            now=now,
        )
        await self._record(name, state, plan, now)
        return plan

    async def _revisions(
        self, name: str, state: environments.DesiredState, numbers: set[int]
    ) -> dict[int, Revision]:
        """The revisions numbered `numbers`, from the pass's reading where it has them."""
        known = {r.number: r for r in (state.environment.revision, state.target) if r is not None}
        found: dict[int, Revision] = {}
        for number in numbers:
            found[number] = known.get(number) or await environments.get_revision(
                self._store, name, number=number
            )
        return found

    async def _record(
        self, name: str, state: environments.DesiredState, plan: Plan, now: datetime
    ) -> None:
        deployment = state.deployment
        if deployment is not None:
            moved, _ = self._progress.get(deployment.id, (-1, now))
            if plan.status.updated_available > moved:
                self._progress[deployment.id] = (plan.status.updated_available, now)
            if plan.verdict is Verdict.ROLLBACK:
                await self._roll_back(name, deployment, plan, now)
            elif plan.verdict in _VERDICTS and _VERDICTS[plan.verdict] != deployment.status:
                await environments.set_deployment_status(
                    self._store,
                    name,
                    deployment_id=deployment.id,
                    status=_VERDICTS[plan.verdict],
                    now=now,
                    reason=plan.status.reason,
                    failed_instances=sorted(
                        self.executor.backoffs(name, deployment.task_definition, now)
                    ),
                )
        if state.environment.deleting and plan.is_idle:
            await environments.forget(self._store, name)
            self.executor.forget(name)
            self._rolled_back.pop(name, None)
            self._seen.discard(name)
            return
        counters = dataclasses.asdict(plan.status)
        counters.pop("updated_available", None)
        counters["reason"] = self._reason(name, state, plan)
        await environments.write_status(
            self._store, name, status=environments.Status(**counters, observed_at=now)
        )

    async def _roll_back(
        self, name: str, deployment: Deployment, plan: Plan, now: datetime
    ) -> None:
        """Deploy the previous revision again; remember why for the status."""
        cause = self.executor.cause(name, deployment.task_definition)
        if cause is None:
            waited = plan.status.reason or "not available"
            cause = f"no progress within the progress deadline ({waited})"
        rollback = await environments.rollback(
            self._store, name, now=now, failed_deployment=deployment.id, cause=cause
        )
        self._rolled_back[name] = (rollback.revision, ROLLED_BACK + cause)
        logger.warning(
            "environment %s: deployment %s rolled back to revision %d: %s",
            name,
            deployment.id,
            rollback.revision,
            cause,
        )

    def _reason(self, name: str, state: environments.DesiredState, plan: Plan) -> str | None:
        """The status reason: why the rollout waits; else what caused an automatic rollback,
        until the environment deploys another revision."""
        note = self._rolled_back.get(name)
        target = state.target.number if state.target is not None else None
        if note is not None and target is not None and target > note[0]:
            del self._rolled_back[name]  # a later deployment: the rollback is history
            note = None
        if plan.status.reason is not None or note is None or target != note[0]:
            return plan.status.reason
        return note[1]

    async def _recall_rollback(self, name: str) -> None:
        """Take up the rollback words of the stored status (written by an earlier leader)."""
        try:
            status = (await environments.get_environment(self._store, name)).status
        except EnvironmentNotFound:
            return
        if status is None or status.reason is None or status.target_revision is None:
            return
        if status.reason.startswith(ROLLED_BACK):
            self._rolled_back[name] = (status.target_revision, status.reason)

    async def _deployments(self, name: str) -> dict[str, int]:
        """Deployment id → revision (v0.3 tasks are known by their startedBy); {} while the
        environment is being deleted (its records answer as gone; groups still name its tasks)."""
        try:
            found = await environments.list_deployments(self._store, name)
        except EnvironmentNotFound:
            return {}
        return {d.id: d.revision for d in found}

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
