"""The memory engine: rows in a dict, history in a list. For unit tests and `memory://`.

Nothing survives the process. Semantics live in `local.LocalStore`; this only keeps data.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from blox.store.base import Change, Entry
from blox.store.local import FIRST_REVISION


class MemoryEngine:
    """An `Engine` over Python containers."""

    def __init__(self) -> None:
        self._rows: dict[str, Entry] = {}
        self._sorted: list[str] = []
        self._log: list[Change] = []
        self._log_revisions: list[int] = []
        self._revision = FIRST_REVISION
        self._compacted = FIRST_REVISION
        self._leases: dict[int, int] = {}

    def get(self, key: str) -> Entry | None:
        return self._rows.get(key)

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        return [self._rows.get(key) for key in keys]

    def range(self, prefix: str, after: str | None, limit: int) -> tuple[list[Entry], bool]:
        start = prefix if after is None or after < prefix else after
        index = bisect.bisect_left(self._sorted, start)
        if after is not None and index < len(self._sorted) and self._sorted[index] == after:
            index += 1
        entries: list[Entry] = []
        for position in range(index, len(self._sorted)):  # no copy of the tail
            key = self._sorted[position]
            if not key.startswith(prefix):
                return entries, False
            if limit and len(entries) == limit:
                return entries, True
            entries.append(self._rows[key])
        return entries, False

    def history(self, prefix: str, first: int, last: int) -> list[Change]:
        lo = bisect.bisect_left(self._log_revisions, first)
        hi = bisect.bisect_right(self._log_revisions, last)
        return [c for c in self._log[lo:hi] if c.key.startswith(prefix)]

    def apply(self, revision: int, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.entry is None:
                del self._rows[change.key]
                del self._sorted[bisect.bisect_left(self._sorted, change.key)]
            else:
                if change.key not in self._rows:
                    bisect.insort(self._sorted, change.key)
                self._rows[change.key] = change.entry
            self._log.append(change)
            self._log_revisions.append(revision)
        self._revision = revision

    def revision(self) -> int:
        return self._revision

    def compacted(self) -> int:
        return self._compacted

    def compact(self, revision: int) -> None:
        cut = bisect.bisect_left(self._log_revisions, revision)
        del self._log[:cut]
        del self._log_revisions[:cut]
        self._compacted = revision

    def leases(self) -> dict[int, int]:
        return dict(self._leases)

    def leased_keys(self) -> dict[int, set[str]]:
        keys: dict[int, set[str]] = {}
        for entry in self._rows.values():
            if entry.lease:
                keys.setdefault(entry.lease, set()).add(entry.key)
        return keys

    def add_lease(self, lease_id: int, ttl_s: int) -> None:
        self._leases[lease_id] = ttl_s

    def remove_lease(self, lease_id: int) -> None:
        self._leases.pop(lease_id, None)

    def close(self) -> None:
        self._rows.clear()
        self._sorted.clear()
