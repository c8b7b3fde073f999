"""Properties of `plan` over random snapshots (one pass) and random fleets walked to completion
(plan → a well-behaved ECS applies it → plan …), checked against definitions written here
independently of the planner's own."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blox.model.daemon import Constraint, Share
from blox.scheduler.plan.actions import Plan, StartReason, Verdict
from blox.scheduler.plan.snapshot import (
    Desired,
    ObservedInstance,
    ObservedTask,
    Pending,
    PendingStart,
    TaskNeeds,
)
from tests.unit.scheduler.plan.builders import (
    ENV,
    NOW,
    ci,
    deployment,
    desired,
    instance,
    revision,
    run,
    ta,
    task,
)

PROD = Constraint("stack", "==", "prod")
SINCE = [NOW - timedelta(seconds=s) for s in (0, 10, 45, 3600)]


@dataclass(frozen=True)
class Case:
    want: Desired
    instances: list[ObservedInstance]
    tasks: list[ObservedTask]
    pending: Pending


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random cluster: instances of every kind, tasks of ours and others', in-flight actions."""
    n = draw(st.integers(0, 8))
    instances = [
        instance(
            f"i-{k}",
            draw(st.sampled_from(["ACTIVE"] * 4 + ["DRAINING", "INACTIVE", "DEREGISTERING"])),
            connected=draw(st.sampled_from([True, True, True, False])),
            attrs=draw(st.sampled_from([{"stack": "prod"}, {"stack": "test"}, {}])),
            cpu=draw(st.sampled_from([None, 0, 4096])),
            others=draw(st.integers(0, 2)),
        )
        for k in range(n)
    ]
    tasks = []
    for k in range(draw(st.integers(0, 14))):
        status = draw(st.sampled_from(["PENDING", "RUNNING", "RUNNING", "DEACTIVATING", "STOPPED"]))
        tasks.append(
            task(
                f"t-{k}",
                on=f"i-{draw(st.integers(0, n + 1))}",  # i-n and i-(n+1): gone instances
                rev=draw(st.sampled_from([1, 2])),
                status=status,
                since=draw(st.sampled_from(SINCE)),
                health=draw(st.sampled_from([None, "HEALTHY", "UNHEALTHY"])),
                stopping=draw(st.sampled_from([False] * 5 + [True])),
                env=draw(st.sampled_from([ENV, ENV, ENV, "api"])),
            )
        )
    policy = revision(
        constraints=draw(st.sampled_from([(), (PROD,)])),
        max_unavailable=draw(st.sampled_from([Share(0), Share(1), Share(2), Share(50, True)])),
        max_surge=draw(st.sampled_from([Share(0), Share(0), Share(1), Share(34, True)])),
        min_ready_s=draw(st.sampled_from([0.0, 30.0])),
    )
    arns = [i.container_instance_arn for i in instances]
    want = desired(
        policy,
        needs=TaskNeeds(cpu=draw(st.sampled_from([None, 256])),
                        has_health_check=draw(st.booleans())),
        paused=draw(st.booleans()),
        deleting=draw(st.sampled_from([False] * 4 + [True])),
        backoff_until={a: NOW + timedelta(seconds=30) for a in draw(st.sets(st.sampled_from(arns)))}
        if arns else {},
    )  # fmt: skip
    starts = draw(st.sets(st.sampled_from(arns))) if arns else set()
    stops = draw(st.sets(st.sampled_from([t.task_arn for t in tasks]))) if tasks else set()
    in_flight = Pending({a: PendingStart(2, NOW) for a in starts}, frozenset(stops))
    return Case(want, instances, tasks, in_flight)


def ours_live(case: Case) -> dict[str, list[ObservedTask]]:
    """Our live tasks by instance ARN: ours, not STOPPED, not asked to stop, no stop in flight."""
    live: dict[str, list[ObservedTask]] = {}
    for t in case.tasks:
        mine = t.group is not None and t.group.startswith(f"blox:{ENV}:")
        gone = t.last_status == "STOPPED" or t.desired_status == "STOPPED"
        if mine and not gone and t.task_arn not in case.pending.stops:
            live.setdefault(t.container_instance_arn or "", []).append(t)
    return live


def available(t: ObservedTask, want: Desired) -> bool:
    healthy = not want.needs.has_health_check or t.health_status == "HEALTHY"
    since = t.running_since
    ready_s = want.revision.rollout.min_ready_s
    return t.last_status == "RUNNING" and healthy and since is not None and (
        since + timedelta(seconds=ready_s) <= NOW
    )  # fmt: skip


def eligible(i: ObservedInstance, want: Desired) -> bool:
    return i.status == "ACTIVE" and i.agent_connected and want.revision.selects(i.attributes)


