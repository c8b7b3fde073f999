"""The Kinesis reader's pure decisions: checkpoints, shard order across reshards, when to move on.

The reader itself runs against moto in `tests/integration/test_css_ingest_kinesis.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

from blox.css.ingest.disposition import (
    Checkpoint,
    Outcome,
    Shard,
    moves_on,
    ready_shards,
    shard_drained,
)
from blox.errors import Invalid
from blox.store import keys

AT_5, AT_40, AT_400 = Checkpoint("5"), Checkpoint("40"), Checkpoint("400")
ENDED_AT_5 = Checkpoint("5", ended=True)


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        pytest.param(AT_40, AT_5, AT_40, id="ours is further"),
        pytest.param(AT_5, AT_40, AT_40, id="theirs is further"),
        pytest.param(AT_40, AT_400, AT_400, id="numeric, not text order: 400 > 40"),
        pytest.param(Checkpoint(), AT_5, AT_5, id="nothing yet loses to anything"),
        pytest.param(AT_5, Checkpoint(), AT_5, id="anything beats nothing yet"),
        pytest.param(AT_400, ENDED_AT_5, ENDED_AT_5, id="a drained shard stays drained"),
        pytest.param(ENDED_AT_5, AT_400, ENDED_AT_5, id="drained wins either way round"),
        pytest.param(AT_5, AT_5, AT_5, id="equal"),
    ],
)
def test_a_merged_checkpoint_never_moves_backwards(
    ours: Checkpoint, theirs: Checkpoint, expected: Checkpoint
) -> None:
    assert ours.merged(theirs) == expected


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(),
        AT_5,
        ENDED_AT_5,
        Checkpoint("49590338271490256608559692538361571095921575989136588898"),
    ],
)
def test_a_checkpoint_round_trips_through_its_stored_form(checkpoint: Checkpoint) -> None:
    assert Checkpoint.decode(checkpoint.encode()) == checkpoint


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b"[]", id="a list"),
        pytest.param(b'{"sequence": "5"}', id="no ended"),
        pytest.param(b'{"sequence": 5, "ended": false}', id="sequence as a number"),
        pytest.param(b'{"sequence": "5a", "ended": false}', id="sequence not decimal"),
        pytest.param(b'{"sequence": "5", "ended": "no"}', id="ended not a boolean"),
    ],
)
def test_a_malformed_checkpoint_is_refused_as_invalid(raw: bytes) -> None:
    with pytest.raises(Invalid, match="Kinesis"):
        Checkpoint.decode(raw)


def listed(shard_id: str, *parents: str, ending: str | None = None) -> dict[str, Any]:
    """One entry of ListShards' `Shards`, as boto3 returns it."""
    entry: dict[str, Any] = {
        "ShardId": shard_id,
        "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
        "SequenceNumberRange": {"StartingSequenceNumber": "1"},
    }
    if parents:
        entry["ParentShardId"] = parents[0]
    if len(parents) > 1:
        entry["AdjacentParentShardId"] = parents[1]
    if ending is not None:
        entry["SequenceNumberRange"]["EndingSequenceNumber"] = ending
    return entry


def test_a_shard_is_read_from_its_listing_with_parents_and_end() -> None:
    assert Shard.of(listed("s-0")) == Shard("s-0")
    assert Shard.of(listed("s-2", "s-0", ending="99")) == Shard("s-2", ("s-0",), "99")
    assert Shard.of(listed("s-3", "s-1", "s-2")) == Shard("s-3", ("s-1", "s-2"))


# A stream that had two shards; s-0 split into s-2 and s-3; then s-1 and s-3 merged into s-4.
STREAM = [
    Shard("s-0", (), ending_sequence="10"),
    Shard("s-1", (), ending_sequence="20"),
    Shard("s-2", ("s-0",)),
    Shard("s-3", ("s-0",), ending_sequence="30"),
    Shard("s-4", ("s-1", "s-3")),
]


