"""The shell around `apply.decide`: read the entity's record, decide, write with CAS, retry.

Called by the ingest pollers (`process(body)`, ack only after it returns) and by the reconciler
(`apply_event(event)`, `tombstone`, `expire`). It never sleeps and never acks: `EventInvalid`
(poison) and `StoreError` (do not ack) propagate to the poller, which owns those decisions.

Assumptions / Invariants:
- A record and its secondary index entries (`blox.css.index`) change in ONE store transaction
  that compares the record's mod_revision: the entries the old record had and the new one
  lacks are deleted, the new ones put, so a crash never leaves an index pointing wrong.
- A cluster's registry entry (`keys.cluster`, for queries by cluster name) is put with each
  new record of the cluster, never with an update, and never removed: one key per cluster.
- Records written before indexes existed are indexed once by `reindex`, at service start.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from blox.clock import Clock
from blox.css import apply, index
from blox.css.errors import ApplyContended
from blox.model import ecs, events
from blox.model.errors import EventInvalid, RecordInvalid
from blox.store import Compare, Delete, Entry, Op, Put, Store, errors, keys

__all__ = ["Counters", "Outcome", "Processor", "reindex"]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REINDEX_BATCH = 500
REINDEX_TXN_OPS = 100  # etcd refuses a transaction of more than 128 (its --max-txn-ops)


class Outcome(enum.Enum):
    """What processing one event did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    TOMBSTONED = "tombstoned"


_SKIPPED = {
    apply.SkipReason.DUPLICATE: Outcome.DUPLICATE,
    apply.SkipReason.STALE: Outcome.STALE,
    apply.SkipReason.TOMBSTONED: Outcome.TOMBSTONED,
}


@dataclass
class Counters:
    """Totals since start, for the metrics endpoint; `conflicts` counts lost CAS attempts."""

    received: int = 0
    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    tombstoned: int = 0
    rejected: int = 0
    conflicts: int = 0

    def count(self, outcome: Outcome) -> None:
        """Add one to the counter of `outcome`."""
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)


class Processor:
    """Applies ECS events to the store, one entity record at a time."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        accounts: frozenset[str] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._store = store
        self._clock = clock
        self._accounts = accounts
        self._max_attempts = max_attempts
        self.counters = Counters()

    async def process(self, body: str) -> Outcome:
        """Parse an SQS message body and apply it; EventInvalid means poison (dead-letter it)."""
        self.counters.received += 1
        try:
            event = events.parse(body, accounts=self._accounts)
        except EventInvalid:
            self.counters.rejected += 1
            raise
        return await self.apply_event(event)

    async def apply_event(self, event: events.Event) -> Outcome:
        """Apply a parsed event; raise ApplyContended after `max_attempts` lost CAS writes."""
        key = keys.record(event.kind, event.cluster_arn, event.arn)
        for _ in range(self._max_attempts):
            entry = await self._store.get(key)
            stored = _stored(entry)
            decision = apply.decide(stored=stored, event=event, now=self._clock.now())
            if isinstance(decision, apply.Skip):
                outcome = _SKIPPED[decision.reason]
                break
            if await self._write(key, entry, stored, decision.record):
                outcome = Outcome.APPLIED
                break
        else:
            raise self._contended(f"{event.kind} {event.arn} v{event.version}")
        self.counters.count(outcome)
        return outcome

    async def tombstone(self, kind: ecs.Kind, cluster_arn: str, arn: str) -> bool:
        """Mark the record gone from ECS (`apply.tombstone`) and drop its index entries.

        False when there is no readable record or it already is a tombstone; raises
        ApplyContended after `max_attempts` lost CAS writes.
        """
        key = keys.record(kind, cluster_arn, arn)
        for _ in range(self._max_attempts):
            entry = await self._store.get(key)
            stored = _stored(entry)
            if stored is None or stored.is_tombstone:
                return False
            if await self._write(key, entry, stored, apply.tombstone(stored, self._clock.now())):
                return True
        raise self._contended(f"tombstone of {kind} {arn}")

    async def expire(self, kind: ecs.Kind, cluster_arn: str, arn: str, *, ttl_s: float) -> bool:
        """Delete the record if it is a tombstone older than `ttl_s` (`apply.is_expired`).

        False when there is no readable record or it is not an expired tombstone; raises
        ApplyContended after `max_attempts` lost CAS deletes.
        """
        key = keys.record(kind, cluster_arn, arn)
        for _ in range(self._max_attempts):
            entry = await self._store.get(key)
            stored = _stored(entry)
            if stored is None or not apply.is_expired(stored, now=self._clock.now(), ttl_s=ttl_s):
                return False
            if await self._write(key, entry, stored, None):
                return True
        raise self._contended(f"expiry of {kind} {arn}")

    async def _write(
        self, key: str, entry: Entry | None, old: ecs.Record | None, new: ecs.Record | None
    ) -> bool:
        """Replace `old` (read as `entry`) by `new` (None: delete) with its index entries, in
        one transaction on the record's mod_revision; False when a racing writer won."""
        before = index.entries(old) if old is not None else frozenset()
        after = index.entries(new) if new is not None else frozenset()
        ops: list[Op] = [Delete(k) for k in sorted(before - after)]
        ops += [Put(k, b"") for k in sorted(after - before)]
        if new is None:
            ops.append(Delete(key))
        else:
            ops.append(Put(key, ecs.encode(new)))
            if old is None:  # a new record, perhaps its cluster's first: register the cluster
                ops.append(Put(keys.cluster(new.cluster_arn), b""))
        expect = entry.mod_revision if entry is not None else 0
        try:
            await self._store.txn(compares=[Compare(key, expect)], ops=ops)
        except errors.CompareFailed:
            self.counters.conflicts += 1
            return False
        return True

    def _contended(self, what: str) -> ApplyContended:
        return ApplyContended(
            f"{what}: {self._max_attempts} compare-and-swap attempts lost to racing writers"
        )


