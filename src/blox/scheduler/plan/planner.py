"""plan(desired, observed, pending, now) → Plan: what to start, stop and wait for so that every
eligible container instance runs one available task of the target revision. Pure.

Reads like a table of contents: classify each instance into a bucket (`buckets`, after
`snapshot.tasks_by_instance` has found the environment's tasks), spend the rollout budget
(`rollout`), count (`status`), judge the deployment (`rollout.verdict`). The bucket
vocabulary is in README.md.

Callers: the control loop (`blox.scheduler.control`), once per reconcile of an environment;
it records the starts and stops as expectations before the executor performs them.

Assumptions / Invariants:
- Same inputs, same Plan: instances are visited in ARN order, stops sorted by task ARN.
- O(instances + tasks) per pass (one dict of the environment's tasks, one visit per instance;
  only the tasks of an instance with several are sorted).
- The Invariants of `buckets` and `rollout` hold for the whole Plan: never a start on an
  instance that is not eligible, never two starts on one instance, never a start where a live
  or in-flight task of ours is except a SURGE, every stop is a live task of ours, and this
  plan's stops leave at most max(maxUnavailable, already unavailable) desired instances
  without an available task (a deleted environment excepted: everything stops).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from blox.scheduler.plan import buckets, rollout, status
from blox.scheduler.plan.actions import Plan, Wait, WaitReason
from blox.scheduler.plan.snapshot import Desired, Observed, Pending

__all__ = ["plan"]

_ORDER = {reason: rank for rank, reason in enumerate(WaitReason)}
_TICK = timedelta(microseconds=1)  # a deadline passes strictly after its moment


def plan(*, desired: Desired, observed: Observed, pending: Pending, now: datetime) -> Plan:
    """Decide what to start and stop so that each eligible instance runs one current task.

    desired: the environment, its target revision (task definition, constraints, rollout
        policy), task needs, paused / deleting, the deployment in progress and its last
        progress, and start backoffs by container instance ARN.
    observed: the container instances of the environment's cluster, and its tasks (others'
        tasks are skipped).
    pending: starts in flight by container instance ARN, stops in flight by task ARN.
    now: the only notion of time the planner has.
    """
    slots = buckets.classify(observed=observed, desired=desired, pending=pending, now=now)
    moves = rollout.spend(
        slots=slots, budget=rollout.budget(desired=desired, slots=slots), desired=desired, now=now
    )
    waits = [Wait(s.container_instance_arn, s.wait) for s in slots if s.wait is not None]
    waits += moves.waits
    waits.sort(key=lambda w: w.container_instance_arn or "")
    stops = [stop for slot in slots for stop in slot.stops] + moves.stops
    stops.sort(key=lambda s: s.task_arn)
    complete = all(s.updated_available for s in slots if s.is_desired) and not any(
        s.leftovers for s in slots
    )
    reason = _first_reason(w.reason for w in waits)
    verdict = rollout.verdict(desired=desired, complete=complete, now=now)
    return Plan(
        starts=tuple(moves.starts),
        stops=tuple(stops),
        waits=tuple(waits),
        status=status.count(slots=slots, target_revision=desired.revision.number, reason=reason),
        verdict=verdict,
        wait_until=_wake_at(slots, moves, desired, complete, now),
    )


def _first_reason(reasons: Iterable[WaitReason]) -> WaitReason | None:
    """The wait reason the status shows: the first in `WaitReason`'s order that any wait has."""
    return min(reasons, key=_ORDER.__getitem__, default=None)


def _wake_at(
    slots: list[buckets.Slot],
    moves: rollout.Moves,
    desired: Desired,
    complete: bool,
    now: datetime,
) -> datetime | None:
    """The earliest moment after `now` when time alone changes the plan: a task turning
    available, a backoff ending, the progress deadline passing."""
    moments = [s.available_at for s in slots if s.available_at is not None]
    if moves.wake_at is not None:
        moments.append(moves.wake_at)
    ends = rollout.deadline(desired=desired)
    if ends is not None and not complete and not desired.paused and ends >= now:
        moments.append(ends + _TICK)
    return min((m for m in moments if m > now), default=None)
