"""Backoff: the pure delays, and `retrying` on a manual clock."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blox.clock import ManualClock
from blox.ecs.errors import ClusterNotFound, Throttled
from blox.ecs.retry import RetryPolicy, ceilings, delays, retrying

policies = st.builds(
    RetryPolicy,
    base_s=st.floats(0.001, 2.0),
    cap_s=st.floats(2.0, 60.0),
    max_attempts=st.integers(1, 30),
    deadline_s=st.none(),
    jitter=st.floats(0.0, 1.0),
)


@given(policies)
def test_ceilings_grow_monotonically_up_to_the_cap(policy: RetryPolicy) -> None:
    values = list(ceilings(policy))
    assert values == sorted(values)
    assert all(policy.base_s <= v <= policy.cap_s for v in values)
    assert all(b in (a * 2, policy.cap_s) for a, b in itertools.pairwise(values))


@given(policies, st.integers(0, 2**32))
def test_jittered_delays_lie_within_their_ceiling(policy: RetryPolicy, seed: int) -> None:
    pairs = zip(ceilings(policy), delays(policy, random.Random(seed)), strict=True)
    for ceiling, delay in pairs:
        assert ceiling * (1 - policy.jitter) - 1e-9 <= delay <= ceiling


@given(policies, st.integers(0, 2**32))
def test_there_is_one_delay_fewer_than_attempts(policy: RetryPolicy, seed: int) -> None:
    assert len(list(delays(policy, random.Random(seed)))) == policy.max_attempts - 1


def test_without_jitter_the_delays_are_the_ceilings() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=5.0, max_attempts=6, jitter=0.0)
    assert list(delays(policy, random.Random(0))) == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_seeded_rng_gives_the_same_delays() -> None:
    policy = RetryPolicy()
    assert list(delays(policy, random.Random(7))) == list(delays(policy, random.Random(7)))


def test_bad_policies_are_refused() -> None:
    for kwargs in ({"base_s": 0}, {"max_attempts": 0}, {"jitter": 1.5}, {"cap_s": 0.01}):
        with pytest.raises(ValueError, match=r"must|need"):
            RetryPolicy(**kwargs)


class Flaky:
    """Fails with `errors` in order, then returns 'ok'; counts calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def drive(clock: ManualClock, task: asyncio.Task[str], step: float = 1.0) -> str:
    while not task.done():
        await clock.advance(step)
    return task.result()


async def test_temporary_errors_are_retried_on_the_clock(clock: ManualClock) -> None:
    flaky = Flaky(Throttled("Rate exceeded"), Throttled("Rate exceeded"))
    policy = RetryPolicy(base_s=1.0, jitter=0.0)
    task = asyncio.create_task(retrying(flaky, policy=policy, clock=clock, rng=random.Random(0)))
    assert await drive(clock, task) == "ok"
    assert flaky.calls == 3
    assert clock.monotonic() >= 3.0  # waited 1 s then 2 s


async def test_permanent_errors_are_raised_at_once(clock: ManualClock) -> None:
    flaky = Flaky(ClusterNotFound("Cluster not found."))
    with pytest.raises(ClusterNotFound):
        await retrying(flaky, policy=RetryPolicy(), clock=clock, rng=random.Random(0))
    assert flaky.calls == 1
    assert clock.monotonic() == 0.0


async def test_retries_stop_after_max_attempts(clock: ManualClock) -> None:
    flaky = Flaky(*(Throttled("Rate exceeded") for _ in range(10)))
    policy = RetryPolicy(base_s=0.5, max_attempts=4, deadline_s=None)
    task = asyncio.create_task(retrying(flaky, policy=policy, clock=clock, rng=random.Random(1)))
    with pytest.raises(Throttled):
        await drive(clock, task)
    assert flaky.calls == 4


async def test_retries_stop_before_the_deadline(clock: ManualClock) -> None:
    flaky = Flaky(*(Throttled("Rate exceeded") for _ in range(10)))
    policy = RetryPolicy(base_s=1.0, cap_s=100.0, max_attempts=10, deadline_s=5.0, jitter=0.0)
    task = asyncio.create_task(retrying(flaky, policy=policy, clock=clock, rng=random.Random(1)))
    with pytest.raises(Throttled):
        await drive(clock, task)
    assert flaky.calls == 3  # waits 1 + 2 fit in 5 s; the next 4 would not


async def test_the_error_delay_hint_lengthens_the_wait(clock: ManualClock) -> None:
    hinted = Throttled("Rate exceeded", delay_s=7.0)
    flaky = Flaky(hinted)
    policy = RetryPolicy(base_s=0.1, jitter=0.0)
    task = asyncio.create_task(retrying(flaky, policy=policy, clock=clock, rng=random.Random(0)))
    assert await drive(clock, task, step=0.5) == "ok"
    assert clock.monotonic() >= 7.0
