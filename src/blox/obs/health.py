"""Readiness: named checks and flags behind `GET /readyz`.

Built by a service's composition root and passed to its `create_app(readiness=...)`. A *check*
is an async callable run on each request (the store answers `revision()`; "a reconcile pass has
finished", read from the store's marker so that standby replicas count a leader's pass); a
*flag* is a condition some loop in this process sets once it holds. Future checks join by name
with `add_check` / `add_flag`.

Invariants: `report()` runs every check concurrently, each bounded by `timeout_s` on the
injected clock, and never raises: a check that raises, returns False or times out is reported
failed with a one-line reason. A `BloxError`'s message is shown (it is ours, written for
operators); any other exception is shown by type only and logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from blox.clock import Clock, SystemClock
from blox.errors import BloxError

__all__ = ["CHECK_TIMEOUT_S", "Check", "Flag", "Readiness", "Report", "Result", "store_check"]

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S: Final = 2.0  # a readiness probe must answer well inside the prober's timeout

Check = Callable[[], Awaitable[object]]


class _Revisioned(Protocol):
    async def revision(self) -> int: ...


def store_check(store: _Revisioned) -> Check:
    """A check that holds while the store answers `revision()`."""

    async def check() -> object:
        return await store.revision()

    return check


@dataclass(frozen=True)
class Result:
    """One check's outcome: `error` says why it failed (None: it held)."""

    ok: bool
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """`{"ok": true}` or `{"ok": false, "error": "..."}`."""
        return {"ok": True} if self.ok else {"ok": False, "error": self.error}


@dataclass(frozen=True)
class Report:
    """Every check's result; ready only if all of them held."""

    checks: dict[str, Result] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True when every check held."""
        return all(result.ok for result in self.checks.values())

    @property
    def failing(self) -> list[str]:
        """The names of the checks that failed, in registration order."""
        return [name for name, result in self.checks.items() if not result.ok]

    def as_json(self) -> dict[str, Any]:
        """`{"ready": bool, "checks": {name: {"ok": bool[, "error": str]}}}`."""
        return {
            "ready": self.ready,
            "checks": {name: result.as_json() for name, result in self.checks.items()},
        }


class Flag:
    """A condition that holds once a loop says so, e.g. "the first reconcile finished"."""

    def __init__(self, waiting: str) -> None:
        self.waiting = waiting
        self._set = False

    @property
    def is_set(self) -> bool:
        """Whether the condition holds."""
        return self._set

    def set(self) -> None:
        """The condition holds from now on (until `clear`)."""
        self._set = True

    def clear(self) -> None:
        """The condition no longer holds."""
        self._set = False


class Readiness:
    """Named checks and flags; `report()` says whether the service should get traffic."""

    def __init__(self, *, clock: Clock | None = None, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self._clock = clock or SystemClock()
        self._timeout_s = timeout_s
        self._checks: dict[str, tuple[Check, str]] = {}
        self._flags: dict[str, Flag] = {}

    def add_check(self, name: str, check: Check, *, failing: str = "check failed") -> None:
        """Run `check` on every report; it fails by raising, or by returning False (`failing`)."""
        self._claim(name)
        self._checks[name] = (check, failing)

    def add_flag(self, name: str, *, waiting: str) -> Flag:
        """A flag reported failed with the reason `waiting` until its holder calls `set()`."""
        self._claim(name)
        flag = self._flags[name] = Flag(waiting)
        return flag

    def flag(self, name: str) -> Flag:
        """The flag registered as `name` (KeyError if there is none)."""
        return self._flags[name]

    async def report(self) -> Report:
        """Run the checks concurrently and read the flags; never raises."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name, *self._checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        for name, flag in self._flags.items():
            checks[name] = Result(True) if flag.is_set else Result(False, flag.waiting)
        return Report(checks)

    def _claim(self, name: str) -> None:
        if not name or name in self._checks or name in self._flags:
            raise ValueError(f"readiness check name {name!r} is empty or taken")

    async def _run(self, name: str, check: Check, failing: str) -> Result:
        work = asyncio.ensure_future(check())
        timer = asyncio.ensure_future(self._clock.sleep(self._timeout_s))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():  # timed out, or the report itself was cancelled
                work.cancel()
                work.add_done_callback(_retrieve)
        if not work.done() or work.cancelled():
            return Result(False, f"no answer within {self._timeout_s:g}s")
        error = work.exception()
        if error is None:
            return Result(True) if work.result() is not False else Result(False, failing)
        if isinstance(error, BloxError):
            return Result(False, str(error) or type(error).__name__)
        logger.error("readiness check %s failed unexpectedly", name, exc_info=error)
        return Result(False, f"unexpected {type(error).__name__}")


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read an abandoned check's outcome so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()
