"""Decide what one ECS event does to the stored record of its entity. Pure: no I/O, no clock.

Assumptions / Invariants:
- `detail.version` belongs to one entity and rises with each of its state changes; events
  arrive at least once, in any order, with gaps (shared/fixtures/ecs-events/README.md).
- Only a strictly higher version replaces a stored record: an equal version is a DUPLICATE,
  a lower one STALE. Whatever the delivery order and duplication of one entity's events, the
  stored record ends at the highest version delivered.
- A stored record without a valid version never blocks an event (v0.3 let it block forever).
- No resurrection: a tombstone (the reconciler found the entity gone) is replaced only by a
  strictly higher version, which proves the entity still changes in ECS.
- A STOPPED task or an INACTIVE (deregistered) container instance is stored as any other
  state: the API must keep showing it. Only the reconciler makes tombstones (`tombstone`),
  and only their expiry (`is_expired`) lets the shell delete a record.
Callers: `blox.css.processor` (the shell that reads, writes and retries).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from blox.model.ecs import Record
from blox.model.events import Event

__all__ = ["Decision", "Put", "Skip", "SkipReason", "decide", "is_expired", "tombstone"]


class SkipReason(enum.Enum):
    """Why an event changes nothing."""

    DUPLICATE = "duplicate"  # the stored record already has this version
    STALE = "stale"  # the stored record has a higher version
    TOMBSTONED = "tombstoned"  # the entity was found gone at this version or later


@dataclass(frozen=True, slots=True)
class Put:
    """Store `record` in place of what is stored (compare-and-swap on the read revision)."""

    record: Record


@dataclass(frozen=True, slots=True)
class Skip:
    """Leave the stored record as it is."""

    reason: SkipReason


Decision = Put | Skip


def decide(*, stored: Record | None, event: Event, now: datetime) -> Decision:
    """What `event` does to the record of its entity.

    stored: the entity's record as read from the store (None: none stored, or unreadable).
    event: a parsed task or container-instance event of that same entity.
    now: when the decision is made; becomes the new record's `observed_at`.
    """
    if stored is not None and (stored.kind, stored.arn) != (event.kind, event.arn):
        raise ValueError(f"{event.kind} {event.arn} decided against the record of {stored.arn}")
    if stored is not None and stored.version is not None:
        if stored.is_tombstone and event.version <= stored.version:
            return Skip(SkipReason.TOMBSTONED)
        if event.version == stored.version:
            return Skip(SkipReason.DUPLICATE)
        if event.version < stored.version:
            return Skip(SkipReason.STALE)
    return Put(
        Record(
            kind=event.kind,
            cluster_arn=event.cluster_arn,
            arn=event.arn,
            version=event.version,
            detail=event.detail,
            observed_at=now,
        )
    )


def tombstone(record: Record, now: datetime) -> Record:
    """`record` marked gone at `now`, keeping its version so that older events cannot revive it.

    A record that is already a tombstone keeps its first `deleted_at`, so its expiry does not
    move each time the reconciler sees the entity missing again.
    """
    return record if record.is_tombstone else replace(record, deleted_at=now)


def is_expired(record: Record, *, now: datetime, ttl_s: float) -> bool:
    """Whether `record` is a tombstone older than `ttl_s` seconds, which may now be deleted."""
    return record.deleted_at is not None and now - record.deleted_at >= timedelta(seconds=ttl_s)
