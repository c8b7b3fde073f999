"""The in-process store: etcd semantics over a dumb `Engine` (memory dict or SQLite file).

`LocalStore` decides every counter (revision, create/mod revision, version), checks compares,
fans changes out to watchers and expires leases; an `Engine` only keeps rows and history.
Callers reach it through `open_store`; `memory.py` and `sqlite.py` provide the engines.

Assumptions / Invariants:
- One event loop owns the store; engine calls are synchronous and short, so a commit is
  atomic with respect to other coroutines (no await between compare and write).
- A watcher registers for live changes only at a moment when it has read all history up to
  the current revision, so no change falls between replay and live delivery.
- A watcher that falls more than `WATCH_BUFFER` changes behind is unregistered and replays
  from history, so a slow reader costs memory only up to that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from blox.clock import Clock
from blox.store import errors
from blox.store.base import Change, Compare, Delete, Entry, Lease, Op, Page, Put

logger = logging.getLogger(__name__)

WATCH_BUFFER = 10_000
HISTORY_CHUNK_REVISIONS = 1_000
LEASE_TICK_S = 0.25
FIRST_REVISION = 1


class Engine(Protocol):
    """Rows and history, with no semantics of their own; every call is synchronous."""

    def get(self, key: str) -> Entry | None:
        """The current row of `key`."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """The current row of each of `keys` (None where absent), in their order."""
        ...

    def range(self, prefix: str, after: str | None, limit: int) -> tuple[list[Entry], bool]:
        """Rows under `prefix` after `after` in key order, at most `limit` (0: all), and "more"."""
        ...

    def history(self, prefix: str, first: int, last: int) -> list[Change]:
        """Logged changes under `prefix` with first <= revision <= last, in commit order."""
        ...

    def apply(self, revision: int, changes: Sequence[Change]) -> None:
        """Write `changes` as one atomic commit at `revision`; log them; record the revision."""
        ...

    def revision(self) -> int:
        """The revision of the last commit (FIRST_REVISION for a new store)."""
        ...

    def compacted(self) -> int:
        """The compaction point (FIRST_REVISION when nothing was compacted)."""
        ...

    def compact(self, revision: int) -> None:
        """Drop logged changes older than `revision` and record the new compaction point."""
        ...

    def leases(self) -> dict[int, int]:
        """Persisted leases: id → granted TTL in seconds."""
        ...

    def leased_keys(self) -> dict[int, set[str]]:
        """Keys bound to each lease id."""
        ...

    def add_lease(self, lease_id: int, ttl_s: int) -> None:
        """Persist a granted lease."""
        ...

    def remove_lease(self, lease_id: int) -> None:
        """Forget a lease."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...


@dataclass(eq=False)
class _Watcher:
    """A live subscription: changes under `prefix` are queued until the reader takes them."""

    prefix: str
    queue: asyncio.Queue[Change] = field(default_factory=lambda: asyncio.Queue(WATCH_BUFFER))
    overflowed: bool = False
    complete_through: int = 0  # after an overflow: the last revision queued whole


