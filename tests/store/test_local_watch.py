"""The in-process stores' watch buffer: a slow watcher that overflows, even in the middle of a
transaction, replays from history and neither loses nor repeats a change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blox.clock import ManualClock
from blox.store import Change, Put, Store, local, open_store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'watch.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.parametrize("buffer", [3, 7, 11])
async def test_an_overflow_inside_a_transaction_replays_the_rest_of_it(
    store: Store, monkeypatch: pytest.MonkeyPatch, buffer: int
) -> None:
    monkeypatch.setattr(local, "WATCH_BUFFER", buffer)
    start = await store.put("w/start", b"")
    watch = store.watch("w/", start_revision=start)
    first = await anext(watch)  # replayed; the watcher now waits live
    assert first.key == "w/start"
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    expected: list[tuple[int, str]] = []
    for round_ in range(3):  # transactions larger than the buffer, while nobody reads
        ops = [Put(f"w/{round_}-{i:02d}", b"") for i in range(10)]
        revision = await store.txn(compares=[], ops=ops)
        expected += [(revision, op.key) for op in ops]
    got: list[Change] = [await pending]
    while len(got) < len(expected):
        got.append(await asyncio.wait_for(anext(watch), 5))
    assert [(c.revision, c.key) for c in got] == expected
    await watch.aclose()  # type: ignore[attr-defined]
