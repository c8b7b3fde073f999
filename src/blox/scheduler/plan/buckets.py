"""Put each container instance into exactly one bucket (Nomad's reconciler), with the stops it
owes whatever the rollout budget. Pure.

Callers: `planner.plan` (`classify` once per pass: one slot per instance); `rollout.spend`
then acts on the PLACE and UPDATE buckets only, and `status.count` counts the slots.

Assumptions / Invariants:
- A task of ours is *live* unless it is STOPPED, has desired status STOPPED or has a stop in
  flight (`Pending.stops`); a task that is not live is never stopped again, and while it has not
  STOPPED no other task is started on its instance (no overlap without a surge).
- Of several live tasks on one eligible instance, one of the target task definition (C) and one
  older (O) may stay, each the best of its kind (available, ready, RUNNING, oldest, then ARN);
  every other one is a DUPLICATE stop. O stays only while C is not available and O is ready
  (RUNNING, HEALTHY if checked): that is a surge under way. A ready O that has not been ready
  for minReadySeconds yet still keeps the instance up, so it is never replaced before C is
  available. These stops never lower the instance's availability.
- A start in flight (`Pending.starts`) counts as a task on its way: never a second start there.
- Nothing is started or stopped on an instance whose agent is disconnected, except that a
  deleted environment's tasks are stopped everywhere (ECS records the stop; a reconnecting agent
  then stops the task, and no start can double up).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from blox.scheduler.plan import readiness
from blox.scheduler.plan.actions import Stop, StopReason, WaitReason
from blox.scheduler.plan.eligibility import Placement, judge
from blox.scheduler.plan.snapshot import (
    RUNNING,
    STOPPED,
    Desired,
    Observed,
    ObservedInstance,
    ObservedTask,
    Owned,
    Pending,
    tasks_by_instance,
)

__all__ = ["Bucket", "Slot", "classify"]


class Bucket(enum.Enum):
    """What an instance needs, in Nomad's words (place, keep, update, stop, lost, ignore)."""

    PLACE = "place"  # eligible and empty: start the target (unless backing off)
    KEEP = "keep"  # runs an available target task
    STARTING = "starting"  # a target task is on its way (in flight, or not available yet)
    SURGING = "surging"  # a target task on its way next to an available old one
    UPDATE = "update"  # runs an old task only: the rollout budget decides
    STOPPING = "stopping"  # nothing live, a task of ours still stopping: start after it
    LOST = "lost"  # agent disconnected: nothing is done until it returns
    DRAIN = "drain"  # DRAINING: ours stops once the instance runs nothing else
    MISPLACED = "misplaced"  # should not run the daemon: ours stops
    DELETE = "delete"  # the environment is deleted: ours stops
    IGNORE = "ignore"  # nothing of ours, nothing wanted


class Slot(NamedTuple):
    """One container instance, classified (a NamedTuple: immutable, and cheap to build for
    5,000 instances a pass)."""

    container_instance_arn: str
    placement: Placement
    bucket: Bucket
    stops: tuple[Stop, ...] = ()  # owed whatever the budget
    wait: WaitReason | None = None  # why it waits, when it does
    old: ObservedTask | None = None  # UPDATE / SURGING: the old task that stays for now
    old_ready: bool = False  # the old task keeps the instance up: it goes only within budget
    live: int = 0  # live tasks of ours on it before this plan
    ready: bool = False  # a kept task is ready
    available: bool = False  # a kept task is available
    updated: bool = False  # a kept task runs the target task definition
    updated_available: bool = False  # ... and is available
    revision: int | None = None  # the revision the instance's main kept task runs
    leftovers: int = 0  # live tasks of ours that must still go before a deployment completes
    available_at: datetime | None = None  # when a kept task turns available (if later than now)
    fits: bool = True  # room for one more target task (for a surge)
    is_desired: bool = False  # the instance should run the daemon (`Placement.is_desired`)


class _Pass(NamedTuple):
    """What every classification of one pass reads, looked up once."""

    desired: Desired
    target: str  # the target task definition ARN
    number: int  # the target revision number
    has_health_check: bool
    min_ready: timedelta
    stops: frozenset[str]  # task ARNs with a stop in flight
    starts: frozenset[str]  # instance ARNs with a start in flight
    now: datetime


class _Judged(NamedTuple):
    task: ObservedTask
    revision: int
    ready: bool
    available: bool
    at: datetime | None  # when it is or turns available (`readiness.assess`)

    def rank(self) -> tuple[bool, bool, bool, bool, float, str]:
        """Best first: available, ready, RUNNING, oldest, then by ARN (deterministic)."""
        since = self.task.running_since
        return (
            not self.available,
            not self.ready,
            self.task.last_status != RUNNING,
            since is None,
            since.timestamp() if since is not None else 0.0,
            self.task.task_arn,
        )


