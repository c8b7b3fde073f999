"""Conformance: reads, writes, compares and transactions behave as etcd's on every backend."""

from __future__ import annotations

import asyncio

import pytest

from blox.store import Compare, Delete, Put, errors
from tests.store.conftest import Backend


async def test_get_of_a_missing_key_is_none(backend: Backend) -> None:
    assert await backend.store.get(backend.ns + "absent") is None


async def test_each_write_raises_the_revision_by_one_and_sets_etcd_counters(
    backend: Backend,
) -> None:
    store, key = backend.store, backend.ns + "k"
    before = await store.revision()
    created = await store.put(key, b"1")
    updated = await store.put(key, b"2")
    assert (created, updated) == (before + 1, before + 2)
    entry = await store.get(key)
    assert entry is not None
    assert (entry.value, entry.create_revision, entry.mod_revision, entry.version) == (
        b"2",
        created,
        updated,
        2,
    )
    assert await store.revision() == updated


async def test_a_deleted_key_comes_back_with_fresh_counters(backend: Backend) -> None:
    store, key = backend.store, backend.ns + "k"
    await store.put(key, b"1")
    deleted = await store.delete(key)
    assert deleted == await store.revision()
    recreated = await store.put(key, b"again")
    entry = await store.get(key)
    assert entry is not None
    assert (entry.create_revision, entry.version) == (recreated, 1)


async def test_deleting_a_missing_key_changes_nothing(backend: Backend) -> None:
    before = await backend.store.revision()
    assert await backend.store.delete(backend.ns + "never") is None
    assert await backend.store.revision() == before


async def test_put_expecting_absence_fails_when_the_key_exists(backend: Backend) -> None:
    store, key = backend.store, backend.ns + "k"
    await store.put(key, b"first", expect=0)
    before = await store.revision()
    with pytest.raises(errors.CompareFailed) as failure:
        await store.put(key, b"second", expect=0)
    assert failure.value.keys == [key]
    assert await store.revision() == before
    entry = await store.get(key)
    assert entry is not None and entry.value == b"first"


async def test_put_with_a_stale_mod_revision_fails_and_a_current_one_wins(
    backend: Backend,
) -> None:
    store, key = backend.store, backend.ns + "k"
    first = await store.put(key, b"1")
    second = await store.put(key, b"2", expect=first)
    with pytest.raises(errors.CompareFailed):
        await store.put(key, b"3", expect=first)
    with pytest.raises(errors.CompareFailed):
        await store.delete(key, expect=first)
    assert await store.delete(key, expect=second) == second + 1


async def test_exactly_one_of_many_racing_compare_and_swaps_wins(backend: Backend) -> None:
    store, key = backend.store, backend.ns + "counter"
    seen = await store.put(key, b"0")
    other = await backend.open_another()

    async def attempt(i: int) -> bool:
        client = other if i % 2 else store
        try:
            await client.put(key, str(i).encode(), expect=seen)
        except errors.CompareFailed:
            return False
        return True

    try:
        wins = await asyncio.gather(*(attempt(i) for i in range(24)))
    finally:
        if other is not store:
            await other.close()
    assert wins.count(True) == 1
    entry = await store.get(key)
    assert entry is not None and entry.version == 2
    assert entry.value == str(wins.index(True)).encode()


async def test_a_transaction_applies_all_its_operations_at_one_revision(
    backend: Backend,
) -> None:
    store, ns = backend.store, backend.ns
    a = await store.put(ns + "a", b"1")
    revision = await store.txn(
        compares=[Compare(ns + "a", a), Compare(ns + "b", 0)],
        ops=[Put(ns + "b", b"2"), Put(ns + "c", b"3"), Delete(ns + "a")],
    )
    assert revision == a + 1
    page = await store.list(ns)
    assert [(e.key, e.mod_revision) for e in page.entries] == [
        (ns + "b", revision),
        (ns + "c", revision),
    ]


async def test_a_transaction_with_one_failed_compare_applies_nothing(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    a = await store.put(ns + "a", b"1")
    await store.put(ns + "b", b"2")
    before = await store.revision()
    with pytest.raises(errors.CompareFailed) as failure:
        await store.txn(
            compares=[Compare(ns + "a", a), Compare(ns + "b", 0)],
            ops=[Put(ns + "c", b"3"), Delete(ns + "a")],
        )
    assert failure.value.keys == [ns + "b"]
    assert await store.revision() == before
    assert [e.key for e in (await store.list(ns)).entries] == [ns + "a", ns + "b"]


async def test_a_transaction_may_not_name_a_key_twice(backend: Backend) -> None:
    ns = backend.ns
    with pytest.raises(errors.InvalidOperation):
        await backend.store.txn(compares=[], ops=[Put(ns + "a", b"1"), Delete(ns + "a")])
    assert await backend.store.get(ns + "a") is None


async def test_list_returns_only_the_prefix_in_key_order(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    for key in ["b", "a", "c/1", "ab"]:
        await store.put(ns + key, key.encode())
    await store.put(ns[:-1] + "x", b"outside")  # shares the text before the '/', not the prefix
    page = await store.list(ns)
    assert [e.key for e in page.entries] == [ns + k for k in ["a", "ab", "b", "c/1"]]
    assert page.more is False
    assert page.revision == await store.revision()
    assert (await store.list(ns + "c/")).entries[0].value == b"c/1"


async def test_list_pages_through_every_key_exactly_once(backend: Backend) -> None:
    store, ns = backend.store, backend.ns
    keys = [f"{ns}{i:04d}" for i in range(57)]
    for key in keys:
        await store.put(key, b"v")
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await store.list(ns, limit=10, after=after)
        pages += 1
        seen += [e.key for e in page.entries]
        after = page.next_after
        if after is None:
            break
    assert seen == keys
    assert pages == 6


async def test_values_are_bytes_and_keys_may_hold_arns(backend: Backend) -> None:
    key = backend.ns + "arn:aws-cn:ecs:cn-north-1:123456789012:task/c1/0b69d5c0"
    value = bytes(range(256))
    await backend.store.put(key, value)
    entry = await backend.store.get(key)
    assert entry is not None and entry.value == value
