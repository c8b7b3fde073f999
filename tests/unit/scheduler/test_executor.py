"""The executor (`control.executor.Executor`) against a fake ECS that counts the calls in flight
and reads the real (memory) store at each StartTask: batches of 10 go out concurrently but never
more than `max_in_flight` at once, each batch is in the store before its call, a batch still
throttled is forgotten, ECS's refusals back the instance off and are worded for the status,
and a failed call does not stop the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from mypy_boto3_ecs.type_defs import TaskTypeDef

from blox.ecs import Started
from blox.ecs.convert import Failure
from blox.ecs.errors import ServerError, Throttled
from blox.model.daemon import Revision, RolloutPolicy
from blox.scheduler.control.executor import BACKOFF_BASE_S, Executor
from blox.scheduler.control.starts import StartsInFlight
from blox.scheduler.plan.actions import Plan, Start, StartReason, Stop, StopReason, Verdict
from blox.scheduler.plan.status import DaemonStatus
from blox.store import Store, keys, open_store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER = f"{ACCOUNT}:cluster/prod"
ENV = "web"
REVISION = Revision(
    number=2,
    task_definition=f"{ACCOUNT}:task-definition/app:2",
    cluster_arn=CLUSTER,
    constraints=(),
    rollout=RolloutPolicy(),
)


def ci(n: int) -> str:
    return f"{ACCOUNT}:container-instance/prod/{n:04d}"


def ta(n: int) -> str:
    return f"{ACCOUNT}:task/prod/{n:04d}"


class FakeEcs:
    """StartTask / StopTask that yield to the loop while "in flight" and remember what they saw."""

    def __init__(
        self,
        store: Store,
        *,
        refuse: Mapping[str, str] | None = None,
        throttle: Iterable[str] = (),
        broken: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.refuse = dict(refuse or {})
        self.throttle = set(throttle)  # a batch with one of these instances stays throttled
        self.broken = set(broken)  # StopTask of these task ARNs fails
        self.in_flight = self.peak = 0
        self.batches: list[list[str]] = []
        self.recorded_first: list[bool] = []
        self.stopped: list[str] = []

    async def _busy(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(5):
            await asyncio.sleep(0)

    async def start_task(
        self,
        cluster: str,
        task_definition: str,
        instance_arns: Iterable[str],
        *,
        started_by: str,
        group: str | None = None,
    ) -> Started:
        arns = list(instance_arns)
        assert (cluster, task_definition, group) == (
            CLUSTER,
            REVISION.task_definition,
            "blox:web:2",
        )
        prefix = keys.scheduler_starts_of(ENV)
        recorded = {e.key.removeprefix(prefix) for e in (await self.store.list(prefix)).entries}
        self.recorded_first.append(set(arns) <= recorded)
        self.batches.append(arns)
        await self._busy()
        try:
            if self.throttle & set(arns):
                raise Throttled("Rate exceeded")
            tasks: list[TaskTypeDef] = [
                {"taskArn": f"{arn}/task", "containerInstanceArn": arn}
                for arn in arns
                if arn not in self.refuse
            ]
            failures = [Failure(arn, self.refuse[arn]) for arn in arns if arn in self.refuse]
            return Started(tasks=tasks, failures=failures)
        finally:
            self.in_flight -= 1

    async def stop_task(self, cluster: str, task_arn: str, reason: str) -> object:
        assert cluster == CLUSTER and reason.startswith("blox: ")
        await self._busy()
        try:
            if task_arn in self.broken:
                raise ServerError("InternalError")
            self.stopped.append(task_arn)
            return {}
        finally:
            self.in_flight -= 1


def plan(starts: Iterable[int] = (), stops: Iterable[int] = ()) -> Plan:
    status = DaemonStatus(0, 0, 0, 0, 0, 0, 0, 0, None, REVISION.number)
    return Plan(
        starts=tuple(Start(ci(n), REVISION.number, StartReason.MISSING) for n in starts),
        stops=tuple(Stop(ta(n), StopReason.OUTDATED) for n in stops),
        waits=(),
        status=status,
        verdict=Verdict.UNCHANGED,
    )


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = await open_store("memory://")
    yield opened
    await opened.close()


def executor(ecs: FakeEcs, store: Store, max_in_flight: int = 4) -> Executor:
    return Executor(
        ecs, StartsInFlight(store), task_cluster=lambda arn: CLUSTER, max_in_flight=max_in_flight
    )


async def in_flight(store: Store) -> set[str]:
    prefix = keys.scheduler_starts_of(ENV)
    return {e.key.removeprefix(prefix) for e in (await store.list(prefix)).entries}


async def act(run: Executor, what: Plan) -> None:
    await run.act(ENV, what, revisions={2: REVISION}, started_by="deployment-1", now=NOW)


@pytest.mark.parametrize("bound", [1, 4, 8])
async def test_batches_and_stops_go_out_together_but_never_more_than_the_bound(
    store: Store, bound: int
) -> None:
    ecs = FakeEcs(store)
    run = executor(ecs, store, max_in_flight=bound)
    await act(run, plan(starts=range(95), stops=range(12)))
    assert ecs.peak == bound, "as many calls in flight as allowed, and no more"
    assert [len(b) for b in ecs.batches] == [10] * 9 + [5], "StartTask in batches of 10"
    assert sorted(arn for b in ecs.batches for arn in b) == [ci(n) for n in range(95)]
    assert sorted(ecs.stopped) == [ta(n) for n in range(12)]
    assert (run.actions["started"], run.actions["stopped"]) == (95, 12)
    assert run.live_stops(NOW) == {ta(n) for n in range(12)}
    assert run.live_stops(NOW + timedelta(minutes=5)) == frozenset(), "stops in flight expire"


async def test_each_batch_is_in_the_store_before_its_start_task_call(store: Store) -> None:
    ecs = FakeEcs(store)
    await act(executor(ecs, store), plan(starts=range(40)))
    assert ecs.recorded_first == [True] * 4
    assert await in_flight(store) == {ci(n) for n in range(40)}, "kept until the CSS shows them"


async def test_a_batch_still_throttled_is_forgotten_and_the_others_start(store: Store) -> None:
    ecs = FakeEcs(store, throttle={ci(13)})
    run = executor(ecs, store)
    await act(run, plan(starts=range(30)))
    assert await in_flight(store) == {ci(n) for n in range(30) if not 10 <= n < 20}
    assert (run.actions["started"], run.actions["throttled"]) == (20, 10)
    assert run.backoffs(ENV, REVISION.task_definition, NOW) == {}, "throttling is not a refusal"


async def test_refusals_back_off_and_are_worded_for_the_status(store: Store) -> None:
    refuse = {ci(1): "RESOURCE:MEMORY", ci(2): "RESOURCE:MEMORY", ci(3): "AGENT"}
    ecs = FakeEcs(store, refuse=refuse)
    run = executor(ecs, store)
    await act(run, plan(starts=range(5)))
    assert await in_flight(store) == {ci(0), ci(4)}, "refused starts are not in flight"
    until = NOW + timedelta(seconds=BACKOFF_BASE_S)
    assert run.backoffs(ENV, REVISION.task_definition, NOW) == dict.fromkeys(refuse, until)
    assert run.backoffs(ENV, f"{ACCOUNT}:task-definition/app:1", NOW) == {}
    assert run.backoffs("other", REVISION.task_definition, NOW) == {}
    assert run.cause(ENV, REVISION.task_definition) == (
        "StartTask failed: RESOURCE:MEMORY on 2 instances, AGENT on 1 instance"
    )
    assert run.actions["failed"] == 3

    later = NOW + timedelta(seconds=10)
    ecs.refuse = {ci(1): "RESOURCE:MEMORY"}
    await run.act(ENV, plan(starts=[1, 2]), revisions={2: REVISION}, started_by="d", now=later)
    backoffs = run.backoffs(ENV, REVISION.task_definition, later)
    assert backoffs == {ci(1): later + timedelta(seconds=2 * BACKOFF_BASE_S)}, "doubled; 2 ran"
    assert run.cause(ENV, REVISION.task_definition) == (
        "StartTask failed: AGENT on 1 instance, RESOURCE:MEMORY on 1 instance"
    )
    run.forget(ENV)
    assert run.cause(ENV, REVISION.task_definition) is None


async def test_a_failed_call_does_not_stop_the_others_and_is_raised_after(store: Store) -> None:
    ecs = FakeEcs(store, broken={ta(0)})
    run = executor(ecs, store, max_in_flight=2)
    with pytest.raises(ServerError):
        await act(run, plan(starts=range(20), stops=range(3)))
    assert sorted(ecs.stopped) == [ta(1), ta(2)]
    assert run.actions["started"] == 20
    assert ta(0) in run.live_stops(NOW), "a second StopTask is harmless; the TTL ends it"


async def test_a_task_no_longer_known_is_not_stopped(store: Store) -> None:
    ecs = FakeEcs(store)
    run = Executor(ecs, StartsInFlight(store), task_cluster=lambda arn: None)
    await act(run, plan(stops=[1]))
    assert ecs.stopped == [] and run.live_stops(NOW) == frozenset()