def classify(
    *, observed: Observed, desired: Desired, pending: Pending, now: datetime
) -> list[Slot]:
    """One slot per container instance of `observed` or with a task of ours, by ARN.

    observed: the cluster's instances and tasks (others' tasks are skipped).
    desired: the target revision, its needs and policy, paused / deleting.
    pending: starts (by instance ARN) and stops (by task ARN) in flight.
    now: the planning time (task availability).
    """
    ours = tasks_by_instance(observed.tasks, desired=desired)
    instances = {i.container_instance_arn: i for i in observed.instances}
    rollout = desired.revision.rollout
    run = _Pass(
        desired=desired,
        target=desired.revision.task_definition,
        number=desired.revision.number,
        has_health_check=desired.needs.has_health_check,
        min_ready=timedelta(seconds=rollout.min_ready_s),
        stops=frozenset(pending.stops),
        starts=frozenset(pending.starts),
        now=now,
    )
    none: list[Owned] = []
    get_instance, get_tasks = instances.get, ours.get
    return [
        _classify(run, arn, get_instance(arn), get_tasks(arn, none))
        for arn in sorted(instances.keys() | ours.keys())
    ]


def _classify(run: _Pass, arn: str, instance: ObservedInstance | None, tasks: list[Owned]) -> Slot:
    """The slot of one instance: its placement first, then what its live tasks call for."""
    placement = judge(instance, revision=run.desired.revision)
    stopped = run.stops
    live = [t for t in tasks if t[0].desired_status != STOPPED and t[0].task_arn not in stopped]
    stopping = len(live) < len(tasks)
    in_flight = arn in run.starts
    if run.desired.deleting:
        return _cleared(arn, placement, live, StopReason.DELETED, stopping, in_flight)
    if placement is Placement.ELIGIBLE:
        assert instance is not None
        return _eligible(run, arn, instance, live, stopping, in_flight)
    if placement is Placement.DISCONNECTED or placement is Placement.UNREACHABLE:
        return _lost(run, arn, placement, live)
    if placement is Placement.DRAINING:
        assert instance is not None
        return _draining(run, arn, instance, live)
    return _cleared(arn, placement, live, _MISPLACED[placement], False, False)


_MISPLACED = {
    Placement.UNMATCHED: StopReason.UNMATCHED,
    Placement.NOT_ACTIVE: StopReason.NOT_ACTIVE,
    Placement.GONE: StopReason.GONE,
}


def _judged(run: _Pass, owned: Owned) -> _Judged:
    task, revision = owned
    ready, at = readiness.assess(
        task, has_health_check=run.has_health_check, min_ready=run.min_ready, now=run.now
    )
    return _Judged(task, revision, ready, at is not None and at <= run.now, at)


def _pick(run: _Pass, live: list[Owned]) -> tuple[_Judged | None, _Judged | None, list[_Judged]]:
    """(best target task, best old task, the surplus), each best by `_Judged.rank`."""
    if len(live) == 1:  # the common case, kept cheap: 5,000 instances a pass
        only = _judged(run, live[0])
        if only.task.task_definition_arn == run.target:
            return only, None, []
        return None, only, []
    new = previous = None
    surplus = []
    for judged in sorted((_judged(run, t) for t in live), key=_Judged.rank):
        if judged.task.task_definition_arn == run.target:
            if new is None:
                new = judged
                continue
        elif previous is None:
            previous = judged
            continue
        surplus.append(judged)
    return new, previous, surplus


def _stops(tasks: Iterable[_Judged | Owned], reason: StopReason) -> tuple[Stop, ...]:
    return tuple(Stop(t[0].task_arn, reason) for t in tasks)


def _cleared(
    arn: str,
    placement: Placement,
    live: list[Owned],
    reason: StopReason,
    stopping: bool,
    in_flight: bool,
) -> Slot:
    """Every live task goes; wait only while some task of ours may still be running or appear."""
    desired = placement.is_desired
    if not live:
        wait = WaitReason.STARTING if in_flight else WaitReason.STOPPING if stopping else None
        bucket = Bucket.IGNORE if wait is None else Bucket.DELETE
        return Slot(arn, placement, bucket, wait=wait, is_desired=desired)
    bucket = Bucket.DELETE if reason is StopReason.DELETED else Bucket.MISPLACED
    stops = _stops(live, reason)
    return Slot(
        arn, placement, bucket, stops=stops, live=len(live), leftovers=len(live), is_desired=desired
    )


