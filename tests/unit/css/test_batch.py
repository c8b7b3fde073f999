"""Planning a batch of events: version order per entity, and transactions that etcd accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from blox.css import apply, batch
from blox.model import events
from blox.store import Entry, Put, keys

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PREFIX = "arn:aws:ecs:us-east-1:111122223333"
CLUSTER = f"{PREFIX}:cluster/a"


def task(version: int, n: int = 1, cluster: str = CLUSTER) -> events.TaskEvent:
    name = cluster.rpartition("/")[2]
    arn = f"{PREFIX}:task/{name}/{n:032x}"
    detail = {"taskArn": arn, "lastStatus": "RUNNING", "startedBy": "d1", "version": version}
    return events.TaskEvent("111122223333", "us-east-1", cluster, arn, version, detail)


def nothing_stored(*evs: events.Event) -> dict[str, batch.Stored]:
    return {keys.record(e.kind, e.cluster_arn, e.arn): (None, None) for e in evs}


def test_events_of_one_entity_are_decided_in_version_order_into_one_write() -> None:
    parsed = list(enumerate([task(3), task(1), task(3), task(2)]))
    decided = batch.plan(parsed=parsed, stored=nothing_stored(task(1)), now=NOW)

    assert decided.settled == ()
    [write] = decided.writes
    assert (write.old, write.new.version, write.new.observed_at) == (None, 3, NOW)
    assert dict(write.settles) == {1: None, 3: None, 0: None, 2: apply.SkipReason.DUPLICATE}


def test_an_entity_whose_every_event_is_skipped_is_settled_without_a_write() -> None:
    stored_record = batch.plan(parsed=[(0, task(5))], stored=nothing_stored(task(5)), now=NOW)
    record = stored_record.writes[0].new
    entry = Entry(keys.record("task", CLUSTER, record.arn), b"", 7, 7, 1)
    decided = batch.plan(
        parsed=[(0, task(4)), (1, task(5))], stored={entry.key: (entry, record)}, now=NOW
    )
    assert decided.writes == []
    assert decided.settled == ((0, apply.SkipReason.STALE), (1, apply.SkipReason.DUPLICATE))


@pytest.mark.parametrize("max_ops", [3, 10, 128])
def test_chunks_keep_under_the_limit_name_each_key_once_and_never_split_a_write(
    max_ops: int,
) -> None:
    evs = [task(1, n) for n in range(40)] + [task(1, n, f"{PREFIX}:cluster/b") for n in range(5)]
    decided = batch.plan(parsed=list(enumerate(evs)), stored=nothing_stored(*evs), now=NOW)

    chunks = batch.chunks(decided.writes, max_ops=max_ops)

    assert [w for c in chunks for w in c.writes] == decided.writes
    for chunk in chunks:
        named = [op.key for op in chunk.ops]
        assert len(named) == len(set(named))
        assert len(chunk.ops) <= max_ops or len(chunk.writes) == 1
        assert [c.key for c in chunk.compares] == [w.key for w in chunk.writes]
        assert {c.mod_revision for c in chunk.compares} == {0}
        for write in chunk.writes:  # every op of the write is in its chunk (registry: once)
            wanted = set(batch.record_ops(write.key, write.old, write.new))
            assert wanted <= set(chunk.ops)
    registries = [op for c in chunks for op in c.ops if op.key.startswith(keys.CLUSTERS)]
    assert len(registries) <= 2 * len(chunks)
    assert Put(keys.cluster(CLUSTER), b"") in registries
