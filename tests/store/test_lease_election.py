"""Conformance: leases keep keys alive, and leader election hands over when a lease ends."""

from __future__ import annotations

import asyncio

import pytest

from blox.store import Election, Entry, Leadership, errors
from tests.store.conftest import Backend

WAIT_S = 15.0


async def wait_gone(backend: Backend, key: str, ttl_s: int) -> None:
    """Let time pass until `key` has expired with its lease, or fail after WAIT_S."""
    for _ in range(int(WAIT_S / 0.5)):
        if await backend.store.get(key) is None:
            return
        await backend.let_time_pass(0.5)
    pytest.fail(f"{key} outlived its lease")


async def wait_for_candidates(backend: Backend, name: str, count: int) -> list[Entry]:
    """The campaign keys of election `name` once there are `count` of them."""
    for _ in range(int(WAIT_S / 0.01)):
        candidates = (await backend.store.list(f"election/{name}/")).entries
        if len(candidates) == count:
            return candidates
        await asyncio.sleep(0.01)
    pytest.fail(f"election {name} never had {count} candidates")


async def test_a_key_bound_to_a_lease_dies_with_the_lease(backend: Backend) -> None:
    store, key = backend.store, backend.ns + "ephemeral"
    lease = await store.grant(2)
    assert lease.ttl_s >= 2
    await store.put(key, b"alive", lease=lease.id)
    entry = await store.get(key)
    assert entry is not None and entry.lease == lease.id
    await wait_gone(backend, key, lease.ttl_s)
    with pytest.raises(errors.LeaseNotFound):
        await store.keep_alive(lease.id)


async def test_keep_alives_hold_a_lease_beyond_its_ttl(backend: Backend) -> None:
    store, key = backend.store, backend.ns + "held"
    lease = await store.grant(2)
    await store.put(key, b"alive", lease=lease.id)
    for _ in range(4):  # 4 times ttl/2 = two whole TTLs
        await backend.let_time_pass(lease.ttl_s / 2)
        assert await store.keep_alive(lease.id) >= 1
    assert await store.get(key) is not None
    await store.revoke(lease.id)
    assert await store.get(key) is None
    await store.revoke(lease.id)  # revoking again is a no-op


async def test_a_put_on_an_unknown_lease_is_refused(backend: Backend) -> None:
    lease = await backend.store.grant(5)
    await backend.store.revoke(lease.id)
    with pytest.raises(errors.LeaseNotFound):
        await backend.store.put(backend.ns + "k", b"v", lease=lease.id)
    assert await backend.store.get(backend.ns + "k") is None


async def test_the_first_candidate_leads_and_the_next_takes_over_on_resign(
    backend: Backend,
) -> None:
    name = backend.ns.strip("/")
    first = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    second = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    leading = await asyncio.wait_for(first.campaign("replica-1"), WAIT_S)
    assert await first.leader() == "replica-1"
    waiting = asyncio.create_task(second.campaign("replica-2"))
    await wait_for_candidates(backend, name, 2)
    assert not waiting.done()
    await first.resign()
    assert leading.lost.is_set()
    taken = await asyncio.wait_for(waiting, WAIT_S)
    assert not taken.lost.is_set()
    assert await second.leader() == "replica-2"
    await second.resign()
    assert await second.leader() is None


async def test_an_expired_lease_releases_leadership_to_the_next_candidate(
    backend: Backend,
) -> None:
    name = backend.ns.strip("/")
    crashed = Election(backend.store, name, ttl_s=2, clock=backend.clock)
    standby = Election(backend.store, name, ttl_s=2, clock=backend.clock)
    old: Leadership = await asyncio.wait_for(crashed.campaign("replica-1"), WAIT_S)
    waiting = asyncio.create_task(standby.campaign("replica-2"))
    await crashed.abandon()  # the process hangs: no more keep-alives, lease not revoked
    for _ in range(int(WAIT_S / 0.5)):
        if waiting.done():
            break
        await backend.let_time_pass(0.5)
    new = await asyncio.wait_for(waiting, WAIT_S)
    assert await standby.leader() == "replica-2"
    assert await backend.store.get(old.key) is None
    assert not new.lost.is_set()
    await standby.resign()


async def test_a_leader_whose_lease_is_revoked_elsewhere_learns_it_lost(
    backend: Backend,
) -> None:
    election = Election(backend.store, backend.ns.strip("/"), ttl_s=5, clock=backend.clock)
    leading = await asyncio.wait_for(election.campaign("replica-1"), WAIT_S)
    await backend.store.revoke(leading.lease)  # e.g. an operator removed it
    await asyncio.wait_for(leading.lost.wait(), WAIT_S)
    await election.abandon()


async def test_observe_reports_each_new_leader(backend: Backend) -> None:
    name = backend.ns.strip("/")
    one = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    two = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    observer = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    seen: list[str | None] = []
    started = asyncio.Event()

    async def observe() -> None:
        async for leader in observer.observe():
            seen.append(leader)
            started.set()
            if len(seen) == 3:
                return

    task = asyncio.create_task(observe())
    await asyncio.wait_for(started.wait(), WAIT_S)
    await one.campaign("one")
    second = asyncio.create_task(two.campaign("two"))
    await wait_for_candidates(backend, name, 2)
    await one.resign()
    await asyncio.wait_for(second, WAIT_S)
    await asyncio.wait_for(task, WAIT_S)
    assert seen == [None, "one", "two"]
    await two.resign()


async def test_a_waiting_candidate_whose_lease_ends_stops_campaigning(backend: Backend) -> None:
    name = backend.ns.strip("/")
    leader = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    waiter = Election(backend.store, name, ttl_s=5, clock=backend.clock)
    await leader.campaign("leader")
    campaign = asyncio.create_task(waiter.campaign("waiter"))
    candidates = await wait_for_candidates(backend, name, 2)
    waiting_lease = max(candidates, key=lambda e: e.create_revision).lease
    await backend.store.revoke(waiting_lease)
    with pytest.raises(errors.LeaseNotFound):
        await asyncio.wait_for(campaign, WAIT_S)
    assert await leader.leader() == "leader"
    await leader.resign()
