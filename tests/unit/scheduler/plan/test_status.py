"""The DaemonStatus counters of a plan (Kubernetes' DaemonSet status) and the reason it waits."""

from __future__ import annotations

from dataclasses import astuple
from datetime import timedelta

import pytest

from blox.model.daemon import Share
from blox.scheduler.plan.actions import WaitReason
from blox.scheduler.plan.snapshot import Desired, ObservedInstance, ObservedTask
from tests.unit.scheduler.plan.builders import (
    NOW,
    ci,
    desired,
    instance,
    revision,
    run,
    task,
    with_health_check,
)

# desired, current, ready, updated, available, unavailable, misscheduled, updated_available,
# current_revision, target_revision
CASES = [
    pytest.param(desired(), [], [], (0, 0, 0, 0, 0, 0, 0, 0, None, 2), id="an empty cluster"),
    pytest.param(
        desired(), [instance("i-1"), instance("i-2")], [task("t-1", on="i-1")],
        (2, 1, 1, 1, 1, 1, 0, 1, 2, 2),
        id="one of two instances runs an available target task",
    ),
    pytest.param(
        desired(), [instance("i-1"), instance("i-2"), instance("i-3")],
        [task("t-1", on="i-1", rev=1), task("t-2", on="i-2", rev=1), task("t-3", on="i-3")],
        (3, 3, 3, 1, 3, 0, 0, 1, 1, 2),
        id="mid-rollout the current revision is what most instances run",
    ),
    pytest.param(
        with_health_check(desired(revision(min_ready_s=60))),
        [instance("i-1"), instance("i-2"), instance("i-3")],
        [
            task("t-1", on="i-1", health="HEALTHY", since=NOW - timedelta(seconds=5)),
            task("t-2", on="i-2", health="UNHEALTHY"),
            task("t-3", on="i-3", health="HEALTHY"),
        ],
        (3, 3, 2, 3, 1, 2, 0, 1, 2, 2),
        id="ready needs HEALTHY, available needs minReadySeconds more",
    ),
    pytest.param(
        desired(),
        [instance("i-1", connected=False), instance("i-2", "DRAINING", others=1),
         instance("i-3", "INACTIVE")],
        [task("t-1", on="i-1"), task("t-2", on="i-2"), task("t-3", on="i-3"),
         task("t-4", on="i-4")],
        (1, 1, 0, 1, 0, 1, 3, 0, 2, 2),
        id="a disconnected agent's task is unavailable; DRAINING, INACTIVE and gone misscheduled",
    ),
    pytest.param(
        desired(revision(max_surge=Share(1))), [instance("i-1")],
        [task("t-1", on="i-1", rev=1), task("t-2", on="i-1", status="PENDING")],
        (1, 1, 1, 1, 1, 0, 0, 0, 1, 2),
        id="during a surge the old task keeps the instance available",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", stopping=True)],
        (1, 0, 0, 0, 0, 1, 0, 0, None, 2),
        id="a task being stopped no longer counts",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "instances", "tasks", "counts"), CASES)
def test_status_counts(
    want: Desired,
    instances: list[ObservedInstance],
    tasks: list[ObservedTask],
    counts: tuple[object, ...],
) -> None:
    assert astuple(run(want, instances, tasks).status)[:-1] == counts


REASONS = [
    pytest.param(desired(), [instance("i-1")], [task("t-1", on="i-1")], None, id="none: done"),
    pytest.param(
        desired(paused=True),
        [instance("i-1"), instance("i-2", connected=False)],
        [task("t-1", on="i-1", rev=1)],
        WaitReason.PAUSED,
        id="paused comes first",
    ),
    pytest.param(
        desired(backoff_until={ci("i-2"): NOW + timedelta(seconds=9)}),
        [instance("i-1"), instance("i-2"), instance("i-3")],
        [task("t-1", on="i-1", rev=1), task("t-3", on="i-3", status="PENDING")],
        WaitReason.BACKING_OFF,
        id="a backoff explains more than the budget or a start",
    ),
    pytest.param(
        desired(),
        [instance("i-1"), instance("i-2")],
        [task("t-1", on="i-1", rev=1), task("t-2", on="i-2", status="PENDING")],
        WaitReason.STARTING,
        id="a starting task explains why the budget is used up",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "instances", "tasks", "reason"), REASONS)
def test_status_reason_is_the_first_wait_reason_in_order(
    want: Desired,
    instances: list[ObservedInstance],
    tasks: list[ObservedTask],
    reason: WaitReason | None,
) -> None:
    plan = run(want, instances, tasks)
    assert plan.status.reason == reason
    assert reason is None or reason in {w.reason for w in plan.waits}


def test_status_target_revision_follows_the_desired_revision() -> None:
    assert run(desired(revision(5)), [instance("i-1")], []).status.target_revision == 5