def _stored(entry: Entry | None) -> ecs.Record | None:
    """The record in `entry`; an unreadable one counts as absent so that it never blocks."""
    if entry is None:
        return None
    try:
        return ecs.decode(entry.value)
    except RecordInvalid as exc:
        logger.warning("taking the unreadable record at %s for absent: %s", entry.key, exc)
        return None


async def reindex(store: Store, *, force: bool = False) -> int:
    """Give every record the index and registry entries it must have, drop index entries that
    no record backs, then mark the store indexed at `index.VERSION`. Idempotent, and safe
    beside running processors (every write compares the record's mod_revision).

    A store already marked at this version is left alone unless `force`: call it at every
    start. Returns how many entries it wrote or removed.
    """
    marker = await store.get(keys.INDEXED)
    if not force and marker is not None and marker.value == str(index.VERSION).encode():
        return 0
    changed = 0
    for prefix in (keys.TASKS, keys.INSTANCES):
        after: str | None = None
        while True:
            page = await store.list(prefix, limit=REINDEX_BATCH, after=after)
            changed += await _add_missing(store, page.entries, attempts=MAX_ATTEMPTS)
            if (after := page.next_after) is None:
                break
    changed += await _drop_dangling(store)
    await store.put(keys.INDEXED, str(index.VERSION).encode())
    logger.info("indexed the store at version %d: %d entries changed", index.VERSION, changed)
    return changed


async def _add_missing(store: Store, records: list[Entry], *, attempts: int) -> int:
    """Put the index and registry entries `records` lack, REINDEX_TXN_OPS at a time, each
    transaction comparing the mod_revision of every record it indexes."""
    wanted: dict[str, frozenset[str]] = {}
    for entry in records:
        if (record := _stored(entry)) is not None:
            wanted[entry.key] = index.entries(record) | {keys.cluster(record.cluster_arn)}
    needed = sorted(frozenset().union(*wanted.values()))
    present = {k for k, found in zip(needed, await store.get_many(needed), strict=True) if found}
    batches: list[list[tuple[Entry, list[str]]]] = [[]]
    for entry in records:
        if missing := sorted(wanted.get(entry.key, frozenset()) - present):
            present.update(missing)  # a registry entry shared by records is put once
            if sum(len(m) for _, m in batches[-1]) + len(missing) > REINDEX_TXN_OPS:
                batches.append([])
            batches[-1].append((entry, missing))
    written = 0
    for batch in filter(None, batches):
        compares = [Compare(entry.key, entry.mod_revision) for entry, _ in batch]
        try:
            await store.txn(compares=compares, ops=[Put(k, b"") for _, m in batch for k in m])
        except errors.CompareFailed:  # a processor rewrote one: index them as they are now
            if attempts <= 1:
                raise ApplyContended("reindexing lost every compare to racing writers") from None
            fresh = await store.get_many([entry.key for entry, _ in batch])
            written += await _add_missing(
                store, [e for e in fresh if e is not None], attempts=attempts - 1
            )
            continue
        written += sum(len(m) for _, m in batch)
    return written


async def _drop_dangling(store: Store) -> int:
    """Delete index entries whose record is gone or no longer has them.

    A delete that loses its compare to a racing write is left for the next forced reindex:
    queries re-check every record, so a stale entry costs a read, never a wrong answer.
    """
    removed = 0
    after: str | None = None
    while True:
        page = await store.list(keys.INDEX, limit=REINDEX_BATCH, after=after)
        targets = [index.target(entry.key) for entry in page.entries]
        found = await store.get_many([t for t in targets if t is not None])
        records = iter(found)
        for entry, target in zip(page.entries, targets, strict=True):
            record_entry = next(records) if target is not None else None
            record = _stored(record_entry)
            if target is not None and record is not None and entry.key in index.entries(record):
                continue
            compares = [] if target is None else [Compare(target, _mod(record_entry))]
            try:
                await store.txn(compares=compares, ops=[Delete(entry.key)])
            except errors.CompareFailed:
                continue
            removed += 1
        if (after := page.next_after) is None:
            return removed


def _mod(entry: Entry | None) -> int:
    return entry.mod_revision if entry is not None else 0