@pytest.mark.parametrize(
    ("shards", "ended", "running", "expected"),
    [
        pytest.param(STREAM, set(), set(), ["s-0", "s-1"], id="at first, only the roots"),
        pytest.param(STREAM, set(), {"s-0"}, ["s-1"], id="a running shard is not started again"),
        pytest.param(STREAM, {"s-0"}, {"s-1"}, ["s-2", "s-3"], id="a split's children together"),
        pytest.param(
            STREAM, {"s-0", "s-3"}, {"s-1", "s-2"}, [], id="a merge waits for both parents"
        ),
        pytest.param(
            STREAM, {"s-0", "s-1", "s-3"}, {"s-2"}, ["s-4"], id="a merge starts once both drained"
        ),
        pytest.param(STREAM, {s.shard_id for s in STREAM}, set(), [], id="everything drained"),
        pytest.param(
            STREAM[2:], set(), set(), ["s-2", "s-3"], id="parents past retention are not waited for"
        ),
        pytest.param(
            [Shard("s-5", ("s-4",))], set(), set(), ["s-5"], id="an unlisted parent counts as gone"
        ),
    ],
)
def test_a_child_shard_is_read_only_after_its_parents(
    shards: list[Shard], ended: set[str], running: set[str], expected: list[str]
) -> None:
    assert ready_shards(shards, ended=ended, running=running) == expected


@pytest.mark.parametrize(
    ("next_iterator", "ending", "last", "expected"),
    [
        pytest.param("it", None, "7", False, id="open shard"),
        pytest.param("it", None, None, False, id="open shard, nothing read"),
        pytest.param(None, None, "7", True, id="no next iterator: AWS says the shard is done"),
        pytest.param(None, "9", "7", True, id="no next iterator wins over the ending"),
        pytest.param("it", "9", "7", False, id="closed shard with records left"),
        pytest.param("it", "9", "9", True, id="closed shard read to its end (moto's way)"),
        pytest.param("it", "10", "9", False, id="numeric comparison: 9 < 10"),
        pytest.param("it", "0", None, True, id="closed empty shard"),
    ],
)
def test_a_shard_is_drained_when_aws_says_so_or_its_end_was_read(
    next_iterator: str | None, ending: str | None, last: str | None, expected: bool
) -> None:
    drained = shard_drained(next_iterator=next_iterator, ending_sequence=ending, last_sequence=last)
    assert drained is expected


@pytest.mark.parametrize(
    ("outcome", "attempts", "expected"),
    [
        pytest.param(Outcome.APPLIED, 1, True, id="applied moves on"),
        pytest.param(Outcome.POISON, 1, True, id="poison is skipped at once"),
        pytest.param(Outcome.TEMPORARY, 1, False, id="temporary is read again"),
        pytest.param(Outcome.TEMPORARY, 1000, False, id="temporary is never skipped"),
        pytest.param(Outcome.UNEXPECTED, 1, False, id="a bug is retried"),
        pytest.param(Outcome.UNEXPECTED, 2, False, id="a bug is retried below the cap"),
        pytest.param(Outcome.UNEXPECTED, 3, True, id="a bug is skipped at the cap"),
    ],
)
def test_the_reader_moves_past_a_record_only_when_retrying_cannot_help(
    outcome: Outcome, attempts: int, expected: bool
) -> None:
    assert moves_on(outcome, attempts=attempts, max_attempts=3) is expected


def test_checkpoint_keys_are_per_stream_arn_and_shard() -> None:
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/ecs-events"
    other = "arn:aws:kinesis:eu-west-1:123456789012:stream/ecs-events"
    key = keys.kinesis_checkpoint(arn, "shardId-000000000001")
    assert key == f"css/kinesis/{arn}|shardId-000000000001"
    assert key != keys.kinesis_checkpoint(other, "shardId-000000000001")
    assert not key.startswith((keys.TASKS, keys.INSTANCES))
