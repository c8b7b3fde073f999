"""Conformance: watches deliver every change once, in order, with the value before it."""

from __future__ import annotations

import asyncio

import pytest

from blox.store import Change, Compare, Delete, Put, Store, errors
from tests.store.conftest import Backend

WAIT_S = 10.0


async def collect(store: Store, prefix: str, start: int, count: int) -> list[Change]:
    """The first `count` changes under `prefix` from `start`, or fail after WAIT_S."""
    changes: list[Change] = []

    async def read() -> None:
        async for change in store.watch(prefix, start_revision=start):
            changes.append(change)
            if len(changes) == count:
                return

    await asyncio.wait_for(read(), WAIT_S)
    return changes


async def test_a_watch_from_an_old_revision_replays_every_change_in_order(
    backend: Backend,
) -> None:
    store, ns = backend.store, backend.ns
    first = await store.put(ns + "k0", b"0")
    for i in range(1, 300):
        await store.put(ns + f"k{i % 7}", str(i).encode())
    changes = await collect(store, ns, first, 300)
    assert [c.revision for c in changes] == list(range(first, first + 300))
    assert [c.entry.value for c in changes if c.entry] == [str(i).encode() for i in range(300)]
    last_k3 = [c for c in changes if c.key == ns + "k3"][-1]
    assert last_k3.prev is not None
    assert last_k3.prev.value == str(int(last_k3.entry.value) - 7).encode()  # type: ignore[union-attr]


async def test_a_watch_sees_deletes_with_the_value_before_and_live_changes(
    backend: Backend,
) -> None:
    store, ns = backend.store, backend.ns
    start = await store.put(ns + "a", b"1")
    reader = asyncio.create_task(collect(store, ns, start, 4))
    await store.delete(ns + "a")
    await store.put(backend.ns[:-1] + "-elsewhere", b"not watched")
    await store.txn(compares=[], ops=[Put(ns + "b", b"2"), Put(ns + "c", b"3")])
    changes = await reader
    assert [(c.kind, c.key) for c in changes] == [
        ("put", ns + "a"),
        ("delete", ns + "a"),
        ("put", ns + "b"),
        ("put", ns + "c"),
    ]
    assert changes[1].entry is None
    assert changes[1].prev is not None and changes[1].prev.value == b"1"
    assert changes[2].revision == changes[3].revision == changes[1].revision + 2


async def test_resuming_from_the_next_revision_neither_loses_nor_repeats(
    backend: Backend,
) -> None:
    store, ns = backend.store, backend.ns
    start = await store.put(ns + "x", b"0")
    for i in range(1, 20):
        await store.put(ns + "x", str(i).encode())
    head = await collect(store, ns, start, 8)
    for i in range(20, 30):
        await store.put(ns + "x", str(i).encode())
    tail = await collect(store, ns, head[-1].revision + 1, 22)
    values = [c.entry.value for c in head + tail if c.entry]
    assert values == [str(i).encode() for i in range(30)]


async def test_a_watch_from_zero_starts_after_the_current_revision(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    await store.put(ns + "old", b"old")
    first = asyncio.ensure_future(anext(aiter(store.watch(ns))))
    writes = 0
    while not first.done() and writes < 1000:  # write until the watch is established
        await store.put(ns + "new", str(writes).encode())
        writes += 1
        await asyncio.wait([first], timeout=0.01)
    change = await asyncio.wait_for(first, WAIT_S)
    assert change.key == ns + "new"


async def test_a_watch_below_the_compaction_point_raises_compacted(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    first = await store.put(ns + "k", b"1")
    await store.put(ns + "k", b"2")
    point = await store.put(ns + "k", b"3")
    await store.compact(point)
    assert await store.compacted_revision() >= point
    with pytest.raises(errors.Compacted):
        await collect(store, ns, first, 1)
    kept = await collect(store, ns, point, 1)
    assert kept[0].entry is not None and kept[0].entry.value == b"3"
    await store.compact(point)  # compacting the same point again is harmless


async def test_compacting_beyond_the_current_revision_is_refused(backend: Backend) -> None:
    with pytest.raises(errors.InvalidOperation):
        await backend.store.compact(await backend.store.revision() + 10)


async def test_a_compare_failure_produces_no_change_on_the_watch(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    start = await store.put(ns + "a", b"1")
    with pytest.raises(errors.CompareFailed):
        await store.txn(compares=[Compare(ns + "a", 0)], ops=[Delete(ns + "a")])
    await store.put(ns + "b", b"2")
    changes = await collect(store, ns, start, 2)
    assert [(c.kind, c.key) for c in changes] == [("put", ns + "a"), ("put", ns + "b")]


async def test_a_live_watch_sees_every_change_of_a_transaction(backend: Backend) -> None:
    """One revision, several keys: each change is delivered (a live watcher once kept only the
    first change of a revision)."""
    store, ns = backend.store, backend.ns
    seen: list[Change] = []
    live = asyncio.Event()

    async def read() -> None:
        async for change in store.watch(ns):
            seen.append(change)
            live.set()
            if change.key == ns + "after":
                return

    reader = asyncio.create_task(read())
    while not live.is_set():  # until the watch is live: each probe put is one change
        await store.put(ns + "probe", b"")
        await asyncio.wait([reader], timeout=0.05)
        if seen:
            break
    seen.clear()
    live.clear()
    first = await store.put(ns + "before", b"")
    revision = await store.txn(
        compares=[], ops=[Put(ns + f"batch{i:02d}", str(i).encode()) for i in range(50)]
    )
    await store.txn(compares=[], ops=[Delete(ns + "batch00"), Put(ns + "after", b"")])
    await asyncio.wait_for(reader, WAIT_S)
    mine = [c for c in seen if c.revision >= first]
    assert [c.key for c in mine[1:51]] == [ns + f"batch{i:02d}" for i in range(50)]
    assert {c.revision for c in mine[1:51]} == {revision}
    assert [(c.kind, c.key) for c in mine[51:53]] == [
        ("delete", ns + "batch00"),
        ("put", ns + "after"),
    ]
