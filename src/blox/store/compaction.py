"""Automatic compaction for long-running servers, for any `Store`.

Every `interval_s`, keep the last `retain_revisions` revisions of history and compact the
rest, so SQLite's log and etcd's history stay bounded. Watchers further behind than that get
`Compacted` and list again. For etcd, the server's own `--auto-compaction-*` flags do the same;
use one or the other. `lead` compacts on one elected server of all that share a store (the
CSS and the scheduler both call it; on a shared etcd one of them compacts).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from blox.clock import Clock
from blox.store import errors
from blox.store.base import Store
from blox.store.election import Election, while_leading

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0
DEFAULT_RETAIN_REVISIONS = 100_000
ELECTION = "compaction"


def compaction_point(*, revision: int, compacted: int, retain_revisions: int) -> int | None:
    """The revision to compact at, or None when less than `retain_revisions` would be dropped."""
    target = revision - retain_revisions
    return target if target > compacted else None


async def compact_forever(
    store: Store,
    *,
    clock: Clock,
    interval_s: float = DEFAULT_INTERVAL_S,
    retain_revisions: int = DEFAULT_RETAIN_REVISIONS,
) -> None:
    """Compact `store` every `interval_s`, keeping `retain_revisions`; runs until cancelled."""
    while True:
        await clock.sleep(interval_s)
        try:
            target = compaction_point(
                revision=await store.revision(),
                compacted=await store.compacted_revision(),
                retain_revisions=retain_revisions,
            )
            if target is not None:
                await store.compact(target)
                logger.info("compacted %s at revision %d", store.url, target)
        except errors.StoreError as exc:
            logger.warning("compaction of %s failed, will retry: %s", store.url, exc)


async def lead(
    store: Store,
    *,
    identity: str,
    clock: Clock,
    ttl_s: int = 10,
    interval_s: float = DEFAULT_INTERVAL_S,
    retain_revisions: int = DEFAULT_RETAIN_REVISIONS,
) -> None:
    """Campaign for the store's compaction and compact while leading; runs until cancelled."""

    def compact() -> Coroutine[Any, Any, None]:
        return compact_forever(
            store, clock=clock, interval_s=interval_s, retain_revisions=retain_revisions
        )

    election = Election(store, ELECTION, ttl_s=ttl_s, clock=clock)
    await while_leading(election, identity, compact, clock=clock)
