"""The shell around `apply.decide`: read the entity's record, decide, write with CAS, retry.

Called by the ingest pollers (`process_many(bodies)` per received batch, or `process(body)`;
they ack only after it returned) and by the reconciler (`apply_event(event)`, `tombstone`,
`expire`). It never sleeps and never acks: `EventInvalid` (poison) and `StoreError` (do not
ack) reach the poller, raised by `process` or as `process_many`'s result for the message.
`process_many` reads a batch with one `get_many` and writes it in one transaction per
BATCH_TXN_OPS operations (`blox.css.batch`); a transaction that loses a compare to a racing
writer sends its events through the per-event path (`apply_event`), which retries.

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
from collections.abc import Sequence
from dataclasses import dataclass

from blox.clock import Clock
from blox.css import apply, batch, index
from blox.css.errors import ApplyContended
from blox.model import ecs, events
from blox.model.errors import EventInvalid, RecordInvalid
from blox.store import Compare, Delete, Entry, Put, Store, errors, keys

__all__ = ["Counters", "Outcome", "Processor", "reindex"]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REINDEX_BATCH = 500
REINDEX_TXN_OPS = 100  # etcd refuses a transaction of more than 128 (its --max-txn-ops)
BATCH_TXN_OPS = 128  # etcd's default --max-txn-ops: a batch's writes are split to fit


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
    """Totals since start, for the metrics endpoint; `conflicts` counts lost CAS attempts
    (a batch transaction that lost counts one). received = rejected + the outcomes + events
    that raised (store failure, contention)."""

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

    async def process_many(self, bodies: Sequence[str]) -> list[Outcome | Exception]:
        """Parse and apply a batch; per body, in order, what `process` would have returned, or
        the exception it would have raised (EventInvalid: poison; StoreError: do not ack)."""
        self.counters.received += len(bodies)
        results: list[Outcome | Exception | None] = [None] * len(bodies)
        parsed: list[tuple[int, events.Event]] = []
        for slot, body in enumerate(bodies):
            try:
                parsed.append((slot, events.parse(body, accounts=self._accounts)))
            except EventInvalid as exc:
                self.counters.rejected += 1
                results[slot] = exc
        try:
            await self._apply_batch(parsed, results)
        except Exception:  # a bug of the batch path must not cost a message: one by one then
            logger.exception("applying a batch of %d events failed; one by one", len(parsed))
        for slot, event in sorted(parsed, key=lambda pair: (pair[1].version, pair[0])):
            if results[slot] is None:  # the batch lost a compare on it, or failed
                results[slot] = await self._apply_one(event)
        done = [result for result in results if result is not None]
        assert len(done) == len(bodies), "every body has its result"
        return done

    async def _apply_batch(
        self, parsed: list[tuple[int, events.Event]], results: list[Outcome | Exception | None]
    ) -> None:
        """Fill `results` for what one read and a transaction per chunk settle; leave None
        where a chunk lost a compare. A store failure becomes the result of every unsettled
        event, as it would have been raised for each by `process`."""
        record_keys = sorted({keys.record(e.kind, e.cluster_arn, e.arn) for _, e in parsed})
        try:
            found = await self._store.get_many(record_keys) if record_keys else []
            stored = {k: (e, _stored(e)) for k, e in zip(record_keys, found, strict=True)}
            decided = batch.plan(parsed=parsed, stored=stored, now=self._clock.now())
            self._settle(decided.settled, results)
            for chunk in batch.chunks(decided.writes, max_ops=BATCH_TXN_OPS):
                try:
                    await self._store.txn(compares=chunk.compares, ops=chunk.ops)
                except errors.CompareFailed:
                    self.counters.conflicts += 1
                    continue
                for write in chunk.writes:
                    self._settle(write.settles, results)
        except errors.InvalidOperation:
            raise  # the store refused the batch itself: a bug, not a failure of the messages
        except errors.StoreError as exc:
            for slot, _ in parsed:
                if results[slot] is None:
                    results[slot] = exc

    def _settle(self, settles: batch.Settled, results: list[Outcome | Exception | None]) -> None:
        """Count each settled event's outcome and give it as that event's result."""
        for slot, reason in settles:
            outcome = Outcome.APPLIED if reason is None else _SKIPPED[reason]
            self.counters.count(outcome)
            results[slot] = outcome

    async def _apply_one(self, event: events.Event) -> Outcome | Exception:
        """`apply_event`, its exception returned rather than raised (`process_many`'s result)."""
        try:
            return await self.apply_event(event)
        except Exception as exc:
            return exc

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
        expect = entry.mod_revision if entry is not None else 0
        ops = batch.record_ops(key, old, new)
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
    for group in filter(None, batches):
        compares = [Compare(entry.key, entry.mod_revision) for entry, _ in group]
        try:
            await store.txn(compares=compares, ops=[Put(k, b"") for _, m in group for k in m])
        except errors.CompareFailed:  # a processor rewrote one: index them as they are now
            if attempts <= 1:
                raise ApplyContended("reindexing lost every compare to racing writers") from None
            fresh = await store.get_many([entry.key for entry, _ in group])
            written += await _add_missing(
                store, [e for e in fresh if e is not None], attempts=attempts - 1
            )
            continue
        written += sum(len(m) for _, m in group)
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
