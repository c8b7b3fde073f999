"""Jittered exponential backoff on an injected clock; only `Temporary` errors are retried.

`delays(policy, rng)` is pure: the waits between attempts, testable without time. The n-th
ceiling is `min(cap_s, base_s * 2**n)` (monotone up to the cap); each wait is drawn uniformly
from `[ceiling * (1 - jitter), ceiling]`, so concurrent clients spread out. `retrying` runs an
async call until it succeeds, raises a non-retryable error, runs out of attempts or would pass
the deadline; a Temporary error's own `delay_s` (ECS's Retry-After) lengthens the wait.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from blox.clock import Clock
from blox.errors import Temporary

__all__ = ["RetryPolicy", "ceilings", "delays", "is_retryable", "retrying"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry.

    max_attempts counts the first try; deadline_s (None: no deadline) bounds the time from the
    first try to the start of the last one; jitter in [0, 1] is the fraction of each ceiling
    that is random.
    """

    base_s: float = 0.1
    cap_s: float = 20.0
    max_attempts: int = 8
    deadline_s: float | None = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.deadline_s is not None and self.deadline_s < 0:
            raise ValueError("deadline_s must not be negative")


def ceilings(policy: RetryPolicy) -> Iterator[float]:
    """The un-jittered waits: base, 2 base, 4 base … capped; one fewer than max_attempts."""
    ceiling = policy.base_s
    for _ in range(policy.max_attempts - 1):
        yield min(ceiling, policy.cap_s)
        ceiling = min(ceiling * 2, policy.cap_s)


def delays(policy: RetryPolicy, rng: random.Random) -> Iterator[float]:
    """The jittered waits between attempts, each within [ceiling * (1 - jitter), ceiling]."""
    for ceiling in ceilings(policy):
        yield ceiling * (1.0 - policy.jitter * rng.random())


def is_retryable(error: BaseException) -> bool:
    """Whether trying again may help: the error says it is Temporary."""
    return isinstance(error, Temporary)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    retryable: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """The result of `attempt()`, retried with backoff while it raises retryable errors."""
    started = clock.monotonic()
    waits = delays(policy, rng)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not retryable(exc):
                raise
            wait = next(waits, None)
            if wait is None:
                raise
            hint = exc.delay_s if isinstance(exc, Temporary) else None
            if hint is not None:
                wait = max(wait, min(hint, policy.cap_s))
            elapsed = clock.monotonic() - started
            if policy.deadline_s is not None and elapsed + wait > policy.deadline_s:
                raise
        await clock.sleep(wait)
