"""Reading a list's ranges from the store: one range of records or index entries, page after
page, and the registered clusters one after another. Callers: `blox.css.queries`.

Assumptions / Invariants:
- A record read is kept only if `matches` says so: an index entry is a hint, never an answer.
- An unreadable record is logged and left out; it never fails a list.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from blox.css import index
from blox.model import ecs
from blox.model.errors import RecordInvalid
from blox.store import Entry, Store, keys

__all__ = ["SCAN_BATCH", "Found", "clusters", "read_range"]

logger = logging.getLogger(__name__)

SCAN_BATCH = 500
Matches = Callable[[ecs.Record], bool]


@dataclass(frozen=True, slots=True)
class Found:
    """A live record and the store revision it last changed at (`metadata.entityVersion`)."""

    record: ecs.Record
    mod_revision: int


async def read_range(
    store: Store,
    matches: Matches,
    prefix: str,
    *,
    indexed: bool,
    after: str | None,
    limit: int | None,
    found: list[Found],
) -> str | None:
    """Append the records under `prefix` (index entries when `indexed`) after key `after` that
    `matches` keeps to `found` until it holds
    `limit` (None: all); the key to resume after when it filled up with keys left, else None."""
    batch = SCAN_BATCH if limit is None else limit - len(found)
    while True:
        page = await store.list(prefix, limit=batch, after=after)
        records = await _indexed(store, page.entries) if indexed else page.entries
        for position, (entry, record_entry) in enumerate(zip(page.entries, records, strict=True)):
            if (item := _found(record_entry, matches)) is None:
                continue
            found.append(item)
            if len(found) == limit:
                is_last = position == len(page.entries) - 1 and not page.more
                return None if is_last else entry.key
        if not page.more or not page.entries:
            return None
        after = page.entries[-1].key
        batch = min(SCAN_BATCH, 2 * batch)  # the filters reject some: widen, within bounds


async def _indexed(store: Store, entries: list[Entry]) -> list[Entry | None]:
    """The record each index entry names (None: gone, or a malformed entry), in one read."""
    targets = [index.target(entry.key) for entry in entries]
    fetched = iter(await store.get_many([t for t in targets if t is not None]))
    return [None if target is None else next(fetched) for target in targets]


async def clusters(
    store: Store, name: str | None, *, first: str | None
) -> AsyncGenerator[str, None]:
    """Each registered cluster (called `name`, or all) in registry order: by name, then ARN;
    from cluster `first` on when given (a page's token names where it stopped)."""
    after_entry = None
    if first is not None:
        yield first
        after_entry = keys.cluster(first)
    prefix = keys.CLUSTERS if name is None else keys.clusters_named(name)
    while True:
        page = await store.list(prefix, limit=SCAN_BATCH, after=after_entry)
        for entry in page.entries:
            yield keys.registered_cluster(entry.key)
        if (after_entry := page.next_after) is None:
            return


def _found(entry: Entry | None, matches: Matches) -> Found | None:
    """The record in `entry` when `matches` keeps it; an unreadable one is logged, left out."""
    if entry is None:
        return None
    try:
        record = ecs.decode(entry.value)
    except RecordInvalid as exc:
        logger.warning("leaving the unreadable record at %s out of a list: %s", entry.key, exc)
        return None
    return Found(record, entry.mod_revision) if matches(record) else None
