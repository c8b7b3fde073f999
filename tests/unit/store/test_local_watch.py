"""The in-process watch: a reader that falls behind the buffer replays, losing nothing."""

from __future__ import annotations

import pytest

from blox.store import Put, errors, local, open_store


async def test_a_reader_behind_the_buffer_still_gets_every_change_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local, "WATCH_BUFFER", 5)
    store = await open_store("memory://")
    start = await store.put("k/0", b"0")
    watch = store.watch("k/", start_revision=start)
    first = await anext(watch)  # now live, with a buffer of 5
    for i in range(1, 8):
        await store.put(f"k/{i}", str(i).encode())
    await store.txn(compares=[], ops=[Put(f"k/t{i}", b"t") for i in range(4)])  # overflows mid-txn
    seen = [first]
    while len(seen) < 12:
        seen.append(await anext(watch))
    await watch.aclose()  # type: ignore[attr-defined]
    assert [c.key for c in seen] == [f"k/{i}" for i in range(8)] + [f"k/t{i}" for i in range(4)]
    assert [c.revision for c in seen][:8] == list(range(start, start + 8))
    await store.close()


async def test_a_closed_store_refuses_writes() -> None:
    store = await open_store("memory://")
    await store.close()
    with pytest.raises(errors.StoreUnavailable, match="closed"):
        await store.put("k", b"v")


async def test_a_watch_from_a_future_revision_waits_for_it() -> None:
    store = await open_store("memory://")
    now = await store.revision()
    watch = store.watch("k", start_revision=now + 3)
    for i in range(4):
        await store.put("k", str(i).encode())
    change = await anext(watch)
    await watch.aclose()  # type: ignore[attr-defined]
    assert (change.revision, change.entry and change.entry.value) == (now + 3, b"2")
    await store.close()
