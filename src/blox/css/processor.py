"""The shell around `apply.decide`: read the entity's record, decide, write with CAS, retry.

Called by the ingest pollers (`process(body)`, ack only after it returns) and, later, by the
reconciler (`apply_event(event)`). It never sleeps and never acks: `EventInvalid` (poison)
and `StoreError` (do not ack) propagate to the poller, which owns those decisions.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from blox.clock import Clock
from blox.css import apply
from blox.css.errors import ApplyContended
from blox.model import ecs, events
from blox.model.errors import EventInvalid, RecordInvalid
from blox.store import Entry, Store, errors, keys

__all__ = ["Counters", "Outcome", "Processor"]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


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
            decision = apply.decide(stored=_stored(entry), event=event, now=self._clock.now())
            if isinstance(decision, apply.Skip):
                outcome = _SKIPPED[decision.reason]
                break
            expect = entry.mod_revision if entry is not None else 0
            try:
                await self._store.put(key, ecs.encode(decision.record), expect=expect)
            except errors.CompareFailed:
                self.counters.conflicts += 1
                continue
            outcome = Outcome.APPLIED
            break
        else:
            raise ApplyContended(
                f"{event.kind} {event.arn} v{event.version}: {self._max_attempts} "
                "compare-and-swap attempts lost to racing writers"
            )
        self.counters.count(outcome)
        return outcome


def _stored(entry: Entry | None) -> ecs.Record | None:
    """The record in `entry`; an unreadable one counts as absent so that it never blocks."""
    if entry is None:
        return None
    try:
        return ecs.decode(entry.value)
    except RecordInvalid as exc:
        logger.warning("overwriting an unreadable record at %s: %s", entry.key, exc)
        return None