class LocalStore:
    """A `Store` with etcd semantics for one process, over an `Engine`."""

    def __init__(self, url: str, engine: Engine, clock: Clock) -> None:
        """Take over `engine`; call from a running event loop (leases need a sweeper task)."""
        self.url = url
        self._engine = engine
        self._clock = clock
        self._revision = engine.revision()
        self._watchers: set[_Watcher] = set()
        self._lease_ttl: dict[int, int] = engine.leases()
        self._lease_keys: dict[int, set[str]] = engine.leased_keys()
        now = clock.monotonic()
        # A restarted store extends every lease by its full TTL, as etcd does after a restart.
        self._lease_deadline = {lid: now + ttl for lid, ttl in self._lease_ttl.items()}
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        if self._lease_deadline:
            self._ensure_sweeper()  # leases inherited from the last run expire too

    async def get(self, key: str) -> Entry | None:
        return self._engine.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        return self._engine.get_many(keys) if keys else []

    async def list(self, prefix: str, *, limit: int = 0, after: str | None = None) -> Page:
        if limit < 0:
            raise errors.InvalidOperation(f"limit must be 0 (all) or positive, not {limit}")
        entries, more = self._engine.range(prefix, after, limit)
        return Page(entries=entries, more=more, revision=self._revision)

    async def put(
        self, key: str, value: bytes, *, expect: int | None = None, lease: int = 0
    ) -> int:
        compares = [] if expect is None else [Compare(key, expect)]
        return self._commit(compares, [Put(key, value, lease)])

    async def delete(self, key: str, *, expect: int | None = None) -> int | None:
        compares = [] if expect is None else [Compare(key, expect)]
        before = self._revision
        after = self._commit(compares, [Delete(key)])
        return after if after != before else None

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        return self._commit(compares, ops)

    async def revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._engine.compacted()

    async def compact(self, revision: int) -> None:
        if revision > self._revision:
            raise errors.InvalidOperation(
                f"cannot compact at {revision}: the store is only at revision {self._revision}"
            )
        if revision > self._engine.compacted():
            self._engine.compact(revision)

    async def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[Change]:
        next_revision = start_revision or self._revision + 1
        # A transaction is one revision with several changes. When a slow watcher overflows in
        # the middle of one, the replay starts again at that revision and skips the changes of
        # it already yielded (`seen` of revision `partial`).
        partial, seen = 0, 0
        while True:
            # Replay: history up to the current revision, in chunks, re-checking compaction.
            while next_revision <= self._revision:
                compacted = self._engine.compacted()
                if next_revision < compacted:
                    raise errors.Compacted(next_revision, compacted)
                last = min(self._revision, next_revision + HISTORY_CHUNK_REVISIONS - 1)
                for change in self._engine.history(prefix, next_revision, last):
                    if change.revision == partial and seen > 0:
                        seen -= 1
                        continue
                    yield change
                next_revision = last + 1
            partial, seen = 0, 0
            live_from = next_revision
            # Live: registered with no await since the replay caught up, so nothing is missed.
            watcher = _Watcher(prefix)
            self._watchers.add(watcher)
            try:
                while not (watcher.overflowed and watcher.queue.empty()):
                    change = await watcher.queue.get()
                    if watcher.overflowed and change.revision > watcher.complete_through:
                        break  # a revision only partly queued: replay it from history
                    if change.revision < live_from:
                        continue  # the watch asked to start at a future revision
                    partial, seen = change.revision, seen + 1 if change.revision == partial else 1
                    next_revision = change.revision  # a replay starts here, skipping `seen`
                    yield change
                else:
                    next_revision = partial + 1 if partial else next_revision
                    partial, seen = 0, 0
            finally:
                self._watchers.discard(watcher)

    async def grant(self, ttl_s: int) -> Lease:
        if ttl_s < 1:
            raise errors.InvalidOperation(f"a lease TTL must be at least 1 second, not {ttl_s}")
        lease_id = secrets.randbits(62) + 1
        self._engine.add_lease(lease_id, ttl_s)
        self._lease_ttl[lease_id] = ttl_s
        self._lease_deadline[lease_id] = self._clock.monotonic() + ttl_s
        self._ensure_sweeper()
        return Lease(id=lease_id, ttl_s=ttl_s)

    async def keep_alive(self, lease_id: int) -> int:
        ttl = self._lease_ttl.get(lease_id)
        if ttl is None:
            raise errors.LeaseNotFound(f"lease {lease_id:x} has expired or was revoked")
        self._lease_deadline[lease_id] = self._clock.monotonic() + ttl
        return ttl

    async def revoke(self, lease_id: int) -> None:
        self._end_lease(lease_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self._engine.close()

    def _commit(self, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        self._check_open()
        failed = [c.key for c in compares if self._mod_revision(c.key) != c.mod_revision]
        if failed:
            raise errors.CompareFailed(failed)
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise errors.InvalidOperation("a transaction may name each key only once")
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._lease_ttl:
                raise errors.LeaseNotFound(f"lease {op.lease:x} has expired or was revoked")
        revision = self._revision + 1
        changes = [c for c in (self._change(op, revision) for op in ops) if c is not None]
        if not changes:
            return self._revision
        self._engine.apply(revision, changes)
        self._revision = revision
        self._track_leases(changes)
        self._publish(changes)
        return revision

    def _change(self, op: Op, revision: int) -> Change | None:
        prev = self._engine.get(op.key)
        if isinstance(op, Delete):
            return None if prev is None else Change("delete", op.key, revision, None, prev)
        entry = Entry(
            key=op.key,
            value=op.value,
            create_revision=prev.create_revision if prev else revision,
            mod_revision=revision,
            version=prev.version + 1 if prev else 1,
            lease=op.lease,
        )
        return Change("put", op.key, revision, entry, prev)

    def _mod_revision(self, key: str) -> int:
        entry = self._engine.get(key)
        return entry.mod_revision if entry else 0

    def _track_leases(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.prev is not None and change.prev.lease:
                self._lease_keys.get(change.prev.lease, set()).discard(change.key)
            if change.entry is not None and change.entry.lease:
                self._lease_keys.setdefault(change.entry.lease, set()).add(change.key)

    def _publish(self, changes: Sequence[Change]) -> None:
        for watcher in list(self._watchers):
            if watcher.overflowed:
                continue
            for change in changes:
                if not change.key.startswith(watcher.prefix):
                    continue
                try:
                    watcher.queue.put_nowait(change)
                except asyncio.QueueFull:
                    watcher.overflowed = True
                    watcher.complete_through = change.revision - 1
                    self._watchers.discard(watcher)
                    break

    def _end_lease(self, lease_id: int) -> None:
        if self._lease_ttl.pop(lease_id, None) is None:
            return
        self._lease_deadline.pop(lease_id, None)
        keys = sorted(self._lease_keys.pop(lease_id, set()))
        if keys:
            self._commit([], [Delete(k) for k in keys])
        self._engine.remove_lease(lease_id)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Expire leases whose deadline passed, every LEASE_TICK_S of the injected clock."""
        while self._lease_deadline:
            await self._clock.sleep(LEASE_TICK_S)
            now = self._clock.monotonic()
            for lease_id in [i for i, d in self._lease_deadline.items() if d <= now]:
                logger.info("lease %x expired", lease_id)
                self._end_lease(lease_id)

    def _check_open(self) -> None:
        if self._closed:
            raise errors.StoreUnavailable(f"store {self.url} is closed")
