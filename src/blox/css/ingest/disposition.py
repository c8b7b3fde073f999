"""Pure decisions of the ingest pollers: what happens to a message, how long to back off.

The pollers in `sqs.py` and `kinesis.py` only branch on what these functions return; nothing
here performs I/O or reads a clock. `parse_queue` tells `css/service.py` which poller a
`--queue` value asks for. Tests: `tests/unit/css/ingest/test_disposition.py` and
`test_kinesis.py` (tables).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from blox.errors import Invalid, Permanent, Temporary

__all__ = [
    "Checkpoint",
    "Disposition",
    "Outcome",
    "QueueKind",
    "Shard",
    "backoff_s",
    "classify",
    "dispose",
    "moves_on",
    "parse_queue",
    "ready_shards",
    "shard_drained",
]

QueueKind = Literal["url", "name", "kinesis"]

# Kinesis: stream names are 1-128 of [a-zA-Z0-9_.-]; ARNs in every partition (aws, aws-cn, ...).
_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}", re.ASCII)
_STREAM_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:kinesis:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:stream/"
    r"[A-Za-z0-9_.-]{1,128}",
    re.ASCII,
)


class Outcome(enum.Enum):
    """How `process(body)` ended for one message."""

    APPLIED = "applied"  # returned: the event is durably applied
    POISON = "poison"  # raised Permanent or Invalid: this body will never apply
    TEMPORARY = "temporary"  # raised Temporary: the store (or another dependency) is away
    UNEXPECTED = "unexpected"  # raised anything else: a bug; retried like Temporary


class Disposition(enum.Enum):
    """What the poller does with the message after processing."""

    DELETE = "delete"  # ack: remove it from the source queue
    DEAD_LETTER = "dead-letter"  # send the body to the dead-letter queue, then delete it
    LEAVE = "leave"  # do nothing: SQS redelivers it after the visibility timeout


def classify(error: BaseException | None) -> Outcome:
    """The outcome of a processing attempt that raised `error` (None: it returned).

    Temporary wins over Permanent / Invalid: retry is a property of the error (STYLE B6),
    and an error that says "try again" must not lose its message.
    """
    if error is None:
        return Outcome.APPLIED
    if isinstance(error, Temporary):
        return Outcome.TEMPORARY
    if isinstance(error, Permanent | Invalid):
        return Outcome.POISON
    return Outcome.UNEXPECTED


def dispose(
    *,
    outcome: Outcome,
    receive_count: int,
    max_receives: int,
    has_dead_letter: bool,
) -> Disposition:
    """Delete, dead-letter or leave one message.

    outcome:          how processing ended (`classify`)
    receive_count:    SQS ApproximateReceiveCount of this delivery (1 on the first)
    max_receives:     deliveries after which a poison message is dropped when no DLQ is set
    has_dead_letter:  whether a dead-letter queue is configured

    Invariant: a message is deleted only if it was applied, dead-lettered first, or is poison
    that has been seen `max_receives` times; failures that may pass are always left.
    """
    if outcome is Outcome.APPLIED:
        return Disposition.DELETE
    if outcome is Outcome.POISON:
        if has_dead_letter:
            return Disposition.DEAD_LETTER
        return Disposition.DELETE if receive_count >= max_receives else Disposition.LEAVE
    return Disposition.LEAVE


def backoff_s(*, failures: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Jittered exponential backoff after `failures` consecutive failures (>= 1).

    failures:  consecutive failed attempts, counting the one just seen
    base_s:    the pause after the first failure, before jitter
    cap_s:     the longest pause, before jitter
    jitter:    a draw from [0, 1); the pause is scaled by a factor in [0.5, 1)
    """
    exponent = min(max(failures - 1, 0), 32)  # 2**32 * base already exceeds any sane cap
    return min(cap_s, base_s * 2.0**exponent) * (0.5 + jitter / 2)


