"""State-level faults in fake time: the random killer, and counters that say what was done."""

from __future__ import annotations

import asyncio
import random

from blox.clock import ManualClock
from blox.sim.chaos import Chaos
from blox.sim.state import EcsState
from blox.sim.throttle import Throttle
from tests.unit.sim.conftest import register


def chaos_for(state: EcsState, clock: ManualClock, *, kill_rate_per_s: float = 0.0) -> Chaos:
    throttle = Throttle(clock=clock)
    return Chaos(
        state, throttle=throttle, clock=clock, rng=random.Random(3), kill_rate_per_s=kill_rate_per_s
    )


def start_on_each(state: EcsState, count: int) -> list[str]:
    instances = [register(state) for _ in range(count)]
    placed, _ = state.start_task(cluster="c1", task_definition="web", instances=instances)
    return [t["taskArn"] for t in placed]


async def test_the_random_killer_stops_every_task_in_fake_time_and_counts_each_kill(
    state: EcsState, clock: ManualClock
) -> None:
    arns = start_on_each(state, 5)
    chaos = chaos_for(state, clock, kill_rate_per_s=20.0)
    killer = asyncio.create_task(chaos.run_killer())

    await clock.advance(0.5)
    for _ in range(10):
        await clock.advance(0.1)
    killer.cancel()

    described, _ = state.describe_tasks(cluster="c1", refs=arns)
    assert all(t["lastStatus"] == "STOPPED" for t in described)
    assert {t["stopCode"] for t in described} == {"TaskFailedToStart"}  # all were PENDING
    assert chaos.counters.killed == 5


async def test_a_running_task_killed_exits_137_and_a_second_kill_counts_nothing(
    state: EcsState, clock: ManualClock
) -> None:
    [arn] = start_on_each(state, 1)
    chaos = chaos_for(state, clock)
    await clock.advance(5.0)
    state.tick()

    first = chaos.kill(cluster="c1", task=arn)
    again = chaos.kill(cluster="c1", task=arn)

    [task], _ = state.describe_tasks(cluster="c1", refs=[arn])
    assert first == [arn] and again == []
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 137
    assert chaos.counters.killed == 1


def test_disconnecting_an_already_disconnected_agent_counts_once(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    chaos = chaos_for(state, clock)

    changed = [chaos.set_agents(cluster="c1", instances=[arn], connected=False) for _ in range(2)]

    assert changed == [1, 0]
    assert chaos.counters.disconnected == 1
