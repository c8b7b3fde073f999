"""How the SDK retries: a `Backoff` policy, turned into tenacity controllers for threads or asyncio.

By default only `Temporary` errors are retried (a refused or dropped connection, a timeout, a
5xx); a caller may narrow that with `when` (`http` does for requests that change something).
Each wait is drawn from [0, min(cap_s, base_s * 2**n)] ("full jitter", as AWS's SDKs do), and a
server's Retry-After lengthens it up to `cap_s`. Sleeping goes through what the caller injects:
a `Clock` for the asyncio clients, a sleep function for the blocking ones. Callers: `http`,
`watch`.

tenacity gives both loops (blocking and async) one policy with an injectable sleep; the
async-only `blox.ecs.retry` sits in a sibling layer that `blox.client` may not import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from blox.clock import Clock
from blox.errors import Temporary

__all__ = ["Backoff", "is_retryable", "retrying", "retrying_on_loop"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often and how long to retry: `max_attempts` counts the first try (None: forever)."""

    base_s: float = 0.1
    cap_s: float = 5.0
    max_attempts: int | None = 6

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (None: retry forever)")

    def pause_s(self, failures: int) -> float:
        """The un-jittered wait after `failures` consecutive failures (0 for none), capped."""
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 62))

    def is_exhausted(self, failures: int) -> bool:
        """Whether `failures` consecutive failed attempts use up `max_attempts`."""
        return self.max_attempts is not None and failures >= self.max_attempts


def is_retryable(error: BaseException) -> bool:
    """Whether trying again may help: the error says it is Temporary."""
    return isinstance(error, Temporary)


def retrying(
    backoff: Backoff,
    *,
    sleep: Callable[[float], None],
    when: Callable[[BaseException], bool] = is_retryable,
) -> tenacity.Retrying:
    """A blocking controller: `retrying(b, sleep=time.sleep)(fn, *args)`; retries the errors
    `when` accepts (default: Temporary ones)."""
    return tenacity.Retrying(
        sleep=sleep,
        stop=_stop(backoff),
        wait=_wait(backoff),
        retry=tenacity.retry_if_exception(when),
        before_sleep=_log,
        reraise=True,
    )


def retrying_on_loop(
    backoff: Backoff, *, clock: Clock, when: Callable[[BaseException], bool] = is_retryable
) -> tenacity.AsyncRetrying:
    """An asyncio controller sleeping on `clock`: `await retrying_on_loop(b, clock=c)(fn)`."""
    return tenacity.AsyncRetrying(
        sleep=clock.sleep,
        stop=_stop(backoff),
        wait=_wait(backoff),
        retry=tenacity.retry_if_exception(when),
        before_sleep=_log,
        reraise=True,
    )


def _stop(backoff: Backoff) -> tenacity.stop.stop_base:
    if backoff.max_attempts is None:
        return tenacity.stop_never
    return tenacity.stop_after_attempt(backoff.max_attempts)


def _wait(backoff: Backoff) -> Callable[[tenacity.RetryCallState], float]:
    """Full jitter, lengthened to a Temporary error's `delay_s` (Retry-After) up to `cap_s`."""
    jittered = tenacity.wait_random_exponential(multiplier=backoff.base_s, max=backoff.cap_s)

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hint = error.delay_s if isinstance(error, Temporary) else None
        return max(jittered(state), min(hint or 0.0, backoff.cap_s))

    return wait


def _log(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    logger.info("%s; trying again in %.2f s (attempt %d)", error, wait_s, state.attempt_number + 1)
