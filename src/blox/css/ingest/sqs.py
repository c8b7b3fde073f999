"""SQS ingest: N long-polling pollers that ack a message only after it was applied.

Built by `css/service.py` with the processor's `process_many(bodies)` (or `process(body)`);
reads ECS events from SQS and never interprets a body itself. Each delivery's fate (delete,
dead-letter, leave) comes from the pure `disposition.dispose`; this module performs it. Loops
never die of one input (STYLE B6): poison goes to the dead-letter path and is acked, temporary
failures are left for SQS to redeliver, and AWS errors are logged and retried with backoff on
the injected clock. After each applied message, `observe_lag` (if given) gets the seconds since
SQS accepted it (SentTimestamp).

Batches: each received batch goes to one `process_many` call (`batches.attempt`): the processor
reads it with one store read, writes it in one transaction and answers per message, so one
poison message is dead-lettered alone and one that failed temporarily is left alone. A
per-message `process` is called in receive order up to the first temporary failure.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from blox.clock import Clock
from blox.css.ingest import batches
from blox.css.ingest.disposition import Disposition, Outcome, backoff_s, dispose, parse_queue
from blox.errors import Invalid, NotFound, Permanent, Temporary, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import MessageSystemAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

RECEIVE_BATCH = 10  # ReceiveMessage returns at most 10 messages
MAX_WAIT_TIME_S = 20  # the longest SQS long poll
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
DELETE_ATTEMPTS = 3  # after that the batch is redelivered and re-applied (apply is idempotent)
REASON_MAX_CHARS = 1024
RECEIVE_COUNT: Final = "ApproximateReceiveCount"
SENT_TIMESTAMP: Final = "SentTimestamp"  # epoch milliseconds at which SQS accepted the message
MISSING_QUEUE_CODES = frozenset(
    {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue"}
)
AWS_ERRORS = (ClientError, BotoCoreError)


class QueueNotFound(NotFound, Permanent):
    """The queue named by `--queue` does not exist in this account and region."""


class QueueUnavailable(Unavailable, Temporary):
    """SQS refused or could not be reached while resolving the queue."""


@dataclass
class IngestCounters:
    """Running totals of one poller set, for the Prometheus exporter."""

    received: int = 0  # messages received (each delivery counts)
    processed: int = 0  # applied (`process` returned, or `process_many` answered no error)
    deleted: int = 0  # removed from the source queue
    dead_lettered: int = 0  # sent to the dead-letter queue
    poison_dropped: int = 0  # poison deleted without a dead-letter queue
    temporary_failures: int = 0  # `process` raised Temporary or something unexpected
    receive_errors: int = 0  # ReceiveMessage failed
    delete_errors: int = 0  # DeleteMessageBatch failed, as a call or per entry


def resolve_queue(client: SQSClient, spec: str) -> str:
    """The queue URL for a v0.3 `--queue` value: `sqs://name`, a bare name, or a URL."""
    kind, value = parse_queue(spec)
    if kind == "kinesis":
        raise Invalid(f"{spec!r} names a Kinesis stream, not an SQS queue")
    if kind == "url":
        return value
    try:
        return client.get_queue_url(QueueName=value)["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING_QUEUE_CODES:
            raise QueueNotFound(f"SQS queue {value!r} does not exist") from exc
        raise QueueUnavailable(f"cannot resolve SQS queue {value!r}: {exc}") from exc
    except BotoCoreError as exc:
        raise QueueUnavailable(f"cannot resolve SQS queue {value!r}: {exc}") from exc


class SqsPoller:
    """Long-poll one queue with `pollers` concurrent loops; ack only what was applied."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        process: batches.ProcessOne | None = None,
        process_many: batches.ProcessMany | None = None,
        clock: Clock,
        pollers: int = 2,
        wait_time_s: int = 20,
        visibility_s: int = 30,
        dead_letter_url: str | None = None,
        max_receives: int = 5,
        rng: random.Random | None = None,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        if pollers < 1 or max_receives < 1 or visibility_s < 1:
            raise Invalid("pollers, max_receives and visibility_s must be at least 1")
        if not 0 <= wait_time_s <= MAX_WAIT_TIME_S:
            raise Invalid(f"wait_time_s must be within 0..{MAX_WAIT_TIME_S}")
        self._client = client
        self._queue_url = queue_url
        self._process_many = batches.chosen(process, process_many)
        self._clock = clock
        self._pollers = pollers
        self._wait_time_s = wait_time_s
        self._visibility_s = visibility_s
        self._dead_letter_url = dead_letter_url
        self._max_receives = max_receives
        self._rng = rng or random.Random()
        self._observe_lag = observe_lag
        self._stopping = asyncio.Event()
        self._stop_flag = threading.Event()  # the same, for receive threads
        self._finished: asyncio.Event | None = None
        self.counters = IngestCounters()

    async def run(self) -> None:
        """Poll until cancelled or `stop()`; a cancel abandons the batch in hand (redelivered)."""
        self._finished = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                for number in range(self._pollers):
                    group.create_task(self._poll(), name=f"sqs-poller-{number}")
        finally:
            self._finished.set()

    async def stop(self) -> None:
        """Stop receiving, finish and ack the batches in hand, then return."""
        self._stopping.set()
        self._stop_flag.set()
        if self._finished is not None:
            await self._finished.wait()

    async def _poll(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            messages = await self._receive()
            if messages is None:
                failures += 1
                await self._pause(failures)
                continue
            if not messages:
                continue
            failure = await self._handle(messages)
            if failure is None:
                failures = 0
                continue
            failures += 1
            await self._pause(failures, getattr(failure, "delay_s", None))

    async def _receive(self) -> list[MessageTypeDef] | None:
        """The next batch ([] when stopping), or None after a logged AWS error."""
        receiving = asyncio.ensure_future(asyncio.to_thread(self._receive_blocking))
        try:
            if not await self._unless_stopped(receiving):
                return []
            return receiving.result()
        except AWS_ERRORS as exc:
            self.counters.receive_errors += 1
            logger.warning("receive from %s failed: %s", self._queue_url, exc)
            return None
        finally:
            if not receiving.done():  # abandoned: the thread releases what it still gets
                receiving.add_done_callback(_discard)

    def _receive_blocking(self) -> list[MessageTypeDef]:
        response = self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            WaitTimeSeconds=self._wait_time_s,
            VisibilityTimeout=self._visibility_s,
            AttributeNames=[RECEIVE_COUNT, SENT_TIMESTAMP],
            MessageSystemAttributeNames=[RECEIVE_COUNT, SENT_TIMESTAMP],
        )
        messages = response.get("Messages", [])
        if messages and self._stop_flag.is_set():
            self._release_blocking(messages)
            return []
        return messages

    def _release_blocking(self, messages: list[MessageTypeDef]) -> None:
        """Make messages received during shutdown visible again at once, for other consumers."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        try:
            self._client.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=entries,  # type: ignore[arg-type]
            )
        except AWS_ERRORS as exc:
            logger.info("could not release %d messages on stop: %s", len(messages), exc)

    async def _handle(self, messages: list[MessageTypeDef]) -> BaseException | None:
        """Process a batch and ack it; return its first failure that may pass, if any."""
        self.counters.received += len(messages)
        in_hand = list(messages)  # extended by the heartbeat until deleted or left
        to_delete: list[MessageTypeDef] = []
        failure: BaseException | None = None
        heartbeat = asyncio.create_task(self._extend_visibility(in_hand))
        try:
            outcomes = await self._process_batch(messages)
            # Messages past the outcomes were not processed: left for redelivery.
            for message, (outcome, error) in zip(messages, outcomes, strict=False):
                if await self._should_delete(message, outcome, error):
                    to_delete.append(message)
                else:
                    in_hand.remove(message)
                if failure is None and outcome in {Outcome.TEMPORARY, Outcome.UNEXPECTED}:
                    failure = error
        finally:
            heartbeat.cancel()
        await self._delete(to_delete)
        return failure

    async def _should_delete(
        self, message: MessageTypeDef, outcome: Outcome, error: BaseException | None
    ) -> bool:
        """Perform what `dispose` says short of deleting; True if the message is to be deleted."""
        disposition = dispose(
            outcome=outcome,
            receive_count=_receive_count(message),
            max_receives=self._max_receives,
            has_dead_letter=self._dead_letter_url is not None,
        )
        if disposition is Disposition.DEAD_LETTER and error is not None:
            return await self._dead_letter(message, error)
        if disposition is Disposition.DELETE and outcome is Outcome.POISON:
            self.counters.poison_dropped += 1
        return disposition is Disposition.DELETE

    async def _process_batch(
        self, messages: list[MessageTypeDef]
    ) -> list[tuple[Outcome, BaseException | None]]:
        """Apply a batch in one call (`batches.attempt`, never raises); count and log each
        message's outcome, in order, as far as the call went."""
        bodies = [message.get("Body", "") for message in messages]
        outcomes = await batches.attempt(self._process_many, bodies)
        now_s = self._clock.now().timestamp()
        for message, (outcome, error) in zip(messages, outcomes, strict=False):
            what = f"message {message.get('MessageId', '?')}"
            if outcome is Outcome.POISON:
                logger.warning("poison %s: %r", what, error)
            elif batches.log_failure(logger, outcome, error, what):
                self.counters.temporary_failures += 1
            else:
                self.counters.processed += 1
                sent_ms = _attribute(message, SENT_TIMESTAMP)
                if self._observe_lag is not None and sent_ms is not None:
                    self._observe_lag(now_s - sent_ms / 1000)
        return outcomes

    async def _dead_letter(self, message: MessageTypeDef, error: BaseException) -> bool:
        """Send the original body to the dead-letter queue, with the reason as attributes."""
        assert self._dead_letter_url is not None
        attributes: dict[str, Any] = {
            "blox-reason": {"DataType": "String", "StringValue": _reason(error)},
            "blox-error": {"DataType": "String", "StringValue": type(error).__name__},
            "blox-source-message-id": {
                "DataType": "String",
                "StringValue": message.get("MessageId", "?"),
            },
        }
        try:
            await asyncio.to_thread(
                self._client.send_message,
                QueueUrl=self._dead_letter_url,
                MessageBody=message.get("Body", ""),
                MessageAttributes=attributes,
            )
        except AWS_ERRORS as exc:
            logger.warning("dead-lettering %s failed, left: %s", message.get("MessageId"), exc)
            return False
        self.counters.dead_lettered += 1
        return True

    async def _delete(self, messages: list[MessageTypeDef]) -> None:
        """DeleteMessageBatch, retried on AWS errors; what stays undeleted is redelivered."""
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            try:
                response = await asyncio.to_thread(
                    self._client.delete_message_batch,
                    QueueUrl=self._queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except AWS_ERRORS as exc:
                self.counters.delete_errors += 1
                logger.warning("delete attempt %d on %s failed: %s", attempt, self._queue_url, exc)
                await self._clock.sleep(self._backoff(attempt))
                continue
            self.counters.deleted += len(response.get("Successful", []))
            for failed in response.get("Failed", []):
                self.counters.delete_errors += 1
                logger.warning("delete of entry %s failed: %s", failed["Id"], failed.get("Message"))
            return

    async def _extend_visibility(self, in_hand: list[MessageTypeDef]) -> None:
        """Heartbeat: every visibility_s / 2, push the messages in hand out of sight again."""
        while True:
            await self._clock.sleep(self._visibility_s / 2)
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m["ReceiptHandle"],
                    "VisibilityTimeout": self._visibility_s,
                }
                for i, m in enumerate(in_hand)
            ]
            if not entries:
                continue
            try:
                await asyncio.to_thread(
                    self._client.change_message_visibility_batch,
                    QueueUrl=self._queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except AWS_ERRORS as exc:
                logger.warning("extending visibility on %s failed: %s", self._queue_url, exc)

    def _backoff(self, failures: int, hint_s: float | None = None) -> float:
        if hint_s is not None:
            return hint_s
        return backoff_s(
            failures=failures, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S, jitter=self._rng.random()
        )

    async def _pause(self, failures: int, hint_s: float | None = None) -> None:
        """Back off on the injected clock; `stop()` cuts the pause short."""
        sleeping = asyncio.ensure_future(self._clock.sleep(self._backoff(failures, hint_s)))
        try:
            await self._unless_stopped(sleeping)
        finally:
            sleeping.cancel()

    async def _unless_stopped(self, work: asyncio.Future[Any]) -> bool:
        """Wait for `work` or `stop()`, whichever comes first; True if `work` finished."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        return work.done()


def _attribute(message: MessageTypeDef, name: MessageSystemAttributeNameType) -> int | None:
    """An integer system attribute of `message`, or None when it is absent or malformed."""
    try:
        return int(message.get("Attributes", {})[name])
    except (KeyError, ValueError):
        return None


def _receive_count(message: MessageTypeDef) -> int:
    count = _attribute(message, RECEIVE_COUNT)
    return 1 if count is None else count


def _reason(error: BaseException) -> str:
    return (str(error) or type(error).__name__)[:REASON_MAX_CHARS]


def _discard(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned receive's outcome so asyncio does not report it as lost."""
    if not future.cancelled() and future.exception() is not None:
        logger.debug("abandoned receive failed: %s", future.exception())
