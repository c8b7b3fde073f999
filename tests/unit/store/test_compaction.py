"""Automatic compaction keeps the last N revisions, on the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from blox.clock import ManualClock
from blox.store import compaction, open_store


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
