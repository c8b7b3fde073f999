"""Pure decisions of the ingest pollers: what happens to a message, how long to back off.

The pollers in `sqs.py` only branch on what these functions return; nothing here performs I/O
or reads a clock. Tests: `tests/unit/css/ingest/test_disposition.py` (tables).
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit

from blox.errors import Invalid, Permanent, Temporary


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


def parse_queue(spec: str) -> tuple[str, str]:
    """Split a v0.3 `--queue` value into ("url", url) or ("name", queue name).

    Accepts `sqs://name`, a bare queue name, or a full http(s) queue URL. Raises Invalid for
    `kinesis://` (not supported yet), other schemes and empty names.
    """
    spec = spec.strip()
    scheme = urlsplit(spec).scheme.lower() if "://" in spec else ""
    if scheme in {"http", "https"}:
        return "url", spec
    if scheme == "kinesis":
        raise Invalid(f"Kinesis ingest is not supported yet: {spec!r}")
    if scheme == "sqs":
        name = spec.split("://", 1)[1].strip("/")
    elif scheme:
        raise Invalid(f"unsupported queue scheme {scheme!r} in {spec!r}: use sqs:// or a URL")
    else:
        name = spec
    if not name or "/" in name:
        raise Invalid(f"not an SQS queue name: {spec!r}")
    return "name", name
