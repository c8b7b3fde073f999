"""Automatic compaction keeps the last N revisions, on the injected clock."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from blox.clock import ManualClock
from blox.store import Store, compaction, open_store


@pytest.mark.parametrize(
    ("revision", "compacted", "retain", "point"),
    [(100, 1, 30, 70), (100, 70, 30, None), (20, 1, 30, None), (100, 69, 30, 70)],
    ids=["drops the old part", "nothing new to drop", "too young", "one revision to drop"],
)
def test_compaction_point(revision: int, compacted: int, retain: int, point: int | None) -> None:
    assert (
        compaction.compaction_point(revision=revision, compacted=compacted, retain_revisions=retain)
        == point
    )


async def test_compact_forever_compacts_each_interval(clock: ManualClock) -> None:
    store = await open_store("memory://", clock=clock)
    for i in range(50):
        await store.put("k", str(i).encode())
    loop = asyncio.create_task(
        compaction.compact_forever(store, clock=clock, interval_s=60, retain_revisions=10)
    )
    await clock.advance(59)
    assert await store.compacted_revision() == 1
    await clock.advance(1)
    assert await store.compacted_revision() == await store.revision() - 10
    loop.cancel()
    await store.close()


class _Counting:
    """A store that counts the compactions asked of it, and otherwise is the store it wraps."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.compactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def compact(self, revision: int) -> None:
        self.compactions += 1
        await self.store.compact(revision)


async def test_lead_compacts_on_the_elected_server_only(clock: ManualClock) -> None:
    store = await open_store("memory://", clock=clock)
    for i in range(50):
        await store.put("k", str(i).encode())
    servers = {name: _Counting(store) for name in ("css", "scheduler")}
    leaders = [
        asyncio.create_task(
            compaction.lead(
                cast(Store, server),
                identity=name,
                clock=clock,
                interval_s=60,
                retain_revisions=10,
            )
        )
        for name, server in servers.items()
    ]
    for _ in range(130):  # a second at a time: the leases are kept alive as in real life
        await clock.advance(1)
    assert await store.compacted_revision() >= 40
    assert sorted(server.compactions for server in servers.values()) == [0, 1]
    for task in leaders:
        task.cancel()
    await asyncio.gather(*leaders, return_exceptions=True)
    await store.close()
