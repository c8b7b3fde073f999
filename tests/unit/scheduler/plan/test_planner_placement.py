"""Placement rules of the planner, one table row each: who gets a task, whose task stops, who
waits (eligibility, DRAINING, disconnected agents, gone instances, duplicates, in-flight
actions, backoff, ownership, deletion and pause)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blox.model.daemon import Constraint
from blox.scheduler.plan.snapshot import Desired, ObservedInstance, ObservedTask, Pending
from tests.unit.scheduler.plan.builders import (
    NOW,
    T0,
    ci,
    desired,
    instance,
    pending,
    revision,
    run,
    task,
    with_health_check,
)
from tests.unit.scheduler.plan.builders import actions as summary

PROD = Constraint("stack", "==", "prod")


def expect(
    starts: tuple[str, ...] = (), stops: tuple[str, ...] = (), waits: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    return {"starts": list(starts), "stops": list(stops), "waits": list(waits)}


CASES = [
    pytest.param(
        desired(), [instance("i-1")], [], None,
        expect(starts=("i-1 missing",)),
        id="an eligible instance without a task gets one of the target revision",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1")], None,
        expect(),
        id="an instance running an available target task is left alone",
    ),
    pytest.param(
        desired(), [instance("i-1")], [], pending({"i-1": 2}),
        expect(waits=("i-1 starting",)),
        id="a start in flight is never repeated",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", status="PENDING")], None,
        expect(waits=("i-1 starting",)),
        id="a task not yet RUNNING is waited for, not doubled",
    ),
    pytest.param(
        desired(backoff_until={ci("i-1"): NOW + timedelta(minutes=1)}), [instance("i-1")], [],
        None,
        expect(waits=("i-1 backing-off",)),
        id="an instance backing off after a failed start waits",
    ),
    pytest.param(
        desired(backoff_until={ci("i-1"): NOW - timedelta(seconds=1)}), [instance("i-1")], [],
        None,
        expect(starts=("i-1 missing",)),
        id="a backoff that has ended no longer holds",
    ),
    pytest.param(
        desired(), [instance("i-1", "DRAINING")], [], None,
        expect(),
        id="a DRAINING instance gets no new task",
    ),
    pytest.param(
        desired(), [instance("i-1", "DRAINING", others=3)], [task("t-1", on="i-1")], None,
        expect(waits=("i-1 draining",)),
        id="a DRAINING instance keeps its task while other tasks run on it",
    ),
    pytest.param(
        desired(), [instance("i-1", "DRAINING", others=0)], [task("t-1", on="i-1")], None,
        expect(stops=("t-1 instance-drained",)),
        id="a DRAINING instance's task is stopped last, once nothing else runs",
    ),
    pytest.param(
        desired(), [instance("i-1", "DRAINING", others=1)],
        [task("t-1", on="i-1"), task("t-2", on="i-1", since=T0 + timedelta(minutes=1))], None,
        expect(stops=("t-2 duplicate",), waits=("i-1 draining",)),
        id="a DRAINING instance keeps one task and stops its duplicate",
    ),
    pytest.param(
        desired(), [instance("i-1", connected=False)], [], None,
        expect(waits=("i-1 agent-disconnected",)),
        id="a disconnected agent is not started on",
    ),
    pytest.param(
        desired(), [instance("i-1", connected=False)], [task("t-1", on="i-1", rev=1)], None,
        expect(waits=("i-1 agent-disconnected",)),
        id="a disconnected agent's outdated task is not stopped",
    ),
    pytest.param(
        desired(revision(constraints=[PROD])),
        [instance("i-1", connected=False, attrs={"stack": "test"})], [task("t-1", on="i-1")],
        None,
        expect(waits=("i-1 agent-disconnected",)),
        id="a misplaced task on a disconnected agent waits for the agent",
    ),
    pytest.param(
        desired(), [instance("i-1", "INACTIVE")], [task("t-1", on="i-1")], None,
        expect(stops=("t-1 instance-not-active",)),
        id="an INACTIVE instance's task is stopped",
    ),
    pytest.param(
        desired(), [instance("i-1", "INACTIVE"), instance("i-2", "REGISTERING")], [], None,
        expect(),
        id="an INACTIVE or REGISTERING instance gets nothing",
    ),
    pytest.param(
        desired(), [], [task("t-1", on="i-9")], None,
        expect(stops=("t-1 instance-gone",)),
        id="a task on an instance the CSS no longer shows is stopped",
    ),
    pytest.param(
        desired(revision(constraints=[PROD])), [instance("i-1", attrs={"stack": "test"})],
        [task("t-1", on="i-1")], None,
        expect(stops=("t-1 constraints-unmet",)),
        id="an instance that no longer meets a constraint loses its task",
    ),
    pytest.param(
        desired(revision(constraints=[PROD])),
        [instance("i-1", attrs={"stack": "prod"}), instance("i-2")], [], None,
        expect(starts=("i-1 missing",)),
        id="only instances meeting every constraint get a task",
    ),
    pytest.param(
        desired(), [instance("i-1")],
        [task("t-2", on="i-1", since=T0 + timedelta(minutes=9)), task("t-1", on="i-1")], None,
        expect(stops=("t-2 duplicate",)),
        id="of two target tasks on one instance the older stays",
    ),
    pytest.param(
        desired(), [instance("i-1")],
        [task("t-1", on="i-1"), task("t-2", on="i-1"), task("t-3", on="i-1", status="PENDING")],
        None,
        expect(stops=("t-2 duplicate", "t-3 duplicate")),
        id="a third task goes too, and equal tasks are told apart by ARN",
    ),
    pytest.param(
        with_health_check(desired()), [instance("i-1")],
        [
            task("t-1", on="i-1", health="UNHEALTHY"),
            task("t-2", on="i-1", since=T0 + timedelta(minutes=5), health="HEALTHY"),
        ],
        None,
        expect(stops=("t-1 duplicate",)),
        id="a ready task stays over an older unhealthy one",
    ),
    pytest.param(
        desired(), [instance("i-1")],
        [task("t-1", on="i-1", rev=1, status="PENDING"), task("t-2", on="i-1")], None,
        expect(stops=("t-1 replaced",)),
        id="an old task that keeps nothing up goes once the target task is there",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", stopping=True)], None,
        expect(waits=("i-1 stopping",)),
        id="a task being stopped is not stopped again, and nothing starts until it is gone",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1")], pending(stops=["t-1"]),
        expect(waits=("i-1 stopping",)),
        id="a stop in flight is not repeated",
    ),
    pytest.param(
        desired(), [instance("i-1")],
        [task("t-1", on="i-1", stopping=True), task("t-2", on="i-1")], None,
        expect(),
        id="a stopping task next to a live one is left alone",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", env="api")], None,
        expect(starts=("i-1 missing",)),
        id="another environment's task is not ours",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", group=None, started_by="ecs-svc")],
        None,
        expect(starts=("i-1 missing",)),
        id="a task without a blox group or a known deployment id is not ours",
    ),
    pytest.param(
        desired(deployments={"dep-1": 2}), [instance("i-1")],
        [task("t-1", on="i-1", group=None, started_by="dep-1")], None,
        expect(),
        id="a v0.3 task is recognised by its deployment id",
    ),
    pytest.param(
        desired(deployments={"dep-0": 1}), [instance("i-1")],
        [task("t-1", on="i-1", rev=1, group=None, started_by="dep-0")], None,
        expect(stops=("t-1 outdated",)),
        id="a v0.3 task of an older deployment is rolled like any old task",
    ),
    pytest.param(
        desired(), [instance("i-1")], [task("t-1", on="i-1", status="STOPPED")], None,
        expect(starts=("i-1 missing",)),
        id="a STOPPED task is history: the instance gets a new one",
    ),
    pytest.param(
        desired(deleting=True),
        [instance("i-1"), instance("i-2", connected=False), instance("i-3", "DRAINING", others=2)],
        [task("t-1", on="i-1"), task("t-2", on="i-2"), task("t-3", on="i-3")], None,
        expect(stops=("t-1 environment-deleted", "t-2 environment-deleted",
                      "t-3 environment-deleted")),
        id="a deleted environment stops every task of it, disconnected and DRAINING too",
    ),
    pytest.param(
        desired(deleting=True), [instance("i-1"), instance("i-2"), instance("i-3")],
        [task("t-1", on="i-1", stopping=True)], pending({"i-2": 2}),
        expect(waits=("i-1 stopping", "i-2 starting")),
        id="a deleted environment starts nothing and waits for stopping and in-flight tasks",
    ),
    pytest.param(
        desired(paused=True), [instance("i-1"), instance("i-2")], [task("t-2", on="i-2", rev=1)],
        None,
        expect(starts=("i-1 missing",), waits=("i-2 paused",)),
        id="a paused rollout still places the target on a new instance, but replaces nothing",
    ),
    pytest.param(
        desired(paused=True), [instance("i-1", "INACTIVE"), instance("i-2")],
        [task("t-1", on="i-1"), task("t-2", on="i-2"), task("t-3", on="i-2")], None,
        expect(stops=("t-1 instance-not-active", "t-3 duplicate")),
        id="a paused rollout still stops misplaced and duplicate tasks",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "instances", "tasks", "in_flight", "expected"), CASES)
def test_placement_rule(
    want: Desired,
    instances: list[ObservedInstance],
    tasks: list[ObservedTask],
    in_flight: Pending | None,
    expected: dict[str, list[str]],
) -> None:
    assert summary(run(want, instances, tasks, in_flight)) == expected


def test_a_deleted_environment_with_nothing_left_is_idle() -> None:
    plan = run(desired(deleting=True), [instance("i-1")], [task("t-1", on="i-1", env="api")])
    assert plan.is_idle
    assert not run(desired(deleting=True), [instance("i-1")], [task("t-1", on="i-1")]).is_idle


def test_starts_carry_the_target_revision_number() -> None:
    plan = run(desired(revision(7)), [instance("i-2"), instance("i-1")])
    assert [(s.container_instance_arn, s.revision) for s in plan.starts] == [
        (ci("i-1"), 7),
        (ci("i-2"), 7),
    ]