def unavailable(case: Case, live: dict[str, list[ObservedTask]]) -> int:
    """Desired instances (ACTIVE, matching; connected or not) without an available task."""
    count = 0
    for i in case.instances:
        if i.status == "ACTIVE" and case.want.revision.selects(i.attributes):
            up = i.agent_connected and any(
                available(t, case.want) for t in live.get(i.container_instance_arn, [])
            )
            count += not up
    return count


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_one_pass_keeps_every_invariant(case: Case) -> None:
    plan = run(case.want, case.instances, case.tasks, case.pending)
    live = ours_live(case)
    by_arn = {i.container_instance_arn: i for i in case.instances}
    target = case.want.revision.task_definition
    started = [s.container_instance_arn for s in plan.starts]
    assert len(started) == len(set(started)), "two starts on one instance"
    for start in plan.starts:
        arn = start.container_instance_arn
        assert not case.want.deleting
        assert eligible(by_arn[arn], case.want), "a start on an instance that is not eligible"
        assert arn not in case.pending.starts, "a start where one is in flight"
        assert not (case.want.backoff_until.get(arn, NOW) > NOW), "a start while backing off"
        here = live.get(arn, [])
        if start.reason is StartReason.SURGE:
            assert here and all(t.task_definition_arn != target for t in here), "bad surge"
            assert not case.want.paused
        else:
            mine = [
                t
                for t in case.tasks
                if t.container_instance_arn == arn
                and (t.group or "").startswith(f"blox:{ENV}:")
                and t.last_status != "STOPPED"
            ]
            assert not mine, "a start where a live or stopping task of ours is"
    stopped = [s.task_arn for s in plan.stops]
    assert len(stopped) == len(set(stopped)), "a task stopped twice"
    live_arns = {t.task_arn: t for ts in live.values() for t in ts}
    assert set(stopped) <= set(live_arns), "a stop of a task that is not ours and live"
    for arn in stopped:
        on = by_arn.get(live_arns[arn].container_instance_arn or "")
        if on is not None and on.status in ("ACTIVE", "DRAINING") and not case.want.deleting:
            assert on.agent_connected, "a stop on a disconnected agent"
    if not case.want.deleting:
        before = unavailable(case, live)
        after_live = {k: [t for t in v if t.task_arn not in stopped] for k, v in live.items()}
        wanted = sum(
            i.status == "ACTIVE" and case.want.revision.selects(i.attributes)
            for i in case.instances
        )
        budget, _ = case.want.revision.rollout.budget(wanted)
        assert unavailable(case, after_live) <= max(budget, before)
        assert plan.status.desired == wanted
        assert plan.status.unavailable == before


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order(case: Case, rng: random.Random) -> None:
    instances, tasks = list(case.instances), list(case.tasks)
    rng.shuffle(instances)
    rng.shuffle(tasks)
    assert run(case.want, instances, tasks, case.pending) == run(
        case.want, case.instances, case.tasks, case.pending
    )


def advance(plan: Plan, tasks: dict[str, ObservedTask], now: datetime, serial: list[int]) -> None:
    """ECS applies the plan: stops end tasks; new tasks are PENDING, then RUNNING a pass later."""
    for name, t in list(tasks.items()):
        if t.last_status == "PENDING":
            tasks[name] = replace(t, last_status="RUNNING", running_since=now)
    for stop in plan.stops:
        del tasks[stop.task_arn.removeprefix(ta(""))]
    for start in plan.starts:
        serial[0] += 1
        on = start.container_instance_arn.removeprefix(ci(""))
        name = f"n-{serial[0]}"
        tasks[name] = task(name, on=on, rev=start.revision, status="PENDING")


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 12),
    unmatched=st.integers(0, 3),
    max_unavailable=st.sampled_from([Share(0), Share(1), Share(3), Share(25, True)]),
    max_surge=st.sampled_from([Share(0), Share(1), Share(2), Share(50, True)]),
    min_ready_s=st.sampled_from([0.0, 10.0]),
)
def test_a_random_rollout_converges_within_its_budget(
    size: int, unmatched: int, max_unavailable: Share, max_surge: Share, min_ready_s: float
) -> None:
    rev = revision(
        constraints=(PROD,),
        max_unavailable=max_unavailable,
        max_surge=max_surge,
        min_ready_s=min_ready_s,
    )
    want = desired(rev, deployment=deployment(at=NOW))
    instances = [instance(f"i-{k}", attrs={"stack": "prod"}) for k in range(size)]
    instances += [instance(f"u-{k}", attrs={"stack": "test"}) for k in range(unmatched)]
    tasks = {f"t-{k}": task(f"t-{k}", on=f"i-{k}", rev=1) for k in range(size)}
    tasks |= {f"v-{k}": task(f"v-{k}", on=f"u-{k}", rev=1) for k in range(unmatched)}
    max_down, max_up = rev.rollout.budget(size)
    now, serial = NOW, [0]
    for _ in range(4 * size + 6):
        plan = run(want, instances, tasks.values(), now=now)
        per_instance: dict[str, int] = {}
        for t in tasks.values():
            key = t.container_instance_arn or ""
            per_instance[key] = per_instance.get(key, 0) + 1
        assert plan.status.unavailable <= max_down
        assert sum(n > 1 for n in per_instance.values()) <= max_up, "surged past maxSurge"
        assert max(per_instance.values(), default=0) <= 2, "three tasks on one instance"
        if max_up == 0:
            assert all(n == 1 for n in per_instance.values()), "two tasks without a surge"
        if plan.verdict is Verdict.COMPLETED:
            break
        assert plan.verdict is Verdict.UNCHANGED
        advance(plan, tasks, now, serial)
        now += timedelta(seconds=10)
    assert plan.verdict is Verdict.COMPLETED
    assert sorted(t.container_instance_arn or "" for t in tasks.values()) == [
        ci(f"i-{k}") for k in sorted(range(size), key=str)
    ]
    assert {t.task_definition_arn for t in tasks.values()} == {rev.task_definition}
