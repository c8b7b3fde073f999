"""The store contract: a versioned key-value store with etcd v3 semantics.

Every backend (`memory`, `sqlite`, `etcd`) implements `Store` and passes the one conformance
suite in tests/store/. Callers (css, scheduler) see only this module, never a backend.

Assumptions / Invariants:
- One store-wide `revision`; every committed write (put, delete of an existing key, or a
  transaction that changed something) raises it by exactly one. A failed compare, or a delete
  of a missing key, changes nothing and does not raise it. An empty store is at revision 1.
- Each key carries `create_revision`, `mod_revision` and `version` as etcd defines them: a put
  on a missing key sets create = mod = revision and version 1; a put on a present key keeps
  create, sets mod and adds one to version; a delete forgets all three.
- `watch(prefix, start_revision=N)` yields every change to a key under `prefix` whose revision
  is >= N (N included, as etcd), in revision order and, inside one transaction, in operation
  order; never one twice, never one missing, across reconnects of the backend. N of 0 means
  "from now on". If N is older than the compaction point it raises `Compacted`.
- `compact(R)` forgets history older than R: a watch from R still works, from R - 1 does not.
- Keys are text, values are bytes. Lists are ordered by key, byte-wise.
- `get_many` reads every key it is given at one revision, as a single read: no write lands
  between two of its keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Entry:
    """One key as stored: its value, etcd's three counters, and its lease (0: none)."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    """A page of `list`: entries in key order, whether more follow, and the revision read at."""

    entries: list[Entry]
    more: bool
    revision: int

    @property
    def next_after(self) -> str | None:
        """The `after` argument that fetches the next page, or None when this one was the last."""
        return self.entries[-1].key if self.more and self.entries else None


@dataclass(frozen=True, slots=True)
class Change:
    """One change seen by a watch: the entry after it (None for a delete) and the one before."""

    kind: Literal["put", "delete"]
    key: str
    revision: int
    entry: Entry | None
    prev: Entry | None


@dataclass(frozen=True, slots=True)
class Compare:
    """Holds when `key`'s mod_revision equals `mod_revision`; 0 means "the key does not exist"."""

    key: str
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Put:
    """Set `key` to `value`, bound to `lease` when it is not 0 (the key dies with the lease)."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove `key`; nothing happens if it is absent."""

    key: str


Op = Put | Delete


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease granted by the store: its id and the TTL the store granted, in seconds."""

    id: int
    ttl_s: int


class Store(Protocol):
    """A versioned key-value store with etcd v3 semantics (see the module docstring)."""

    url: str

    async def get(self, key: str) -> Entry | None:
        """The entry at `key`, or None."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """The entry at each of `keys` (None where absent), in their order, read at one revision.

        One read for a page of keys (etcd: one Txn per 128), so that a secondary index resolves
        a page of records in one round trip; a key named twice is answered twice.
        """
        ...

    async def list(self, prefix: str, *, limit: int = 0, after: str | None = None) -> Page:
        """Entries under `prefix` sorting after `after`, in key order, at most `limit` (0: all)."""
        ...

    async def put(
        self, key: str, value: bytes, *, expect: int | None = None, lease: int = 0
    ) -> int:
        """Write `key`; if `expect` is given, only when its mod_revision equals it (0: absent).

        Returns the new store revision; raises CompareFailed when `expect` does not hold.
        """
        ...

    async def delete(self, key: str, *, expect: int | None = None) -> int | None:
        """Remove `key`; returns the new revision, or None if there was nothing to remove."""
        ...

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        """Apply every op if every compare holds, else none; returns the store revision after it.

        Raises CompareFailed naming the keys whose compare failed.
        """
        ...

    async def revision(self) -> int:
        """The current store revision."""
        ...

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[Change]:
        """Every change under `prefix` from `start_revision` on, then live; see the invariants."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history older than `revision`; compacting a compacted point again is a no-op."""
        ...

    async def compacted_revision(self) -> int:
        """The oldest revision a watch may still start from (1 when nothing was compacted)."""
        ...

    async def grant(self, ttl_s: int) -> Lease:
        """A new lease that expires `ttl_s` seconds after its last keep-alive."""
        ...

    async def keep_alive(self, lease_id: int) -> int:
        """Refresh the lease; returns its TTL, or raises LeaseNotFound once it has expired."""
        ...

    async def revoke(self, lease_id: int) -> None:
        """End the lease now and delete its keys; revoking an unknown lease is a no-op."""
        ...

    async def close(self) -> None:
        """Release connections, files and background tasks."""
        ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with `prefix` (None: no upper bound), as etcd."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return None