def parse_queue(spec: str) -> tuple[QueueKind, str]:
    """Split a `--queue` value into ("url", url), ("name", queue name) or ("kinesis", stream).

    SQS: `sqs://name`, a bare queue name, or a full http(s) queue URL. Kinesis: `kinesis://name`,
    `kinesis://<stream ARN>` or a bare stream ARN; the value is the stream name or ARN as given.
    Raises Invalid for other schemes, empty names and malformed stream names or ARNs.
    """
    spec = spec.strip()
    scheme = urlsplit(spec).scheme.lower() if "://" in spec else ""
    if scheme in {"http", "https"}:
        return "url", spec
    if scheme == "kinesis" or (not scheme and spec.startswith("arn:") and ":kinesis:" in spec):
        stream = spec.split("://", 1)[1].strip("/") if scheme else spec
        if not (_STREAM_NAME.fullmatch(stream) or _STREAM_ARN.fullmatch(stream)):
            raise Invalid(f"not a Kinesis stream name or stream ARN: {spec!r}")
        return "kinesis", stream
    if scheme == "sqs":
        name = spec.split("://", 1)[1].strip("/")
    elif scheme:
        raise Invalid(
            f"unsupported queue scheme {scheme!r} in {spec!r}: use sqs://, kinesis:// or a URL"
        )
    else:
        name = spec
    if not name or "/" in name:
        raise Invalid(f"not an SQS queue name: {spec!r}")
    return "name", name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far one Kinesis shard has been read: the last sequence number done, and if it is drained.

    `sequence` is None before the first record. Sequence numbers are decimal strings that grow
    within a shard, so they compare as integers.
    """

    sequence: str | None = None
    ended: bool = False

    def merged(self, other: Checkpoint) -> Checkpoint:
        """The later of two checkpoints of one shard: a checkpoint never moves backwards."""
        if self.ended != other.ended:
            return self if self.ended else other
        if other.sequence is None:
            return self
        if self.sequence is None or int(other.sequence) > int(self.sequence):
            return other
        return self

    def encode(self) -> bytes:
        """The stored form of the checkpoint."""
        return json.dumps({"sequence": self.sequence, "ended": self.ended}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint:
        """A stored checkpoint; Invalid if `raw` is not one."""
        try:
            value = json.loads(raw)
            sequence, ended = value["sequence"], value["ended"]
        except (ValueError, TypeError, KeyError) as exc:
            raise Invalid(f"not a Kinesis checkpoint: {raw[:100]!r}") from exc
        if not (sequence is None or (isinstance(sequence, str) and sequence.isdigit())):
            raise Invalid(f"not a Kinesis sequence number in a checkpoint: {sequence!r}")
        if not isinstance(ended, bool):
            raise Invalid(f"not a Kinesis checkpoint: {raw[:100]!r}")
        return cls(sequence, ended)


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard as ListShards shows it: its parents, and its last sequence number once closed."""

    shard_id: str
    parents: tuple[str, ...] = ()
    ending_sequence: str | None = None  # set once a split or merge has closed the shard

    @classmethod
    def of(cls, listed: Mapping[str, Any]) -> Shard:
        """The shard of one entry of ListShards' `Shards`."""
        parents = (listed.get("ParentShardId"), listed.get("AdjacentParentShardId"))
        return cls(
            listed["ShardId"],
            tuple(parent for parent in parents if parent),
            listed.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
        )


def ready_shards(
    shards: Sequence[Shard], *, ended: Collection[str], running: Collection[str]
) -> list[str]:
    """The shards to start reading now, in listing order.

    shards:   the stream's shards as listed (ListShards omits shards past retention)
    ended:    shards drained to their end (checkpointed as ended)
    running:  shards a reader is busy with

    Invariant: a child shard starts only when each parent is drained or no longer listed, so
    an entity's events are applied in stream order across a split or merge.
    """
    listed = {shard.shard_id for shard in shards}
    return [
        shard.shard_id
        for shard in shards
        if shard.shard_id not in ended
        and shard.shard_id not in running
        and all(parent in ended or parent not in listed for parent in shard.parents)
    ]


def shard_drained(
    *, next_iterator: str | None, ending_sequence: str | None, last_sequence: str | None
) -> bool:
    """Whether a shard has nothing left to read after the records just processed.

    next_iterator:    GetRecords' NextShardIterator; AWS returns none once a closed shard is read
    ending_sequence:  the shard's EndingSequenceNumber, set once it is closed
    last_sequence:    the last sequence number processed (None: none yet)

    The second test covers services that keep returning iterators for closed shards (moto).
    """
    if next_iterator is None:
        return True
    if ending_sequence is None:
        return False
    return int(last_sequence or "0") >= int(ending_sequence)


def moves_on(outcome: Outcome, *, attempts: int, max_attempts: int) -> bool:
    """Whether the Kinesis reader moves past a record after `attempts` tries ended in `outcome`.

    Kinesis has no dead-letter queue and a shard is read in order, so a record is skipped
    (logged, then checkpointed past) when it is poison, or when a bug failed it `max_attempts`
    times; a Temporary failure (the store is away) is retried without limit, never skipped.
    """
    if outcome in {Outcome.APPLIED, Outcome.POISON}:
        return True
    if outcome is Outcome.UNEXPECTED:
        return attempts >= max_attempts
    return False
