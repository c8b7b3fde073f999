"""The processor over real stores: every fixture, redelivery, reordering, racing writers."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from blox import errors as blox_errors
from blox.clock import ManualClock
from blox.css import errors as css_errors
from blox.css.processor import Outcome, Processor
from blox.model import ecs, events
from blox.store import Compare, Entry, Op, Store, errors, keys, open_store

# CI clones the repo next to a `shared` folder: <repo>/../shared/fixtures/ecs-events
FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecs-events"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
ACCOUNT, OTHER_ACCOUNT = "111122223333", "444455556666"


def body(name: str, *, version: int | None = None, account: str = ACCOUNT) -> str:
    """Fixture `name`, optionally at another version or rewritten into another account."""
    text = (FIXTURES / f"{name}.json").read_text().replace(ACCOUNT, account)
    if version is None:
        return text
    raw = json.loads(text)
    raw["detail"]["version"] = version
    return json.dumps(raw)


def key_of(name: str, *, account: str = ACCOUNT) -> str:
    event = events.parse(body(name, account=account))
    return keys.record(event.kind, event.cluster_arn, event.arn)


async def record_at(store: Store, key: str) -> ecs.Record:
    entry = await store.get(key)
    assert entry is not None
    return ecs.decode(entry.value)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each local store backend in turn, freshly opened."""
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'store.db'}"
    opened = await open_store(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


class ReadersFirst:
    """A store whose reads wait until `readers` reads are in flight, so that writers race."""

    def __init__(self, inner: Store, readers: int) -> None:
        self._inner = inner
        self._waiting = readers
        self._all_read = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> Entry | None:
        entry = await self._inner.get(key)
        self._waiting -= 1
        if self._waiting <= 0:
            self._all_read.set()
        await self._all_read.wait()
        return entry


class AlwaysLosing:
    """A store on which every compare-and-swap loses, as under endless contention."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def txn(self, *, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        raise errors.CompareFailed([c.key for c in compares])


class Unreachable:
    """A store whose server does not answer."""

    async def get(self, key: str) -> Entry | None:
        raise errors.StoreUnavailable("no answer in 10 s")


@pytest.mark.parametrize("name", NAMES)
async def test_every_fixture_is_applied_and_stored_whole(
    store: Store, clock: ManualClock, name: str
) -> None:
    processor = Processor(store, clock=clock)
    assert await processor.process(body(name)) is Outcome.APPLIED
    record = await record_at(store, key_of(name))
    raw = json.loads(body(name))
    assert (record.version, record.detail) == (raw["detail"]["version"], raw["detail"])
    assert (record.observed_at, record.deleted_at) == (clock.now(), None)


async def test_the_story_in_order_leaves_each_entity_at_its_last_version(
    store: Store, clock: ManualClock
) -> None:
    processor = Processor(store, clock=clock)
    for name in ["instance-active", "task-pending", "task-running", "instance-draining"]:
        assert await processor.process(body(name)) is Outcome.APPLIED
    for name in ["task-stopped", "instance-deregistered"]:
        assert await processor.process(body(name)) is Outcome.APPLIED
    assert (await record_at(store, key_of("task-stopped"))).detail["lastStatus"] == "STOPPED"
    instance = await record_at(store, key_of("instance-deregistered"))
    assert (instance.version, instance.detail["status"]) == (516, "INACTIVE")


@pytest.mark.parametrize("seed", range(5))
async def test_duplicates_and_shuffled_orders_converge_to_the_highest_versions(
    store: Store, clock: ManualClock, seed: int
) -> None:
    deliveries = [body(name) for name in NAMES] * 3
    random.Random(seed).shuffle(deliveries)
    processor = Processor(store, clock=clock)
    outcomes = [await processor.process(text) for text in deliveries]
    highest: dict[str, int] = {}
    for name in NAMES:
        version = json.loads(body(name))["detail"]["version"]
        highest[key_of(name)] = max(version, highest.get(key_of(name), version))
    for key, version in highest.items():
        assert (await record_at(store, key)).version == version
    assert outcomes.count(Outcome.APPLIED) >= len(highest)
    assert outcomes.count(Outcome.DUPLICATE) >= 2 * len(highest)  # re-deliveries of the last
    counters = processor.counters
    assert counters.received == len(deliveries)
    assert counters.applied + counters.duplicate + counters.stale == len(deliveries)


async def test_twenty_racing_processors_end_with_the_highest_version(
    store: Store, clock: ManualClock
) -> None:
    racing = cast(Store, ReadersFirst(store, readers=20))
    processors = [Processor(racing, clock=clock, max_attempts=20) for _ in range(20)]
    versions = list(range(1, 21))
    random.Random(7).shuffle(versions)
    outcomes = await asyncio.gather(
        *(
            p.process(body("task-running", version=v))
            for p, v in zip(processors, versions, strict=True)
        )
    )
    assert (await record_at(store, key_of("task-running"))).version == 20
    assert set(outcomes) <= {Outcome.APPLIED, Outcome.STALE}
    assert sum(p.counters.conflicts for p in processors) >= 19  # all read "absent"; one won


async def test_endless_contention_raises_a_temporary_error_after_max_attempts(
    store: Store, clock: ManualClock
) -> None:
    processor = Processor(cast(Store, AlwaysLosing(store)), clock=clock, max_attempts=3)
    with pytest.raises(css_errors.ApplyContended) as caught:
        await processor.process(body("task-running"))
    assert isinstance(caught.value, blox_errors.Temporary)
    assert processor.counters.conflicts == 3
    assert await store.get(key_of("task-running")) is None


async def test_a_store_failure_propagates_so_the_poller_does_not_ack(clock: ManualClock) -> None:
    processor = Processor(cast(Store, Unreachable()), clock=clock)
    with pytest.raises(errors.StoreUnavailable):
        await processor.process(body("task-running"))


@pytest.mark.parametrize(
    "text",
    ["", "{not json", '{"source": "aws.ecs"}', body("task-running", account="12")],
    ids=["empty", "not JSON", "no detail-type", "malformed account"],
)
async def test_a_poison_body_raises_event_invalid_and_writes_nothing(
    store: Store, clock: ManualClock, text: str
) -> None:
    processor = Processor(store, clock=clock)
    before = await store.revision()
    with pytest.raises(events.EventInvalid):
        await processor.process(text)
    assert await store.revision() == before
    assert (processor.counters.received, processor.counters.rejected) == (1, 1)


async def test_an_account_outside_the_allow_list_is_rejected(
    store: Store, clock: ManualClock
) -> None:
    processor = Processor(store, clock=clock, accounts=frozenset({OTHER_ACCOUNT}))
    with pytest.raises(events.EventInvalid, match="allowed accounts"):
        await processor.process(body("task-running"))
    assert await processor.process(body("task-running", account=OTHER_ACCOUNT)) is Outcome.APPLIED


async def test_same_named_clusters_in_two_accounts_do_not_collide(
    store: Store, clock: ManualClock
) -> None:
    processor = Processor(store, clock=clock)
    assert await processor.process(body("task-running")) is Outcome.APPLIED
    assert await processor.process(body("task-pending", account=OTHER_ACCOUNT)) is Outcome.APPLIED
    ours, theirs = key_of("task-running"), key_of("task-running", account=OTHER_ACCOUNT)
    assert ours != theirs
    assert (await record_at(store, ours)).version == 2
    assert (await record_at(store, theirs)).version == 1
    assert OTHER_ACCOUNT in (await record_at(store, theirs)).cluster_arn


async def test_an_unreadable_stored_value_does_not_block_a_new_event(
    store: Store, clock: ManualClock
) -> None:
    await store.put(key_of("task-running"), b"v0.3 wrote this")
    processor = Processor(store, clock=clock)
    assert await processor.process(body("task-running")) is Outcome.APPLIED
    assert (await record_at(store, key_of("task-running"))).version == 2


async def test_a_tombstone_is_not_resurrected_by_an_older_event(
    store: Store, clock: ManualClock
) -> None:
    key = key_of("task-stopped")
    event = events.parse(body("task-stopped"))
    gone = ecs.Record("task", event.cluster_arn, event.arn, 4, event.detail, deleted_at=clock.now())
    await store.put(key, ecs.encode(gone))
    processor = Processor(store, clock=clock)
    assert await processor.apply_event(events.parse(body("task-running"))) is Outcome.TOMBSTONED
    assert (await record_at(store, key)).is_tombstone
    assert processor.counters.tombstoned == 1


def test_max_attempts_must_allow_one_write(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Processor(cast(Store, Unreachable()), clock=clock, max_attempts=0)
