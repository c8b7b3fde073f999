"""Leader election over leases, for any `Store` (etcd's concurrency/election recipe).

Each candidate writes `election/<name>/<lease-id>` bound to its own lease; the candidate whose
key has the lowest create_revision leads. A waiting candidate waits for the deletion of the
key just ahead of it (or of its own key, when its lease ends while it waits). The scheduler
and the CSS reconciler campaign; only the leader runs their loops, and stops them when
`Leadership.lost` is set.

Assumptions / Invariants:
- At most one candidate believes it leads at a time, give or take one keep-alive interval:
  a leader that cannot refresh its lease within its TTL sets `lost` before the store could
  expire its key and let another candidate in.
- Keep-alives run every TTL / 3; `lost` is set when the lease is gone, when the campaign key
  disappears, or when TTL seconds passed since the last successful keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from blox.clock import Clock, SystemClock
from blox.store import errors
from blox.store.base import Entry, Store

logger = logging.getLogger(__name__)

ELECTION_PREFIX = "election/"
DEFAULT_TTL_S = 10


@dataclass(eq=False)
class Leadership:
    """Held by the elected leader until `resign()`; `lost` is set if it slips away."""

    key: str
    lease: int
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class Election:
    """Campaign for, observe and resign the leadership called `name` (see the module docstring)."""

    def __init__(
        self, store: Store, name: str, *, ttl_s: int = DEFAULT_TTL_S, clock: Clock | None = None
    ) -> None:
        if not name or "/" in name:
            raise errors.InvalidOperation(f"election name {name!r} must be non-empty, without '/'")
        self._store = store
        self._prefix = f"{ELECTION_PREFIX}{name}/"
        self._ttl_s = ttl_s
        self._clock = clock or SystemClock()
        self._guards: set[asyncio.Task[None]] = set()
        self.leadership: Leadership | None = None

    async def campaign(self, value: str) -> Leadership:
        """Wait until this candidate leads, then return its Leadership (keep-alives running)."""
        lease = await self._store.grant(self._ttl_s)
        leadership = Leadership(key=f"{self._prefix}{lease.id:016x}", lease=lease.id)
        self._guard(self._keep_alive(leadership))
        try:
            await self._store.put(leadership.key, value.encode(), expect=0, lease=lease.id)
            await self._wait_for_turn(leadership)
        except BaseException:
            await self._stop_guards()
            with contextlib.suppress(errors.StoreError):
                await self._store.revoke(lease.id)
            raise
        self._guard(self._watch_own_key(leadership))
        self.leadership = leadership
        logger.info("elected leader of %s as %s", self._prefix, value)
        return leadership

    async def leader(self) -> str | None:
        """The value of the current leader, or None when nobody leads."""
        candidates, _ = await self._candidates()
        return candidates[0].value.decode() if candidates else None

    async def observe(self) -> AsyncIterator[str | None]:
        """The current leader's value now and after every change of leader (None: nobody)."""
        candidates, revision = await self._candidates()
        current = candidates[0].value.decode() if candidates else None
        yield current
        async for _ in self._store.watch(self._prefix, start_revision=revision + 1):
            leader = await self.leader()
            if leader != current:
                current = leader
                yield current

    async def resign(self) -> None:
        """Give up leadership (or the campaign) now: revoke the lease so another may lead."""
        leadership, self.leadership = self.leadership, None
        await self._stop_guards()
        if leadership is not None:
            await self._store.revoke(leadership.lease)
            leadership.lost.set()

    async def abandon(self) -> None:
        """Stop keeping the lease alive without revoking it, as a crashed process would."""
        await self._stop_guards()

    async def _candidates(self) -> tuple[list[Entry], int]:
        page = await self._store.list(self._prefix)
        return sorted(page.entries, key=lambda e: e.create_revision), page.revision

    async def _wait_for_turn(self, leadership: Leadership) -> None:
        while True:
            candidates, revision = await self._candidates()
            keys = [c.key for c in candidates]
            if leadership.key not in keys:
                raise errors.LeaseNotFound(f"campaign key {leadership.key} vanished: lease lost")
            position = keys.index(leadership.key)
            if position == 0:
                return
            watched = {keys[position - 1], leadership.key}
            ahead = asyncio.ensure_future(self._wait_deleted(watched, revision + 1))
            lost = asyncio.ensure_future(leadership.lost.wait())
            try:
                await asyncio.wait({ahead, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (ahead, lost):
                    waiter.cancel()
            if leadership.lost.is_set():
                raise errors.LeaseNotFound(f"lease of {leadership.key} lost while campaigning")

    async def _wait_deleted(self, keys: set[str], start_revision: int) -> None:
        """Return once one of `keys` is deleted (the candidate ahead, or our own key)."""
        async for change in self._store.watch(self._prefix, start_revision=start_revision):
            if change.key in keys and change.kind == "delete":
                return

    async def _keep_alive(self, leadership: Leadership) -> None:
        last_ok = self._clock.monotonic()
        while True:
            await self._clock.sleep(self._ttl_s / 3)
            try:
                await self._store.keep_alive(leadership.lease)
                last_ok = self._clock.monotonic()
            except errors.LeaseNotFound:
                logger.warning("lease of %s expired: leadership lost", leadership.key)
                leadership.lost.set()
                return
            except errors.StoreError as exc:
                logger.warning("keep-alive of %s failed: %s", leadership.key, exc)
                if self._clock.monotonic() - last_ok >= self._ttl_s:
                    leadership.lost.set()
                    return

    async def _watch_own_key(self, leadership: Leadership) -> None:
        entry = await self._store.get(leadership.key)
        if entry is None:
            leadership.lost.set()
            return
        await self._wait_deleted({leadership.key}, entry.mod_revision + 1)
        logger.warning("campaign key %s was deleted: leadership lost", leadership.key)
        leadership.lost.set()

    def _guard(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._guards.add(asyncio.get_running_loop().create_task(coroutine))

    async def _stop_guards(self) -> None:
        guards, self._guards = self._guards, set()
        for task in guards:
            task.cancel()
        for task in guards:
            with contextlib.suppress(asyncio.CancelledError, errors.StoreError):
                await task


async def while_leading(
    election: Election,
    identity: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    clock: Clock,
    retry_s: float = 1.0,
) -> None:
    """Campaign, run `work()` while leading, and campaign again when the leadership is lost.

    Runs until cancelled (then resigns). `work` is cancelled the moment `Leadership.lost` is
    set, so two candidates never run it at once beyond one keep-alive interval; if `work`
    returns or raises, this candidate resigns and campaigns again (a failure is logged). A
    store outage while campaigning is waited out, never raised.
    """
    try:
        while True:
            try:
                leadership = await election.campaign(identity)
            except errors.StoreError as exc:
                logger.warning("cannot campaign as %s (%s); retrying", identity, exc)
                await clock.sleep(retry_s)
                continue
            working = asyncio.ensure_future(work())
            lost = asyncio.ensure_future(leadership.lost.wait())
            try:
                await asyncio.wait({working, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                if not working.done():
                    working.cancel()
                await asyncio.wait({working})
            if not working.cancelled() and working.exception() is not None:
                logger.error("leader work failed: %s", working.exception())
            logger.warning("%s no longer leads; campaigning again", identity)
            with contextlib.suppress(errors.StoreError):
                await election.resign()
    finally:
        with contextlib.suppress(errors.StoreError):
            await election.resign()
