"""Conformance: `get_many` answers many keys in one read, in order, at one revision."""

from __future__ import annotations

import asyncio

from blox.store import Put
from tests.store.conftest import Backend

# More than one etcd Txn (128 reads) and more than one SQLite IN query (900 keys).
MANY = 1000
WRITE_BATCH = 100


async def put_all(backend: Backend, keys: list[str]) -> None:
    for start in range(0, len(keys), WRITE_BATCH):
        batch = keys[start : start + WRITE_BATCH]
        await backend.store.txn(compares=[], ops=[Put(key, key.encode()) for key in batch])


async def test_get_many_answers_each_key_in_order_with_none_for_the_absent(
    backend: Backend,
) -> None:
    store, ns = backend.store, backend.ns
    await store.put(ns + "a", b"1")
    written = await store.put(ns + "b", b"2")
    await store.put(ns + "b", b"2 again")
    found = await store.get_many([ns + "b", ns + "missing", ns + "a", ns + "b"])
    assert [e.value if e else None for e in found] == [b"2 again", None, b"1", b"2 again"]
    b = found[0]
    assert b is not None
    assert (b.key, b.create_revision, b.version) == (ns + "b", written, 2)
    assert found[0] == await store.get(ns + "b")


async def test_get_many_of_nothing_is_empty(backend: Backend) -> None:
    assert await backend.store.get_many([]) == []


async def test_get_many_reads_more_keys_than_one_backend_request_holds(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    keys = [f"{ns}arn:aws:ecs:us-east-1:111122223333:task/c/{i:032x}" for i in range(MANY)]
    await put_all(backend, keys)
    asked = [*reversed(keys), ns + "absent"]
    found = await store.get_many(asked)
    assert [e.key if e else None for e in found] == [*reversed(keys), None]
    assert all(e.value == e.key.encode() for e in found if e is not None)


async def test_get_many_sees_one_revision_while_a_writer_races_it(backend: Backend) -> None:
    """The writer sets the first key to n, then the last to n: one revision never shows the
    last ahead of the first, nor the first more than one step ahead."""
    store, ns = backend.store, backend.ns
    keys = [f"{ns}{i:04d}" for i in range(300)]  # three etcd Txns
    await put_all(backend, keys)
    first, last = keys[0], keys[-1]
    await store.txn(compares=[], ops=[Put(first, b"0"), Put(last, b"0")])
    writer = await backend.open_another()
    done = asyncio.Event()

    async def write() -> None:
        for n in range(1, 40):
            await writer.put(first, str(n).encode())
            await asyncio.sleep(0)
            await writer.put(last, str(n).encode())
        done.set()

    task = asyncio.create_task(write())
    try:
        reads = 0
        while not done.is_set() or reads == 0:
            found = await store.get_many(keys)
            head, tail = found[0], found[-1]
            assert head is not None and tail is not None
            assert 0 <= int(head.value) - int(tail.value) <= 1
            reads += 1
            await asyncio.sleep(0)
        await task
    finally:
        task.cancel()
        if writer is not store:
            await writer.close()
