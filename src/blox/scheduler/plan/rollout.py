"""The rolling update: spend the maxUnavailable / maxSurge budget on instances that run an old
task, start the missing ones, and judge the deployment (completed, or failed past its progress
deadline, with an automatic rollback when asked). Pure; modelled on Kubernetes' DaemonSet
`rollingUpdate` (pkg/controller/daemon/update.go).

Callers: `planner.plan`, after `buckets.classify`; it reads only PLACE and UPDATE slots.

Assumptions / Invariants:
- desired = eligible instances (disconnected ones included); `RolloutPolicy.budget(desired)`
  gives (max unavailable, max surge), never both 0. Unavailable = desired instances without an
  available task, counted before this plan.
- Never more than max(max unavailable, already unavailable) desired instances without an
  available task because of this plan's stops: a ready old task is stopped first (OUTDATED)
  only within `max unavailable - unavailable`; one that is not ready (not RUNNING, or not
  HEALTHY when checked) is replaced at once, as Kubernetes does, since it keeps nothing up. A
  ready old task that has not been ready for the target's minReadySeconds yet counts as
  unavailable (Kubernetes' accounting) but is still stopped only within the budget: unlike
  Kubernetes, raising minReadySeconds never stops every young old task at once.
- maxSurge > 0: on an instance with room (`TaskNeeds.fit`; unknown figures have room) that is
  not backing off, the target task starts next to the available old one (SURGE), at most
  `max surge - surges under way` at a time; the old one stops once its successor is available
  (`buckets`). An instance without room, or backing off after a failed start (ECS RESOURCE:*),
  falls back to stop-first within the unavailability budget; with maxUnavailable 0 it waits.
- Never a start on an instance that is not eligible, nor two on one instance, nor one where a
  live or in-flight task of ours is, except a SURGE next to an old task.
- A missing task is started whatever the budget (it only adds availability), unless the
  instance backs off; a pause stops the rollout only (no SURGE, no OUTDATED stop), as
  Kubernetes pauses a rollout while still placing on new nodes and cleaning up.
- A deployment completes when every desired instance runs an available task of the target and
  no task of ours that must go is left (at once with 0 desired instances); it fails when it has
  not progressed for progressDeadlineSeconds, unless paused. A rollback is wanted only when the
  policy asks, there is an earlier revision, and the failed revision is not itself a rollback
  (no rollback loops).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from blox.model.daemon import DeploymentStatus
from blox.scheduler.plan.actions import Start, StartReason, Stop, StopReason, Verdict, Wait
from blox.scheduler.plan.actions import WaitReason as Why
from blox.scheduler.plan.buckets import Bucket, Slot
from blox.scheduler.plan.snapshot import Desired

__all__ = ["Budget", "Moves", "budget", "deadline", "spend", "verdict"]


@dataclass(frozen=True, slots=True)
class Budget:
    """The rolling update's room this pass, in container instances."""

    max_unavailable: int
    max_surge: int
    unavailable: int  # desired instances without an available task, before this plan
    surging: int  # instances where a target task is on its way next to an old one

    @property
    def unavailable_left(self) -> int:
        """How many more available old tasks may be stopped first."""
        return max(0, self.max_unavailable - self.unavailable)

    @property
    def surge_left(self) -> int:
        """How many more surge starts may be issued."""
        return max(0, self.max_surge - self.surging)


@dataclass(slots=True)
class Moves:
    """What `spend` decided (built in instance ARN order)."""

    starts: list[Start] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    wake_at: datetime | None = None  # the earliest backoff that ends after now


def budget(*, desired: Desired, slots: Sequence[Slot]) -> Budget:
    """The budget of this pass.

    desired: the target revision's rollout policy.
    slots: every classified instance of the cluster.
    """
    wanted = unavailable = surging = 0
    for slot in slots:
        if slot.is_desired:
            wanted += 1
            unavailable += not slot.available
        surging += slot.bucket is Bucket.SURGING
    max_unavailable, max_surge = desired.revision.rollout.budget(wanted)
    return Budget(max_unavailable, max_surge, unavailable, surging)


def spend(*, slots: Sequence[Slot], budget: Budget, desired: Desired, now: datetime) -> Moves:
    """Starts, stops and waits for the PLACE and UPDATE slots.

    slots: every classified instance, in container instance ARN order (the budget goes to the
        first ones: deterministic).
    budget: this pass's budget (`budget`).
    desired: target revision, paused, `backoff_until` by container instance ARN.
    now: the planning time (backoffs).
    """
    moves = Moves()
    revision = desired.revision.number
    surge_left, unavailable_left = budget.surge_left, budget.unavailable_left
    for slot in slots:
        if slot.bucket is not Bucket.PLACE and slot.bucket is not Bucket.UPDATE:
            continue
        arn = slot.container_instance_arn
        until = desired.backoff_until.get(arn)
        backing_off = until is not None and until > now
        if backing_off:
            assert until is not None
            moves.wake_at = until if moves.wake_at is None else min(moves.wake_at, until)
        if slot.bucket is Bucket.PLACE:
            if backing_off:
                moves.waits.append(Wait(arn, Why.BACKING_OFF))
            else:
                moves.starts.append(Start(arn, revision, StartReason.MISSING))
            continue
        assert slot.old is not None
        if desired.paused:
            moves.waits.append(Wait(arn, Why.PAUSED))
            continue
        may_surge = budget.max_surge > 0 and slot.fits and not backing_off
        if may_surge and (not slot.old_ready or surge_left > 0):
            surge_left -= slot.old_ready
            moves.starts.append(Start(arn, revision, StartReason.SURGE))
        elif not may_surge and (not slot.old_ready or unavailable_left > 0):
            unavailable_left -= slot.old_ready
            moves.stops.append(Stop(slot.old.task_arn, StopReason.OUTDATED))
        elif may_surge:
            moves.waits.append(Wait(arn, Why.MAX_SURGE))
        else:
            moves.waits.append(Wait(arn, Why.BACKING_OFF if backing_off else Why.MAX_UNAVAILABLE))
    return moves


def deadline(*, desired: Desired) -> datetime | None:
    """When the deployment in progress fails if it makes no progress before; None: never."""
    deployment = desired.deployment
    if deployment is None or not deployment.status.in_progress:
        return None
    since = desired.last_progress_at or deployment.created_at
    if since is None:
        return None
    return since + timedelta(seconds=desired.revision.rollout.progress_deadline_s)


def verdict(*, desired: Desired, complete: bool, now: datetime) -> Verdict:
    """The next state of the deployment in progress.

    desired: the deployment, target revision and policy, paused / deleting.
    complete: every desired instance runs an available target task and nothing of ours
        must still go.
    now: the planning time (progress deadline).
    """
    deployment = desired.deployment
    if deployment is None or not deployment.status.in_progress or desired.deleting:
        return Verdict.UNCHANGED
    if deployment.revision != desired.revision.number:
        return Verdict.UNCHANGED  # a newer revision supersedes it: the shell's business
    if complete:
        return Verdict.COMPLETED
    ends = deadline(desired=desired)
    if not desired.paused and ends is not None and now > ends:
        revision = desired.revision
        may_roll_back = revision.number > 1 and revision.rolled_back_from is None
        return (
            Verdict.ROLLBACK if revision.rollout.auto_rollback and may_roll_back else Verdict.FAILED
        )
    if deployment.status is DeploymentStatus.PENDING:
        return Verdict.RUNNING
    return Verdict.UNCHANGED
