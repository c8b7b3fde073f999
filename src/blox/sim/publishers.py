"""Publishers that put envelopes on the wire: SQS directly, or EventBridge (which builds its own).

Both are blocking (boto3) and run in the pump's worker thread. Each call splits its envelopes
into batches within the API limits (10 entries, 256 KiB), retries the whole call on throttling,
5xx and connection errors, and resends only the entries a partial failure names, with jittered
exponential backoff. Entries still failing after `Backoff.attempts` tries, or refused for good
(sender fault, oversized), come back in `PublishOutcome.failed`; nothing is dropped silently.
The caller owns (and closes) the boto3 client.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from blox.sim.events import Envelope, PublishOutcome, envelope_json

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

BATCH_ENTRIES = 10  # SendMessageBatch and PutEvents both take at most 10 entries
BATCH_BYTES = 256 * 1024  # and at most 256 KiB per request
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)

# A batch attempt: the entries to send -> the entries to retry (failed permanently are logged
# and returned through `permanent`).
Attempt = Callable[[list["Entry"]], list["Entry"]]


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: `base_s * 2**n`, capped, times a factor in [0.5, 1]."""

    attempts: int = 5
    base_s: float = 0.05
    cap_s: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def pause(self, attempt: int) -> None:
        """Wait before retry number `attempt` (1-based)."""
        delay = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        self.sleep(delay * (0.5 + self.rng.random() / 2))


@dataclass
class Entry:
    """One envelope on its way: its batch id, its wire size and whether it was refused for good."""

    index: int
    envelope: Envelope
    size: int
    permanent: bool = False


def is_retryable(exc: Exception) -> bool:
    """Throttling, 5xx and lost connections may pass on retry; anything else will not."""
    if isinstance(exc, BotocoreConnectionError):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_CODES or status >= 500
    return False


def batches(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    """Consecutive groups of at most BATCH_ENTRIES entries and BATCH_BYTES bytes."""
    group: list[Entry] = []
    size = 0
    for entry in entries:
        if group and (len(group) == BATCH_ENTRIES or size + entry.size > BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += entry.size
    if group:
        yield group


def deliver(entries: list[Entry], attempt: Attempt, backoff: Backoff, sink: str) -> PublishOutcome:
    """Send in batches; retry what the sink reports as retryable; return what never made it."""
    failed: list[Envelope] = []
    for entry in entries:
        if entry.size > BATCH_BYTES:
            logger.error(
                "%s: envelope of %d bytes exceeds %d; not sent", sink, entry.size, BATCH_BYTES
            )
            failed.append(entry.envelope)
    sendable = [e for e in entries if e.size <= BATCH_BYTES]
    for group in batches(sendable):
        pending = group
        for number in range(1, backoff.attempts + 1):
            try:
                pending = attempt(pending)
            except Exception as exc:
                if not is_retryable(exc):
                    logger.error("%s: batch of %d refused: %s", sink, len(pending), exc)
                    break
                logger.warning("%s: attempt %d failed: %s", sink, number, exc)
            failed.extend(e.envelope for e in pending if e.permanent)
            pending = [e for e in pending if not e.permanent]
            if not pending:
                break
            if number < backoff.attempts:
                backoff.pause(number)
        if pending:
            logger.error("%s: giving up on %d envelopes", sink, len(pending))
            failed.extend(e.envelope for e in pending)
    return PublishOutcome(published=len(entries) - len(failed), failed=tuple(failed))


class SqsPublisher:
    """SendMessageBatch to one queue; each message body is the envelope JSON."""

    def __init__(
        self, client: SQSClient, queue_url: str, *, backoff: Backoff | None = None
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._backoff = backoff or Backoff()

    def publish(self, envelopes: Sequence[Envelope]) -> PublishOutcome:
        bodies = [envelope_json(e) for e in envelopes]
        entries = [
            Entry(index=i, envelope=e, size=len(b.encode()))
            for i, (e, b) in enumerate(zip(envelopes, bodies, strict=True))
        ]
        return deliver(entries, lambda group: self._send(group, bodies), self._backoff, "sqs")

    def _send(self, group: list[Entry], bodies: list[str]) -> list[Entry]:
        by_id = {str(e.index): e for e in group}
        response = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[{"Id": key, "MessageBody": bodies[e.index]} for key, e in by_id.items()],
        )
        retry: list[Entry] = []
        for failure in response.get("Failed", []):
            entry = by_id[failure["Id"]]
            entry.permanent = bool(failure.get("SenderFault"))
            log = logger.error if entry.permanent else logger.warning
            log("sqs: entry failed: %s %s", failure.get("Code"), failure.get("Message", ""))
            retry.append(entry)
        return retry


class EventBridgePublisher:
    """PutEvents on a bus; the bus builds the envelope, so only its parts are sent."""

    def __init__(
        self,
        client: EventBridgeClient,
        *,
        event_bus_name: str = "default",
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._bus = event_bus_name
        self._backoff = backoff or Backoff()

    def publish(self, envelopes: Sequence[Envelope]) -> PublishOutcome:
        requests = [self._request_entry(e) for e in envelopes]
        entries = [
            Entry(index=i, envelope=e, size=self._entry_size(r))
            for i, (e, r) in enumerate(zip(envelopes, requests, strict=True))
        ]
        return deliver(entries, lambda g: self._put(g, requests), self._backoff, "eventbridge")

    def _request_entry(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "Source": envelope["source"],
            "DetailType": envelope["detail-type"],
            "Detail": envelope_json(envelope["detail"]),
            "Resources": list(envelope["resources"]),
            "Time": datetime.fromisoformat(envelope["time"]),
            "EventBusName": self._bus,
        }

    @staticmethod
    def _entry_size(request: dict[str, Any]) -> int:
        """PutEvents entry size as AWS documents it: 14 bytes of Time plus the UTF-8 strings."""
        strings = [
            request["Source"],
            request["DetailType"],
            request["Detail"],
            *request["Resources"],
        ]
        return 14 + sum(len(s.encode()) for s in strings)

    def _put(self, group: list[Entry], requests: list[dict[str, Any]]) -> list[Entry]:
        response = self._client.put_events(Entries=[requests[e.index] for e in group])  # type: ignore[misc]
        if not response.get("FailedEntryCount"):
            return []
        retry: list[Entry] = []
        for entry, result in zip(group, response["Entries"], strict=True):
            if "ErrorCode" in result:
                entry.permanent = result["ErrorCode"] in {"InvalidArgument", "MalformedDetail"}
                logger.warning("eventbridge: entry failed: %s", result.get("ErrorCode"))
                retry.append(entry)
        return retry