def _lost(run: _Pass, arn: str, placement: Placement, live: list[Owned]) -> Slot:
    """A disconnected agent: count what it runs, touch nothing."""
    desired = placement.is_desired
    if not live and not desired:
        return Slot(arn, placement, Bucket.IGNORE)
    updated = any(t.task_definition_arn == run.target for t, _ in live)
    revision = run.number if updated else (live[0][1] if live else None)
    return Slot(
        arn,
        placement,
        Bucket.LOST,
        wait=WaitReason.AGENT_DISCONNECTED,
        live=len(live),
        updated=updated,
        revision=revision,
        is_desired=desired,
    )


def _draining(run: _Pass, arn: str, instance: ObservedInstance, live: list[Owned]) -> Slot:
    """DRAINING: keep one task until the instance's other tasks are gone, then stop it."""
    if not live:
        return Slot(arn, Placement.DRAINING, Bucket.IGNORE)
    if instance.other_tasks <= 0:
        stops = _stops(live, StopReason.DRAINED)
        return Slot(arn, Placement.DRAINING, Bucket.DRAIN, stops=stops, live=len(live))
    new, previous, surplus = _pick(run, live)
    kept, *others = sorted((j for j in (new, previous) if j is not None), key=_Judged.rank)
    return Slot(
        arn,
        Placement.DRAINING,
        Bucket.DRAIN,
        stops=_stops(others + surplus, StopReason.DUPLICATE),
        wait=WaitReason.DRAINING,
        live=len(live),
        revision=kept.revision,
    )


def _eligible(
    run: _Pass,
    arn: str,
    instance: ObservedInstance,
    live: list[Owned],
    stopping: bool,
    in_flight: bool,
) -> Slot:
    """An eligible instance: keep the best target task, or an old one while the target comes."""
    if not live:
        if in_flight:
            return Slot(arn, _ELIGIBLE, Bucket.STARTING, wait=WaitReason.STARTING, is_desired=True)
        if stopping:
            return Slot(arn, _ELIGIBLE, Bucket.STOPPING, wait=WaitReason.STOPPING, is_desired=True)
        return Slot(arn, _ELIGIBLE, Bucket.PLACE, is_desired=True)
    new, previous, surplus = _pick(run, live)
    if previous is None and not surplus and new is not None and new.available:
        # the steady state, kept cheap: one available target task
        return Slot(
            arn,
            _ELIGIBLE,
            Bucket.KEEP,
            live=1,
            ready=True,
            available=True,
            updated=True,
            updated_available=True,
            revision=run.number,
            is_desired=True,
        )
    stops = _stops(surplus, StopReason.DUPLICATE) if surplus else ()
    ready = (new is not None and new.ready) or (previous is not None and previous.ready)
    available_at = None
    for kept in (new, previous):
        if kept is not None and kept.at is not None and kept.at > run.now:
            available_at = kept.at if available_at is None else min(available_at, kept.at)
    if new is not None and (new.available or previous is None or not previous.ready):
        if previous is not None:  # its successor is here, or the old one keeps nothing up
            stops += _stops([previous], StopReason.REPLACED)
        return Slot(
            arn,
            _ELIGIBLE,
            Bucket.KEEP if new.available else Bucket.STARTING,
            stops=stops,
            wait=None if new.available else _not_available(new),
            live=len(live),
            ready=ready,
            available=new.available,
            updated=True,
            updated_available=new.available,
            revision=run.number,
            leftovers=len(stops),
            available_at=available_at,
            is_desired=True,
        )
    assert previous is not None
    surging = new is not None or in_flight  # the old task stays until its successor is available
    return Slot(
        arn,
        _ELIGIBLE,
        Bucket.SURGING if surging else Bucket.UPDATE,
        stops=stops,
        wait=(_not_available(new) if new is not None else WaitReason.STARTING) if surging else None,
        old=previous.task,
        old_ready=previous.ready,
        live=len(live),
        ready=ready,
        available=previous.available,
        updated=new is not None,
        revision=previous.revision,
        leftovers=len(stops) + 1,
        available_at=available_at,
        fits=surging or run.desired.needs.fit(instance),
        is_desired=True,
    )


_ELIGIBLE = Placement.ELIGIBLE


def _not_available(task: _Judged) -> WaitReason:
    """Why a target task is not available yet."""
    if task.task.last_status != RUNNING:
        return WaitReason.STARTING
    return WaitReason.MIN_READY if task.ready else WaitReason.NOT_READY
