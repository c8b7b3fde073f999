"""Plan a batch of ECS events as few store transactions. Pure: no I/O, no clock.

`Processor.process_many` (the shell) parses a poller's batch, reads every record it names with
one `get_many`, asks `plan` what each event does, and writes each of `chunks` in one txn; the
per-event path writes one record with `record_ops` too, so both leave the same keys behind.

Assumptions / Invariants:
- The events of one entity are decided in version order (ties in delivery order), each against
  the record the previous one left: the batch ends each entity where delivering its events one
  by one in version order would, at the highest version, and each event gets the outcome it
  would have had in that run (so the processor's counters add up as they do one by one).
- At most one `Write` per entity, comparing the mod_revision read; it settles every event of
  the entity at once, so a lost compare sends all of them back to the per-event path.
- A chunk names each key once and holds at most `max_ops` operations (etcd refuses a key twice
  in one txn, and by default more than 128 operations); a cluster's registry entry is put once
  per chunk however many of its new records the chunk writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from blox.css import apply, index
from blox.model import ecs, events
from blox.store import keys
from blox.store.base import Compare, Delete, Entry, Op, Put

__all__ = ["Chunk", "Plan", "Settled", "Stored", "Write", "chunks", "plan", "record_ops"]

Stored = tuple[Entry | None, ecs.Record | None]  # a record key's entry as read, and its record
Settled = tuple[tuple[int, apply.SkipReason | None], ...]  # (slot, skip reason or None: applied)


@dataclass(frozen=True, slots=True)
class Write:
    """Replace the record at `key` (read as `entry`, decoded as `old`) by `new`.

    `settles` gives each event of the entity its slot and outcome once the write commits.
    """

    key: str
    entry: Entry | None
    old: ecs.Record | None
    new: ecs.Record
    settles: Settled


@dataclass(frozen=True, slots=True)
class Plan:
    """What a batch does: the writes to make, and the events settled without one."""

    writes: list[Write]
    settled: Settled  # events of entities whose every event is skipped


@dataclass(frozen=True, slots=True)
class Chunk:
    """One store transaction: a compare per record written, and all their operations."""

    compares: list[Compare]
    ops: list[Op]
    writes: list[Write]


def plan(
    *, parsed: Sequence[tuple[int, events.Event]], stored: Mapping[str, Stored], now: datetime
) -> Plan:
    """Decide every event of a batch against the records read for it.

    parsed:  (slot, event) of each parsed event, slot being its position in the batch.
    stored:  the entry read at each record key the events name, and its decoded record
             (None when absent or unreadable), keyed by `keys.record`.
    now:     when the decisions are made; becomes each new record's `observed_at`.
    """
    by_key: dict[str, list[tuple[int, events.Event]]] = defaultdict(list)
    for slot, event in parsed:
        by_key[keys.record(event.kind, event.cluster_arn, event.arn)].append((slot, event))
    writes: list[Write] = []
    settled: list[tuple[int, apply.SkipReason | None]] = []
    for key, entity in by_key.items():
        entry, old = stored[key]
        record = old
        outcomes: list[tuple[int, apply.SkipReason | None]] = []
        for slot, event in sorted(entity, key=lambda pair: (pair[1].version, pair[0])):
            decision = apply.decide(stored=record, event=event, now=now)
            if isinstance(decision, apply.Put):
                record = decision.record
                outcomes.append((slot, None))
            else:
                outcomes.append((slot, decision.reason))
        if record is old or record is None:
            settled += outcomes
        else:
            writes.append(Write(key, entry, old, record, tuple(outcomes)))
    return Plan(writes, tuple(settled))


def record_ops(key: str, old: ecs.Record | None, new: ecs.Record | None) -> list[Op]:
    """The operations that replace `old` at `key` by `new` (None: delete it) with its index
    entries; a new record also registers its cluster (`keys.cluster`)."""
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
    return ops


def chunks(writes: Sequence[Write], *, max_ops: int) -> list[Chunk]:
    """`writes` in transactions of at most `max_ops` operations each, in order.

    A write never spans two chunks; one with more than `max_ops` operations alone is a chunk of
    its own (a record has a dozen at most: no store refuses that).
    """
    out: list[Chunk] = []
    current, named = Chunk([], [], []), set[str]()  # the keys `current` names
    for write in writes:
        ops = record_ops(write.key, write.old, write.new)
        # Only a cluster's registry entry can be named by two writes: it is put once.
        fresh = [op for op in ops if op.key not in named or not op.key.startswith(keys.CLUSTERS)]
        if current.writes and len(current.ops) + len(fresh) > max_ops:
            out.append(current)
            current, named, fresh = Chunk([], [], []), set(), ops
        expect = write.entry.mod_revision if write.entry is not None else 0
        current.compares.append(Compare(write.key, expect))
        current.ops.extend(fresh)
        current.writes.append(write)
        named.update(op.key for op in fresh)
    if current.writes:
        out.append(current)
    return out
