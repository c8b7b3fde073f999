"""The etcd v3 backend of `Store` on aetcd, reached only through `blox.store.open_store`.

No aetcd type leaves this module or `etcd_wire.py`, whose `translated()` is the one place that
maps aetcd's errors.

Assumptions / Invariants:
- A call that finds its member unavailable retires that client (closed once unused), moves to
  the next endpoint and retries: every endpoint twice, then StoreUnavailable naming them all.
- Writes are retried too: an unconditional one cut off unseen may land twice (same end state).
  A conditional one whose retry fails its compare after an attempt that may have applied raises
  StoreUnavailable ("outcome unknown"), not a CompareFailed its own first attempt may cause.
- A watch resumes after the last revision it delivered: etcd never splits a revision across
  watch responses and aetcd queues a whole response before a stream error.
- etcd tells its compaction point only when refusing a watch: `compacted_revision` asks so.
- `list` sends a limited RangeRequest (see etcd_wire.read_range): a page of 100 reads 100 keys.
- `get_many` is one Txn of point reads per MAX_TXN_OPS keys; every Txn after the first reads at
  the first one's revision, so the whole answer is of one revision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aetcd

from blox.clock import Clock, SystemClock
from blox.store import errors
from blox.store import etcd_wire as wire
from blox.store.base import Change, Compare, Delete, Entry, Lease, Op, Page, Put

DEFAULT_TIMEOUT_S = 5.0
WATCH_RETRY_S = 30.0
ATTEMPTS_PER_ENDPOINT = 2
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
# etcd refuses a compacted watch on its next watcher sync, every 100 ms (watchable_store.go).
PROBE_WAIT_S = 1.0
_CHANNEL_OPTIONS = {
    "grpc.enable_http_proxy": 0,  # an http_proxy in the environment must not catch etcd calls
    # A new client must really reconnect, not share the old one's backed-off subchannel.
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_reconnect_backoff_ms": 1000,
    "grpc.keepalive_time_ms": 10_000,  # notice a vanished member under an idle watch
    "grpc.keepalive_timeout_ms": 5_000,
}
# gRPC and etcd texts of failures that happen before a request can be applied.
_NOT_SENT = ("failed to connect", "connection refused", "no leader")

T = TypeVar("T")


def _may_have_applied(failure: errors.StoreUnavailable) -> bool:
    text = str(failure.__cause__).lower()
    return not any(reason in text for reason in _NOT_SENT)


@dataclass(eq=False)
class _Conn:
    """One aetcd client on one endpoint, and how many calls and watches use it."""

    client: Any
    index: int
    users: int = 0
    retired: bool = False
    closed: bool = False


class EtcdStore:
    """`Store` on an etcd server or cluster (see the module docstring for failover)."""

    def __init__(
        self,
        url: str,
        endpoints: Sequence[tuple[str, int]],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        watch_retry_s: float = WATCH_RETRY_S,
        clock: Clock | None = None,
    ) -> None:
        if not endpoints:
            raise errors.InvalidStoreUrl(f"store URL {url!r} names no etcd endpoint")
        self.url = url
        self._endpoints = list(endpoints)
        self._timeout_s = timeout_s
        self._watch_retry_s = watch_retry_s
        self._clock = clock or SystemClock()
        self._conns: set[_Conn] = set()
        self._conn = self._connect(0)
        self._closed = False
        self._compacted = 1  # the highest compaction point this client knows of
        self._where = ",".join(f"{host}:{port}" for host, port in self._endpoints)

    @property
    def endpoint(self) -> tuple[str, int]:
        """The member (host, port) that calls go to now."""
        return self._endpoints[self._conn.index]

    async def get(self, key: str) -> Entry | None:
        kv = await self._call(lambda client: client.get(key.encode()))
        return None if kv is None else wire.to_entry(kv)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        found: list[Entry | None] = []
        revision = 0  # the first Txn reads the latest revision; the others read at that one
        for start in range(0, len(keys), wire.MAX_TXN_OPS):
            chunk = [key.encode() for key in keys[start : start + wire.MAX_TXN_OPS]]

            async def call(client: Any, chunk: list[bytes] = chunk, at: int = revision) -> Any:
                return await wire.read_many(client, chunk, revision=at)

            kvs, revision = await self._call(call)
            found += [None if kv is None else wire.to_entry(kv) for kv in kvs]
        return found

    async def list(self, prefix: str, *, limit: int = 0, after: str | None = None) -> Page:
        if limit < 0:
            raise errors.InvalidOperation(f"limit must be 0 (all) or positive, not {limit}")
        start, end = wire.prefix_range(prefix)
        if after is not None:
            start = max(start, after.encode() + b"\0")
        found = await self._call(lambda client: wire.read_range(client, start, end, limit=limit))
        entries = [wire.to_entry(kv) for kv in found.kvs]
        more = bool(found.more) if limit else False
        return Page(entries=entries, more=more, revision=int(found.header.revision))

    async def put(
        self, key: str, value: bytes, *, expect: int | None = None, lease: int = 0
    ) -> int:
        compares = [] if expect is None else [Compare(key, expect)]
        return (await self._txn(compares, [Put(key, value, lease)]))[0]

    async def delete(self, key: str, *, expect: int | None = None) -> int | None:
        compares = [] if expect is None else [Compare(key, expect)]
        revision, deleted = await self._txn(compares, [Delete(key)])
        return revision if deleted else None

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        return (await self._txn(compares, ops))[0]

    async def revision(self) -> int:
        found = await self._call(lambda client: client.get_range(wire.WHOLE, b"\0\0"))
        return int(found.header.revision)

    async def compact(self, revision: int) -> None:
        async def call(client: Any) -> None:
            with wire.translated(requested=revision, compacting=True):
                await client.compact(revision)

        await self._call(call)
        self._compacted = max(self._compacted, revision)

    async def compacted_revision(self) -> int:
        current = await self.revision()
        floor = min(self._compacted, current)
        if current < 2:
            return floor  # an empty history has no event to probe with
        try:
            await self._call(lambda client: self._probe(client, floor), requested=floor)
        except errors.Compacted as exc:
            self._compacted = max(self._compacted, exc.compacted)
            return exc.compacted
        return floor

    async def grant(self, ttl_s: int) -> Lease:
        if ttl_s < 1:
            raise errors.InvalidOperation(f"a lease TTL must be at least 1 second, not {ttl_s}")
        granted = await self._call(lambda client: client.lease(ttl_s))
        return Lease(id=int(granted.id), ttl_s=int(granted.ttl))

    async def keep_alive(self, lease_id: int) -> int:
        reply = await self._call(lambda client: client.refresh_lease(lease_id))
        if reply is None or int(reply.TTL) <= 0:
            raise errors.LeaseNotFound(f"lease {lease_id:x} has expired or was revoked")
        return int(reply.TTL)

    async def revoke(self, lease_id: int) -> None:
        with contextlib.suppress(errors.LeaseNotFound):
            await self._call(lambda client: client.revoke_lease(lease_id))

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._conns):
            await self._shut(conn)

    async def _txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> tuple[int, bool]:
        """Run one etcd txn; the revision after it and whether it deleted a key."""
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise errors.InvalidOperation("a transaction may name each key only once")

        def call(client: Any) -> Any:
            t = client.transactions
            return client.transaction(
                compare=[t.mod(c.key.encode()) == c.mod_revision for c in compares],
                success=[wire.op_request(t, op) for op in ops],
                failure=[t.get(c.key.encode()) for c in compares],
            )

        (succeeded, responses), resent = await self._attempts(call)
        if not succeeded:
            failed = wire.failed_keys(compares, responses)
            if resent:
                raise errors.StoreUnavailable(
                    f"etcd write outcome unknown: an attempt cut off by failover may have "
                    f"applied it, and the retry's compare failed on {', '.join(failed)}"
                )
            raise errors.CompareFailed(failed)
        revision, deleted = wire.outcome(responses)
        return revision or await self.revision(), deleted

    async def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncGenerator[Change, None]:
        """Every change under `prefix` from `start_revision` on; resumes after a lost stream."""
        key, end = wire.prefix_range(prefix)
        resume = start_revision or await self.revision() + 1
        lost_since: float | None = None
        while True:
            async with self._using() as conn:
                opened_at, watch = resume, None
                try:
                    with wire.translated(requested=opened_at):
                        watch = await conn.client.watch(
                            key, range_end=end, start_revision=opened_at, prev_kv=True
                        )
                    lost_since, events = None, aiter(watch)
                    while (change := await wire.next_change(events, opened_at)) is not None:
                        resume = change.revision + 1
                        yield change
                    failure = errors.StoreUnavailable("the etcd watch stream ended")
                except errors.StoreUnavailable as exc:
                    failure = exc
                finally:
                    if watch is not None:
                        await wire.stop_watch(watch, events, live=not conn.closed)
            if self._closed:
                raise errors.StoreUnavailable(f"the etcd store {self.url} is closed") from failure
            now = self._clock.monotonic()
            lost_since = now if lost_since is None else lost_since
            if now - lost_since >= self._watch_retry_s:
                raise errors.StoreUnavailable(
                    f"etcd at {self._where} is unreachable: a watch could not resume for "
                    f"{now - lost_since:.0f} s: {failure}"
                ) from failure
            await self._fail_over(conn)
            await self._clock.sleep(min(BACKOFF_MAX_S, BACKOFF_FIRST_S + (now - lost_since) / 2))

    async def _probe(self, client: Any, floor: int) -> None:
        """Watch everything from `floor`: etcd refuses if compacted past it, else sends events."""
        watch = await client.watch(wire.WHOLE, range_end=wire.WHOLE, start_revision=floor)
        events = aiter(watch)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_WAIT_S):
                    await anext(events)
        finally:
            await wire.stop_watch(watch, events, live=True)

    async def _call(self, call: Callable[[Any], Awaitable[T]], *, requested: int = 0) -> T:
        """Run `call` with an aetcd client, failing over while etcd is unavailable."""
        return (await self._attempts(call, requested=requested))[0]

    async def _attempts(
        self, call: Callable[[Any], Awaitable[T]], *, requested: int = 0
    ) -> tuple[T, bool]:
        """`_call`, also saying whether an attempt before the last may have been applied."""
        resent = False
        tries = ATTEMPTS_PER_ENDPOINT * len(self._endpoints)
        for attempt in range(tries):
            async with self._using() as conn:
                try:
                    with wire.translated(requested=requested):
                        return await call(conn.client), resent
                except errors.StoreUnavailable as exc:
                    failure = exc
            resent = resent or _may_have_applied(failure)
            await self._fail_over(conn)
            if attempt + 1 < tries:
                await self._clock.sleep(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**attempt))
        raise errors.StoreUnavailable(
            f"etcd at {self._where} is unreachable: {failure}"
        ) from failure

    @contextlib.asynccontextmanager
    async def _using(self) -> AsyncIterator[_Conn]:
        """The current client, kept open (even if retired meanwhile) until the block ends."""
        if self._closed:
            raise errors.StoreUnavailable(f"the etcd store {self.url} is closed")
        conn = self._conn
        conn.users += 1
        try:
            yield conn
        finally:
            conn.users -= 1
            if conn.retired and conn.users == 0:
                await self._shut(conn)

    async def _fail_over(self, conn: _Conn) -> None:
        """Move on to the next endpoint, unless another call has already moved on from `conn`."""
        if conn is not self._conn or self._closed:
            return
        self._conn = self._connect((conn.index + 1) % len(self._endpoints))
        conn.retired = True
        if conn.users == 0:
            await self._shut(conn)

    def _connect(self, index: int) -> _Conn:
        host, port = self._endpoints[index]
        client = aetcd.Client(host, port, timeout=self._timeout_s, options=dict(_CHANNEL_OPTIONS))
        conn = _Conn(client, index)
        self._conns.add(conn)
        return conn

    async def _shut(self, conn: _Conn) -> None:
        if not conn.closed:
            conn.closed = True
            self._conns.discard(conn)
            await conn.client.close()


async def open_etcd(
    url: str, endpoints: list[tuple[str, int]], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> EtcdStore:
    """Connect to etcd at `endpoints` and check that it answers; StoreUnavailable if not."""
    store = EtcdStore(url, endpoints, timeout_s=timeout_s)
    try:
        await store.revision()
    except BaseException:
        await store.close()
        raise
    return store
