"""The aetcd edge of the etcd backend: aetcd's messages and errors to the store's, and back.

`translated()` is the one place that maps aetcd's exceptions; the converters are pure apart
from `read_range`, which sends a RangeRequest that aetcd 1.0's get_range cannot (a limit), and
`read_many`, a Txn of point reads at one revision. Only `etcd.py` imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import aetcd

from blox.store import errors
from blox.store.base import Change, Compare, Entry, Op, Put, prefix_end

CANCEL_WAIT_S = 1.0
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops: a Txn with more operations is refused
WHOLE = b"\0"  # as a range start: the first key; as a range end: no upper bound


@contextlib.contextmanager
def translated(*, requested: int = 0, compacting: bool = False) -> Iterator[None]:
    """Raise the store's error for aetcd's, chained; `requested` is a watch or compact revision."""
    try:
        yield
    except (aetcd.ConnectionFailedError, aetcd.ConnectionTimeoutError, TimeoutError) as exc:
        raise errors.StoreUnavailable(f"etcd did not answer: {str(exc) or 'timed out'}") from exc
    except aetcd.RevisionCompactedError as exc:
        raise errors.Compacted(requested, int(exc.compacted_revision)) from exc
    except aetcd.InvalidArgumentError as exc:  # e.g. "duplicate key given in txn request"
        raise errors.InvalidOperation(f"etcd refused the request: {exc}") from exc
    except aetcd.ClientError as exc:
        text = str(exc)
        if "lease not found" in text:
            raise errors.LeaseNotFound(f"the lease has expired or was revoked ({text})") from exc
        if "future revision" in text:
            raise errors.InvalidOperation(f"cannot compact at future revision {requested}") from exc
        if compacting and "has been compacted" in text:
            return  # compacting an already compacted point is a no-op
        raise errors.StoreUnavailable(f"etcd failed: {text or type(exc).__name__}") from exc


def to_entry(kv: Any) -> Entry:
    counters = (int(kv.create_revision), int(kv.mod_revision), int(kv.version), int(kv.lease))
    return Entry(bytes(kv.key).decode(), bytes(kv.value), *counters)


def to_change(event: Any) -> Change:
    # etcd sends an empty prev_kv when the key was absent (or its old value compacted).
    prev = to_entry(event.prev_kv) if event.prev_kv is not None and event.prev_kv.key else None
    entry = to_entry(event.kv)
    if event.kind == "PUT":
        return Change("put", entry.key, entry.mod_revision, entry, prev)
    return Change("delete", entry.key, entry.mod_revision, None, prev)


def prefix_range(prefix: str) -> tuple[bytes, bytes]:
    key = prefix.encode()
    return key or WHOLE, prefix_end(key) or WHOLE


async def read_range(client: Any, start: bytes, end: bytes, *, limit: int) -> Any:
    """A RangeResponse of at most `limit` keys (0: all), in key order, with etcd's `more` flag."""
    await client.connect()
    request = aetcd.rpc.RangeRequest(key=start, range_end=end, limit=limit)
    try:
        return await client.kvstub.Range(request, timeout=client._timeout, metadata=client.metadata)
    except aetcd.rpc.AioRpcError as exc:
        # aetcd's own mapping of gRPC statuses, so translated() sees aetcd's errors as usual.
        aetcd.exceptions._handle_exception(exc)
        raise


async def read_many(client: Any, keys: Sequence[bytes], *, revision: int) -> tuple[list[Any], int]:
    """One etcd Txn of point reads at `revision` (0: the latest): each key's kv or None, in
    order, and the revision read at. At most MAX_TXN_OPS keys (etcd refuses more)."""
    await client.connect()
    ranges = [aetcd.rpc.RangeRequest(key=key, revision=revision) for key in keys]
    request = aetcd.rpc.TxnRequest(success=[aetcd.rpc.RequestOp(request_range=r) for r in ranges])
    try:
        reply = await client.kvstub.Txn(request, timeout=client._timeout, metadata=client.metadata)
    except aetcd.rpc.AioRpcError as exc:
        aetcd.exceptions._handle_exception(exc)
        raise
    found = [r.response_range.kvs[0] if r.response_range.kvs else None for r in reply.responses]
    return found, revision or int(reply.header.revision)


def op_request(t: Any, op: Op) -> Any:
    if isinstance(op, Put):
        return t.put(op.key.encode(), op.value, lease=op.lease)
    return t.delete(op.key.encode())


def outcome(responses: Any) -> tuple[int, bool]:
    """The revision after a succeeded etcd txn (0: it had no ops) and whether it deleted a key."""
    results = [getattr(response, response.WhichOneof("response")) for response in responses]
    revision = max((int(result.header.revision) for result in results), default=0)
    return revision, any(int(getattr(result, "deleted", 0)) > 0 for result in results)


def failed_keys(compares: Sequence[Compare], ranges: Any) -> list[str]:
    """The keys whose compare failed, from the range reads of a failed txn."""
    actual = [int(found[0][1].mod_revision) if found else 0 for found in ranges]
    failed = [c.key for c, mod in zip(compares, actual, strict=True) if mod != c.mod_revision]
    return failed or [c.key for c in compares]


async def stop_watch(watch: Any, events: Any, *, live: bool) -> None:
    """Stop an aetcd watch and its iterator; a closed client (not `live`) has stopped the watch."""
    await events.aclose()
    if live:
        with contextlib.suppress(aetcd.ClientError, TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_S):
                await watch.cancel()


async def next_change(events: Any, requested: int) -> Change | None:
    """The next change of an aetcd watch, or None when its stream ended without an error."""
    with translated(requested=requested):
        try:
            return to_change(await anext(events))
        except StopAsyncIteration:
            return None
