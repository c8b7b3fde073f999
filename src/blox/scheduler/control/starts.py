"""Starts in flight (client-go's "expectations"), kept in the store so a new leader sees them.

A StartTask the controller is about to issue is written first (`issue`), one key per container
instance, in one transaction for the batch; `pending` reads them back as the planner's
`Pending.starts` and forgets those the CSS now shows (a live task of the environment on that
instance) or that are older than `ttl_s` (ECS refused, or its event was lost: the next pass
decides again). Written before the call, so a crash between the call and the CSS seeing the
task never makes the next leader start a second one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from blox.scheduler.plan.snapshot import Owned, PendingStart
from blox.store import Delete, Put, Store, keys

__all__ = ["START_TTL_S", "StartsInFlight"]

START_TTL_S = 120.0
TXN_OPS = 100  # etcd refuses more than 128 operations in one transaction


class StartsInFlight:
    """Issued, not yet observed StartTask calls of every environment."""

    def __init__(self, store: Store, *, ttl_s: float = START_TTL_S) -> None:
        self._store = store
        self._ttl = timedelta(seconds=ttl_s)

    async def issue(
        self, environment: str, revision: int, instances: Iterable[str], now: datetime
    ) -> None:
        """Remember starts about to be issued on `instances` (before the StartTask call)."""
        value = json.dumps({"revision": revision, "issuedAt": now.isoformat()}).encode()
        ops = [Put(keys.scheduler_start(environment, i), value) for i in instances]
        for first in range(0, len(ops), TXN_OPS):
            await self._store.txn(compares=[], ops=ops[first : first + TXN_OPS])

    async def forget(self, environment: str, instances: Iterable[str]) -> None:
        """Forget starts that will not happen (ECS refused them)."""
        ops = [Delete(keys.scheduler_start(environment, i)) for i in instances]
        for first in range(0, len(ops), TXN_OPS):
            await self._store.txn(compares=[], ops=ops[first : first + TXN_OPS])

    async def pending(
        self, environment: str, owned: Mapping[str, Iterable[Owned]], *, now: datetime
    ) -> dict[str, PendingStart]:
        """The starts still in flight; observed and expired ones are forgotten on the way.

        owned: container instance ARN → the environment's tasks on it that have not STOPPED,
        with their revisions (`snapshot.tasks_by_instance`). A start is observed once a task
        of its revision is on its instance (an old task there, as during a surge, does not
        count).
        """
        prefix = keys.scheduler_starts_of(environment)
        page = await self._store.list(prefix)
        if not page.entries:
            return {}
        found: dict[str, PendingStart] = {}
        done: list[str] = []
        for entry in page.entries:
            instance = entry.key.removeprefix(prefix)
            start = _decode(entry.value)
            seen = start is not None and any(
                revision == start.revision for _, revision in owned.get(instance, ())
            )
            if start is None or seen or now - start.issued_at > self._ttl:
                done.append(instance)
            else:
                found[instance] = start
        if done:
            await self.forget(environment, done)
        return found


def _decode(value: bytes) -> PendingStart | None:
    try:
        raw = json.loads(value)
        issued_at = datetime.fromisoformat(raw["issuedAt"])
        return PendingStart(revision=int(raw["revision"]), issued_at=issued_at)
    except (ValueError, KeyError, TypeError):
        return None
