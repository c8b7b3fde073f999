"""Rolling update rules of the planner: maxUnavailable (stop first), maxSurge (start first, when
the instance has room), min-ready, health, backoff and pause; then whole rollouts walked pass
by pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from blox.model.daemon import Share
from blox.scheduler.plan.actions import Plan, StopReason, Verdict
from blox.scheduler.plan.snapshot import Desired, ObservedInstance, ObservedTask, Pending
from tests.unit.scheduler.plan.builders import (
    NEEDS,
    NOW,
    ci,
    deployment,
    desired,
    instance,
    pending,
    revision,
    run,
    task,
    with_health_check,
)
from tests.unit.scheduler.plan.builders import actions as summary


def expect(
    starts: tuple[str, ...] = (), stops: tuple[str, ...] = (), waits: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    return {"starts": list(starts), "stops": list(stops), "waits": list(waits)}


def fleet(n: int, **kw: object) -> list[ObservedInstance]:
    return [instance(f"i-{k}", **kw) for k in range(1, n + 1)]  # type: ignore[arg-type]


def old(n: int, **kw: object) -> list[ObservedTask]:
    """Tasks t-k of revision 1 on instances i-k, available since T0."""
    return [task(f"t-{k}", on=f"i-{k}", rev=1, **kw) for k in range(1, n + 1)]  # type: ignore[arg-type]


SURGE = desired(revision(max_surge=Share(1)))
SURGE_NEEDS = replace(SURGE, needs=NEEDS)
PCT = Share(50, percent=True)

CASES = [
    pytest.param(
        desired(), fleet(3), old(3), None,
        expect(stops=("t-1 outdated",), waits=("i-2 max-unavailable", "i-3 max-unavailable")),
        id="without surge one available old task is stopped first (maxUnavailable 1)",
    ),
    pytest.param(
        desired(revision(max_unavailable=Share(2))), fleet(3), old(3), None,
        expect(stops=("t-1 outdated", "t-2 outdated"), waits=("i-3 max-unavailable",)),
        id="maxUnavailable 2 stops two at a time, in instance ARN order",
    ),
    pytest.param(
        desired(revision(max_unavailable=PCT)), fleet(5), old(5), None,
        expect(stops=("t-1 outdated", "t-2 outdated"),
               waits=("i-3 max-unavailable", "i-4 max-unavailable", "i-5 max-unavailable")),
        id="a percentage of maxUnavailable rounds down: 50% of 5 is 2",
    ),
    pytest.param(
        desired(), fleet(3), old(3)[1:], None,
        expect(starts=("i-1 missing",), waits=("i-2 max-unavailable", "i-3 max-unavailable")),
        id="an empty instance uses up the budget, and gets its target task whatever the budget",
    ),
    pytest.param(
        desired(), fleet(2), [task("t-1", on="i-1", status="PENDING"), *old(2)[1:]], None,
        expect(waits=("i-1 starting", "i-2 max-unavailable")),
        id="a target task still starting counts as unavailable",
    ),
    pytest.param(
        desired(), fleet(3),
        [*old(2, status="PENDING"), task("t-3", on="i-3", rev=1)], None,
        expect(stops=("t-1 outdated", "t-2 outdated"), waits=("i-3 max-unavailable",)),
        id="an old task that is not available is replaced at once, over the budget",
    ),
    pytest.param(
        desired(revision(min_ready_s=30)), fleet(2), old(2, since=NOW - timedelta(seconds=10)),
        None,
        expect(waits=("i-1 max-unavailable", "i-2 max-unavailable")),
        id="an old task RUNNING for less than minReadySeconds is unavailable but kept in budget",
    ),
    pytest.param(
        desired(), [instance("i-1", connected=False), instance("i-2")], old(2), None,
        expect(waits=("i-1 agent-disconnected", "i-2 max-unavailable")),
        id="a disconnected instance counts as unavailable",
    ),
    pytest.param(
        SURGE, fleet(2), old(2), None,
        expect(starts=("i-1 surge",), waits=("i-2 max-surge",)),
        id="with maxSurge 1 the target starts next to one old task",
    ),
    pytest.param(
        SURGE, fleet(2), [*old(2), task("t-9", on="i-1", status="PENDING")], None,
        expect(waits=("i-1 starting", "i-2 max-surge")),
        id="a surge under way uses the surge budget and keeps the old task",
    ),
    pytest.param(
        SURGE, fleet(2), old(2), pending({"i-1": 2}),
        expect(waits=("i-1 starting", "i-2 max-surge")),
        id="a surge start in flight counts as a surge under way",
    ),
    pytest.param(
        SURGE, fleet(1), [*old(1), task("t-9", on="i-1", since=NOW)], None,
        expect(stops=("t-1 replaced",)),
        id="the old task stops once its successor is available",
    ),
    pytest.param(
        desired(revision(max_surge=Share(1), min_ready_s=60)), fleet(1),
        [*old(1), task("t-9", on="i-1", since=NOW - timedelta(seconds=10))], None,
        expect(waits=("i-1 min-ready",)),
        id="a successor not ready for minReadySeconds keeps the old task",
    ),
    pytest.param(
        SURGE_NEEDS, [instance("i-1", cpu=100, memory=4096)], old(1), None,
        expect(stops=("t-1 outdated",)),
        id="an instance without room for a surge falls back to stop-first",
    ),
    pytest.param(
        SURGE_NEEDS, [instance("i-1", cpu=256, memory=512)], old(1), None,
        expect(starts=("i-1 surge",)),
        id="an instance with exactly the room needed surges",
    ),
    pytest.param(
        SURGE_NEEDS, [instance("i-1")], old(1), None,
        expect(starts=("i-1 surge",)),
        id="unknown remaining resources count as room (ECS has the last word)",
    ),
    pytest.param(
        replace(SURGE_NEEDS, revision=revision(max_surge=Share(1), max_unavailable=Share(0))),
        [instance("i-1", memory=100)], old(1), None,
        expect(waits=("i-1 max-unavailable",)),
        id="with maxUnavailable 0 an instance without room waits",
    ),
    pytest.param(
        replace(SURGE, backoff_until={ci("i-1"): NOW + timedelta(seconds=30)}), fleet(1), old(1),
        None,
        expect(stops=("t-1 outdated",)),
        id="an instance backing off after a failed surge falls back to stop-first",
    ),
    pytest.param(
        desired(revision(max_surge=Share(1), max_unavailable=Share(0)),
                backoff_until={ci("i-1"): NOW + timedelta(seconds=30)}),
        fleet(1), old(1), None,
        expect(waits=("i-1 backing-off",)),
        id="backing off with maxUnavailable 0 waits for the backoff",
    ),
    pytest.param(
        SURGE, fleet(3), [task("t-1", on="i-1", rev=1, status="PENDING"), *old(3)[1:]], None,
        expect(starts=("i-1 surge", "i-2 surge"), waits=("i-3 max-surge",)),
        id="in surge mode an old task that is not available gets its successor at once",
    ),
    pytest.param(
        desired(revision(max_surge=Share(1), min_ready_s=30)), fleet(1),
        [*old(1, since=NOW - timedelta(seconds=10)), task("t-9", on="i-1", status="PENDING")],
        None,
        expect(waits=("i-1 starting",)),
        id="a ready old task not yet minReadySeconds old stays until its successor is available",
    ),
    pytest.param(
        desired(revision(max_surge=Share(10, percent=True))), fleet(3), old(3), None,
        expect(starts=("i-1 surge",), waits=("i-2 max-surge", "i-3 max-surge")),
        id="a percentage of maxSurge rounds up: 10% of 3 is 1",
    ),
    pytest.param(
        with_health_check(desired()), fleet(3),
        [task("t-1", on="i-1", rev=1, health="UNHEALTHY"),
         task("t-2", on="i-2", rev=1, health="HEALTHY"),
         task("t-3", on="i-3", rev=1, health="UNKNOWN")], None,
        expect(stops=("t-1 outdated", "t-3 outdated"), waits=("i-2 max-unavailable",)),
        id="with a health check an old task that is not HEALTHY is not available",
    ),
    pytest.param(
        desired(revision(min_ready_s=30)), fleet(2),
        [task("t-1", on="i-1", since=NOW - timedelta(seconds=10)), *old(2)[1:]], None,
        expect(waits=("i-1 min-ready", "i-2 max-unavailable")),
        id="a target task RUNNING for less than minReadySeconds is not available yet",
    ),
    pytest.param(
        desired(revision(min_ready_s=30)), fleet(2),
        [task("t-1", on="i-1", since=NOW - timedelta(seconds=30)), *old(2)[1:]], None,
        expect(stops=("t-2 outdated",)),
        id="after minReadySeconds it is, and the budget moves on",
    ),
    pytest.param(
        replace(SURGE, paused=True), fleet(2), old(2), None,
        expect(waits=("i-1 paused", "i-2 paused")),
        id="a paused rollout neither surges nor stops old tasks",
    ),
    pytest.param(
        desired(replace(revision(3), task_definition=revision(2).task_definition)), fleet(2),
        [task("t-1", on="i-1"), task("t-2", on="i-2")], None,
        expect(),
        id="a revision that keeps the task definition restarts nothing",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("want", "instances", "tasks", "in_flight", "expected"), CASES)
def test_rollout_rule(
    want: Desired,
    instances: list[ObservedInstance],
    tasks: list[ObservedTask],
    in_flight: Pending | None,
    expected: dict[str, list[str]],
) -> None:
    assert summary(run(want, instances, tasks, in_flight)) == expected


def step(plan: Plan, tasks: dict[str, ObservedTask], now: datetime, serial: list[int]) -> None:
    """Apply a plan as a well-behaved ECS would: stops end the task, starts run at once."""
    for stop in plan.stops:
        tasks.pop(stop.task_arn.rsplit("/", 1)[-1])
    for start in plan.starts:
        serial[0] += 1
        name = f"n-{serial[0]}"
        on = start.container_instance_arn.rsplit("/", 1)[-1]
        tasks[name] = task(name, on=on, rev=start.revision, since=now)


@pytest.mark.parametrize(
    ("max_unavailable", "max_surge", "passes"),
    [
        # 4 waves of stop, start, min-ready wait; then the pass that sees it complete.
        pytest.param(Share(3), Share(0), 13, id="10 instances, 3 at a time stop-first"),
        # surge 5, wait min-ready, stop those 5 old and surge 5 more in one pass, wait, stop the
        # last old ones; then the completing pass.
        pytest.param(Share(1), Share(5), 6, id="10 instances, 5 at a time start-first"),
    ],
)
def test_a_rollout_walks_to_completion_within_its_budget(
    max_unavailable: Share, max_surge: Share, passes: int
) -> None:
    want = desired(
        revision(max_unavailable=max_unavailable, max_surge=max_surge, min_ready_s=10),
        deployment=deployment(at=NOW),
    )
    instances = fleet(10)
    tasks = {t.task_arn.rsplit("/", 1)[-1]: t for t in old(10)}
    now, serial = NOW, [0]
    verdicts: list[Verdict] = []
    while len(verdicts) < 50:
        plan = run(want, instances, tasks.values(), now=now)
        verdicts.append(plan.verdict)
        assert plan.status.unavailable <= max_unavailable.value
        assert len(tasks) <= 10 + max_surge.value
        assert all(s.reason is not StopReason.DUPLICATE for s in plan.stops)
        if plan.verdict is not Verdict.UNCHANGED:
            break
        step(plan, tasks, now, serial)
        acted = plan.starts or plan.stops
        now = now + timedelta(seconds=1) if acted else plan.wait_until or now
    assert verdicts[-1] is Verdict.COMPLETED
    assert len(verdicts) == passes
    assert {t.task_definition_arn for t in tasks.values()} == {revision(2).task_definition}
    assert sorted(t.container_instance_arn or "" for t in tasks.values()) == sorted(
        i.container_instance_arn for i in instances
    )
