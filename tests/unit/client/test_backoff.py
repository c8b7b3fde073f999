"""Backoff: the policy's arithmetic, and its retry loops with an injected sleep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from blox.client.backoff import Backoff, retrying, retrying_on_loop
from blox.client.errors import HttpInvalid, HttpUnavailable, ServerUnreachable


class Failing:
    """Raises each error given, in order, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def call(self) -> str:
        return self()


class Sleeps:
    """Records the sleeps asked for; also a Clock for the asyncio loop (only `sleep` is used)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return datetime(2017, 6, 1, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)


def test_a_policy_must_make_sense() -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=0)
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=2, cap_s=1)
    with pytest.raises(ValueError, match="max_attempts"):
        Backoff(max_attempts=0)


def test_pauses_double_up_to_the_cap() -> None:
    policy = Backoff(base_s=0.5, cap_s=3.0, max_attempts=4)
    assert [policy.pause_s(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.pause_s(10_000) == 3.0
    assert [policy.is_exhausted(n) for n in (3, 4)] == [False, True]
    assert not Backoff(max_attempts=None).is_exhausted(10**9)


def test_temporary_failures_are_retried_with_jittered_waits_within_bounds() -> None:
    sleeps, policy = Sleeps(), Backoff(base_s=0.5, cap_s=1.0, max_attempts=5)
    attempt = Failing(ServerUnreachable("refused"), HttpUnavailable(503, ""), ServerUnreachable(""))
    assert retrying(policy, sleep=sleeps)(attempt) == "ok"
    assert attempt.calls == 4 and len(sleeps.asked) == 3
    assert all(0 <= s <= c for s, c in zip(sleeps.asked, (0.5, 1.0, 1.0), strict=True))


def test_permanent_failures_are_raised_at_once() -> None:
    sleeps, attempt = Sleeps(), Failing(HttpInvalid(400, "Invalid status"))
    with pytest.raises(HttpInvalid):
        retrying(Backoff(), sleep=sleeps)(attempt)
    assert (attempt.calls, sleeps.asked) == (1, [])


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    sleeps = Sleeps()
    attempt = Failing(*(ServerUnreachable(str(n)) for n in range(5)))
    with pytest.raises(ServerUnreachable, match=r"^2$"):
        retrying(Backoff(max_attempts=3), sleep=sleeps)(attempt)
    assert (attempt.calls, len(sleeps.asked)) == (3, 2)


def test_a_retry_after_hint_lengthens_the_wait_up_to_the_cap() -> None:
    sleeps, policy = Sleeps(), Backoff(base_s=0.1, cap_s=2.0)
    attempt = Failing(HttpUnavailable(503, "", delay_s=1.5), HttpUnavailable(503, "", delay_s=60))
    assert retrying(policy, sleep=sleeps)(attempt) == "ok"
    assert sleeps.asked == [1.5, 2.0]


async def test_the_asyncio_loop_sleeps_on_the_injected_clock() -> None:
    clock, attempt = Sleeps(), Failing(ServerUnreachable("a"), ServerUnreachable("b"))
    assert await retrying_on_loop(Backoff(max_attempts=3), clock=clock)(attempt.call) == "ok"
    assert (attempt.calls, len(clock.asked)) == (3, 2)
