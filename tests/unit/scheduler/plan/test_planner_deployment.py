"""The deployment's verdict (completed, failed past its progress deadline, rolled back) and the
plan's `wait_until`, one table row each."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from blox.model.daemon import Constraint, DeploymentStatus
from blox.scheduler.plan.actions import Verdict
from blox.scheduler.plan.snapshot import Desired, ObservedInstance, ObservedTask
from tests.unit.scheduler.plan.builders import (
    NOW,
    ci,
    deployment,
    desired,
    instance,
    pending,
    revision,
    run,
    task,
)

FRESH = deployment(at=NOW - timedelta(seconds=60))  # RUNNING, 60 s old, deadline 600 s
LATE = deployment(at=NOW - timedelta(seconds=601))
ON_TIME = deployment(at=NOW - timedelta(seconds=600))
ROLLBACK = revision(auto_rollback=True)
TWO = [instance("i-1"), instance("i-2")]
NEW = [task("t-1", on="i-1"), task("t-2", on="i-2")]

CASES = [
    pytest.param(desired(), TWO, NEW, Verdict.UNCHANGED, id="no deployment, no verdict"),
    pytest.param(
        desired(deployment=FRESH), TWO, NEW, Verdict.COMPLETED,
        id="completed when every eligible instance runs an available target task",
    ),
    pytest.param(
        desired(deployment=FRESH), [], [], Verdict.COMPLETED,
        id="completed at once on a cluster without eligible instances (v0.3 never completed)",
    ),
    pytest.param(
        desired(deployment=FRESH), TWO, [*NEW, task("t-3", on="i-2", rev=1)], Verdict.UNCHANGED,
        id="an old task left next to a target task holds completion up",
    ),
    pytest.param(
        desired(revision(constraints=[Constraint("gpu", "exists")]), deployment=FRESH),
        [instance("i-1", attrs={"gpu": None})], [task("t-1", on="i-1"), task("t-2", on="i-9")],
        Verdict.UNCHANGED,
        id="a misplaced task of ours holds completion up until it is stopped",
    ),
    pytest.param(
        desired(deployment=FRESH), [*TWO, instance("i-3", "DRAINING", others=4)],
        [*NEW, task("t-3", on="i-3", rev=1)], Verdict.COMPLETED,
        id="an old task on a DRAINING instance does not hold completion up",
    ),
    pytest.param(
        desired(deployment=FRESH), TWO, [NEW[0], task("t-2", on="i-2", status="PENDING")],
        Verdict.UNCHANGED,
        id="a target task not yet available holds completion up",
    ),
    pytest.param(
        desired(deployment=FRESH), [*TWO, instance("i-3", connected=False)], NEW,
        Verdict.UNCHANGED,
        id="an eligible instance with a disconnected agent holds completion up",
    ),
    pytest.param(
        desired(deployment=replace(FRESH, status=DeploymentStatus.PENDING)), TWO, NEW[:1],
        Verdict.RUNNING,
        id="a pending deployment that is not complete starts running",
    ),
    pytest.param(
        desired(deployment=LATE), TWO, NEW[:1], Verdict.FAILED,
        id="no progress for progressDeadlineSeconds fails the deployment",
    ),
    pytest.param(
        desired(deployment=ON_TIME), TWO, NEW[:1], Verdict.UNCHANGED,
        id="exactly at the deadline it has not failed yet",
    ),
    pytest.param(
        desired(deployment=LATE, last_progress_at=NOW - timedelta(seconds=5)), TWO, NEW[:1],
        Verdict.UNCHANGED,
        id="recent progress moves the deadline",
    ),
    pytest.param(
        desired(ROLLBACK, deployment=LATE), TWO, NEW[:1], Verdict.ROLLBACK,
        id="a failed deployment with auto rollback asks for a rollback",
    ),
    pytest.param(
        desired(revision(1, auto_rollback=True), deployment=replace(LATE, revision=1)), TWO, [],
        Verdict.FAILED,
        id="the first revision has nothing to roll back to",
    ),
    pytest.param(
        desired(revision(3, auto_rollback=True, rolled_back_from=2),
                deployment=replace(LATE, revision=3)), TWO, [], Verdict.FAILED,
        id="a failed rollback does not roll back again",
    ),
    pytest.param(
        desired(deployment=LATE, paused=True), TWO, NEW[:1], Verdict.UNCHANGED,
        id="a paused rollout does not fail",
    ),
    pytest.param(
        desired(deployment=LATE, paused=True), TWO, NEW, Verdict.COMPLETED,
        id="a paused rollout that is done completes",
    ),
    pytest.param(
        desired(deployment=replace(FRESH, revision=1)), TWO, NEW, Verdict.UNCHANGED,
        id="a deployment of another revision is left to the shell",
    ),
    pytest.param(
        desired(deployment=FRESH, deleting=True), [], [], Verdict.UNCHANGED,
        id="a deleted environment's deployment is left to the shell",
    ),
    pytest.param(
        desired(deployment=replace(LATE, status=DeploymentStatus.COMPLETED)), TWO, [],
        Verdict.UNCHANGED,
        id="a finished deployment stays as it is",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "instances", "tasks", "verdict"), CASES)
def test_deployment_verdict(
    want: Desired, instances: list[ObservedInstance], tasks: list[ObservedTask], verdict: Verdict
) -> None:
    assert run(want, instances, tasks).verdict is verdict


def test_a_misplaced_task_whose_stop_is_in_flight_no_longer_holds_completion_up() -> None:
    want = desired(deployment=FRESH)
    tasks = [task("t-1", on="i-1"), task("t-2", on="i-9")]
    assert run(want, [instance("i-1")], tasks).verdict is Verdict.UNCHANGED
    assert run(want, [instance("i-1")], tasks, pending(stops=["t-2"])).verdict is Verdict.COMPLETED


WAKES = [
    pytest.param(desired(), [task("t-1", on="i-1")], None, id="nothing to wait for"),
    pytest.param(
        desired(revision(min_ready_s=30)),
        [task("t-1", on="i-1", since=NOW - timedelta(seconds=10))],
        NOW + timedelta(seconds=20),
        id="a task turning available after minReadySeconds",
    ),
    pytest.param(
        desired(backoff_until={ci("i-1"): NOW + timedelta(seconds=45)}), [],
        NOW + timedelta(seconds=45),
        id="a backoff ending",
    ),
    pytest.param(
        desired(deployment=FRESH), [task("t-1", on="i-1", status="PENDING")],
        NOW + timedelta(seconds=540, microseconds=1),
        id="the progress deadline passing",
    ),
    pytest.param(
        desired(revision(min_ready_s=30), deployment=FRESH),
        [task("t-1", on="i-1", since=NOW - timedelta(seconds=25))],
        NOW + timedelta(seconds=5),
        id="the earliest of them",
    ),
    pytest.param(
        desired(deployment=FRESH, paused=True), [task("t-1", on="i-1", status="PENDING")], None,
        id="no deadline while paused",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "tasks", "wake"), WAKES)
def test_wait_until_is_the_next_moment_time_alone_changes_the_plan(
    want: Desired, tasks: list[ObservedTask], wake: datetime | None
) -> None:
    assert run(want, [instance("i-1")], tasks).wait_until == wake
