"""Kinesis ingest: one reader per shard, checkpoints in the store, resuming where it stopped.

The twin of `sqs.py`, built by `css/service.py` with `resolve_stream`'s ARN and the processor's
`process_many(bodies)` (or `process(body)`), called once per batch read (`batches.attempt`); it
branches only on the pure `disposition` functions. Loops never die of one input (STYLE B6); AWS
and store errors back off on the injected clock.

Assumptions / Invariants:
- A shard's checkpoint is the last sequence number of an unbroken run of records applied or
  skipped as poison, written by compare-and-swap after each batch; it never moves backwards (a
  lost compare merges). Records applied past a failed one are read and applied again (harmless:
  the processor is version-ordered).
- A Temporary failure is never checkpointed past: the iterator reopens after the last record done.
- A child shard is read only once its parents are drained or past retention (`ready_shards`).
- Poison is logged with shard and sequence number and skipped: Kinesis has no dead-letter queue.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from blox.clock import Clock
from blox.css.ingest import batches, disposition
from blox.css.ingest.disposition import Checkpoint, Outcome, Shard
from blox.css.ingest.sqs import AWS_ERRORS, BACKOFF_BASE_S, BACKOFF_CAP_S
from blox.errors import Invalid, NotFound, Permanent, Temporary, Unavailable
from blox.store import Store, keys
from blox.store.errors import CompareFailed, StoreError

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import GetRecordsOutputTypeDef, RecordTypeDef

__all__ = [
    "KinesisCounters",
    "KinesisPoller",
    "StreamNotFound",
    "StreamUnavailable",
    "resolve_stream",
]

logger = logging.getLogger(__name__)

GET_RECORDS_LIMIT = 1000  # GetRecords takes up to 10,000; smaller batches keep stop() prompt
IDLE_S = 1.0  # pause after an empty read at the tip of a shard
READ_GAP_S = 0.2  # pause after an empty read behind the tip: 5 GetRecords a second per shard
RESCAN_S = 60.0  # how often ListShards looks for shards that a split or merge created
SHARD_PAGE = 1000  # ListShards' largest page
MAX_ATTEMPTS = 5  # tries of a record that fails with a bug before it is skipped
MISSING_STREAM_CODES = frozenset({"ResourceNotFoundException"})


class StreamNotFound(NotFound, Permanent):
    """The stream named by `--queue kinesis://…` does not exist in this account and region."""


class StreamUnavailable(Unavailable, Temporary):
    """Kinesis refused or could not be reached while resolving the stream."""


@dataclass
class KinesisCounters:
    """Running totals of one Kinesis poller, for the Prometheus exporter."""

    received: int = 0  # records read
    processed: int = 0  # applied (`process` returned, or `process_many` answered no error)
    poison_skipped: int = 0  # skipped as poison (or after MAX_ATTEMPTS unexpected failures)
    temporary_failures: int = 0  # `process` raised Temporary or something unexpected
    read_errors: int = 0  # ListShards, GetShardIterator or GetRecords failed
    checkpoints: int = 0  # checkpoints written
    checkpoint_errors: int = 0  # the store failed reading or writing a checkpoint
    shards_drained: int = 0  # closed shards read to their end


def resolve_stream(client: KinesisClient, spec: str) -> str:
    """The stream ARN for a `--queue` value: `kinesis://name`, `kinesis://<ARN>` or an ARN."""
    kind, stream = disposition.parse_queue(spec)
    if kind != "kinesis":
        raise Invalid(f"{spec!r} names an SQS queue, not a Kinesis stream")
    named: dict[str, Any] = {"StreamARN" if stream.startswith("arn:") else "StreamName": stream}
    try:
        summary = client.describe_stream_summary(**named)
    except AWS_ERRORS as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
        if code in MISSING_STREAM_CODES:
            raise StreamNotFound(f"Kinesis stream {stream!r} does not exist") from exc
        raise StreamUnavailable(f"cannot describe Kinesis stream {stream!r}: {exc}") from exc
    return summary["StreamDescriptionSummary"]["StreamARN"]


class KinesisPoller:
    """Read every shard of one stream and checkpoint each after its records were applied."""

    def __init__(
        self,
        client: KinesisClient,
        stream_arn: str,
        *,
        store: Store,
        process: batches.ProcessOne | None = None,
        process_many: batches.ProcessMany | None = None,
        clock: Clock,
        limit: int = GET_RECORDS_LIMIT,
        idle_s: float = IDLE_S,
        rescan_s: float = RESCAN_S,
        shard_page: int = SHARD_PAGE,
        max_attempts: int = MAX_ATTEMPTS,
        rng: random.Random | None = None,
        observe_lag: Callable[[float], None] | None = None,
    ) -> None:
        if not 1 <= limit <= 10_000 or not 1 <= shard_page <= 1000 or max_attempts < 1:
            raise Invalid("limit must be within 1..10000, shard_page 1..1000, max_attempts >= 1")
        if idle_s < 0 or rescan_s <= 0:
            raise Invalid("idle_s must be >= 0 and rescan_s > 0")
        self._client = client
        self._stream_arn = stream_arn
        self._store = store
        self._process_many = batches.chosen(process, process_many)
        self._clock = clock
        self._limit = limit
        self._idle_s = idle_s
        self._rescan_s = rescan_s
        self._shard_page = shard_page
        self._max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._observe_lag = observe_lag  # seconds from arrival in the stream to applied
        self._stopping = asyncio.Event()
        self._rescan = asyncio.Event()  # a reader ended: its children may be ready
        self._finished: asyncio.Event | None = None
        self._shards: dict[str, Shard] = {}
        self._ended: set[str] = set()
        self._running: set[str] = set()
        self._revisions: dict[str, int] = {}  # mod_revision of each shard's checkpoint (0: none)
        self._failing: dict[str, tuple[str, int]] = {}  # shard -> (sequence, tries) failing now
        self.counters = KinesisCounters()

    async def run(self) -> None:
        """Read until cancelled or `stop()`; a cancel abandons the batches in hand (re-read)."""
        self._finished = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                failures = 0
                while not self._stopping.is_set():
                    self._rescan.clear()  # before listing, so that no reader's signal is lost
                    shards = await self._list_shards()
                    if shards is None:
                        failures += 1
                        await self._pause(failures)
                        continue
                    failures = 0
                    self._shards = {shard.shard_id: shard for shard in shards}
                    for shard_id in disposition.ready_shards(
                        shards, ended=self._ended, running=self._running
                    ):
                        self._running.add(shard_id)
                        group.create_task(self._read(shard_id), name=f"kinesis-{shard_id}")
                    await self._sleep(self._rescan_s, until=self._rescan)
        finally:
            self._finished.set()

    async def stop(self) -> None:
        """Stop reading, finish the batches in hand and checkpoint them, then return."""
        self._stopping.set()
        if self._finished is not None:
            await self._finished.wait()

    async def _read(self, shard_id: str) -> None:
        """One shard's reader; a bug ends it with a traceback, and the next scan restarts it."""
        try:
            await self._follow(shard_id)
        except Exception:
            logger.exception("reader of shard %s failed; restarted at the next scan", shard_id)
        finally:
            self._running.discard(shard_id)
            if shard_id in self._ended:
                self._rescan.set()  # its children may be ready now

    async def _follow(self, shard_id: str) -> None:
        saved = await self._load(shard_id)
        if saved is None or saved.ended:
            if saved is not None:
                self._ended.add(shard_id)
            return
        done, iterator, failures = saved, None, 0  # `done` runs ahead of `saved` if a write fails
        while not self._stopping.is_set():
            iterator = iterator or await self._open(shard_id, done)
            read = await self._get_records(iterator) if iterator else None
            if read is None:  # an AWS error (logged; the iterator may have expired) or stop()
                iterator = None
                failures += 1
                await self._pause(failures)
                continue
            records = read.get("Records", [])
            done, failure = await self._apply(shard_id, records, done)
            if done != saved and await self._save(shard_id, done):
                saved = done
            if failure is not None:
                iterator = None  # reopen after `done`, so that the failed record is read again
                failures += 1
                await self._pause(failures, getattr(failure, "delay_s", None))
                continue
            failures = 0
            iterator = read.get("NextShardIterator")
            ending = self._shards.get(shard_id, Shard(shard_id)).ending_sequence
            if disposition.shard_drained(
                next_iterator=iterator, ending_sequence=ending, last_sequence=done.sequence
            ):
                await self._finish(shard_id, done)
                return
            if not records:
                await self._sleep(READ_GAP_S if read.get("MillisBehindLatest") else self._idle_s)

    async def _apply(
        self, shard_id: str, records: list[RecordTypeDef], done: Checkpoint
    ) -> tuple[Checkpoint, BaseException | None]:
        """Process records in batches, in order; return the checkpoint reached and the failure
        that ended it. A batch call that stopped early is called again with the rest."""
        self.counters.received += len(records)
        outcomes: list[tuple[Outcome, BaseException | None]] = []
        for number, record in enumerate(records):
            if number == len(outcomes):  # the first call, or the last one stopped early
                outcomes += await self._process_batch(shard_id, records[number:])
            outcome, error = outcomes[number]
            sequence = record["SequenceNumber"]
            failed, tries = self._failing.pop(shard_id, ("", 0))
            tries = tries + 1 if failed == sequence else 1
            if not disposition.moves_on(outcome, attempts=tries, max_attempts=self._max_attempts):
                self._failing[shard_id] = (sequence, tries)
                return done, error
            if outcome is not Outcome.APPLIED:
                self.counters.poison_skipped += 1
                logger.warning("record %s of shard %s skipped: %r", sequence, shard_id, error)
            done = Checkpoint(sequence)
        return done, None

    async def _process_batch(
        self, shard_id: str, records: list[RecordTypeDef]
    ) -> list[tuple[Outcome, BaseException | None]]:
        """Apply records in one call (`batches.attempt`); count and log each outcome it gave."""
        outcomes = await batches.attempt(self._process_many, [r["Data"] for r in records])
        now = self._clock.now()
        for record, (outcome, error) in zip(records, outcomes, strict=False):
            what = f"record {record['SequenceNumber']} of {shard_id}"
            if batches.log_failure(logger, outcome, error, what):
                self.counters.temporary_failures += 1
            elif outcome is Outcome.APPLIED:
                self.counters.processed += 1
                arrived = record.get("ApproximateArrivalTimestamp")
                if self._observe_lag is not None and arrived is not None:
                    self._observe_lag((now - arrived).total_seconds())
        return outcomes

    async def _load(self, shard_id: str) -> Checkpoint | None:
        """The shard's stored checkpoint, retried while the store fails; None once stopping."""
        for failures in itertools.count(1):
            if self._stopping.is_set():
                break
            try:
                return await self._stored(shard_id)
            except StoreError as exc:
                self.counters.checkpoint_errors += 1
                logger.warning("reading the checkpoint of shard %s failed: %s", shard_id, exc)
                await self._pause(failures, getattr(exc, "delay_s", None))
        return None

    async def _stored(self, shard_id: str) -> Checkpoint:
        """Read the shard's checkpoint and remember its mod_revision for the next compare."""
        key = keys.kinesis_checkpoint(self._stream_arn, shard_id)
        entry = await self._store.get(key)
        self._revisions[shard_id] = entry.mod_revision if entry is not None else 0
        if entry is None:
            return Checkpoint()
        try:
            return Checkpoint.decode(entry.value)
        except Invalid as exc:  # overwritten by the next write; re-reading the shard is harmless
            logger.warning("ignoring an unreadable checkpoint at %s: %s", key, exc)
            return Checkpoint()

    async def _save(self, shard_id: str, checkpoint: Checkpoint) -> bool:
        """CAS-write the checkpoint, merged with a racing writer's; False if the store failed."""
        key = keys.kinesis_checkpoint(self._stream_arn, shard_id)
        try:
            while True:
                expect = self._revisions.get(shard_id, 0)
                try:
                    revision = await self._store.put(key, checkpoint.encode(), expect=expect)
                except CompareFailed:
                    stored = await self._stored(shard_id)
                    if self._revisions[shard_id] and checkpoint.merged(stored) == stored:
                        return True  # another replica got as far or further
                    checkpoint = checkpoint.merged(stored)
                    continue
                self._revisions[shard_id] = revision
                self.counters.checkpoints += 1
                return True
        except StoreError as exc:
            self.counters.checkpoint_errors += 1
            logger.warning("checkpoint %s of shard %s not written: %s", checkpoint, shard_id, exc)
            return False

    async def _finish(self, shard_id: str, done: Checkpoint) -> None:
        """Checkpoint a drained shard as ended, retrying until written or stopping."""
        failures = 0
        while not await self._save(shard_id, replace(done, ended=True)):
            failures += 1
            if self._stopping.is_set():
                return
            await self._pause(failures)
        self.counters.shards_drained += 1
        self._ended.add(shard_id)
        logger.info("shard %s drained; its children may start", shard_id)

    async def _open(self, shard_id: str, done: Checkpoint) -> str | None:
        """A shard iterator after `done` (TRIM_HORIZON before any record); None on AWS errors."""
        after: dict[str, Any] = (
            {} if done.sequence is None else {"StartingSequenceNumber": done.sequence}
        )
        try:
            response = await asyncio.to_thread(
                self._client.get_shard_iterator,
                StreamARN=self._stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER" if after else "TRIM_HORIZON",
                **after,
            )
        except AWS_ERRORS as exc:
            self.counters.read_errors += 1
            logger.warning("opening shard %s failed: %s", shard_id, exc)
            return None
        return response.get("ShardIterator")

    async def _get_records(self, iterator: str) -> GetRecordsOutputTypeDef | None:
        """The next batch of a shard, or None after a logged AWS error (throttling, expiry).

        A read in flight when `stop()` comes is abandoned (None): nothing of it was processed.
        """
        get = functools.partial(self._client.get_records, ShardIterator=iterator, Limit=self._limit)
        reading = asyncio.ensure_future(asyncio.to_thread(get, StreamARN=self._stream_arn))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            return reading.result() if reading.done() else None
        except AWS_ERRORS as exc:
            self.counters.read_errors += 1
            logger.warning("reading %s failed: %s", self._stream_arn, exc)
            return None
        finally:
            stopping.cancel()  # an abandoned read's outcome is retrieved, so none is reported lost
            reading.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _list_shards(self) -> list[Shard] | None:
        """Every shard of the stream, following ListShards' pages; None after a logged error."""
        try:
            return await asyncio.to_thread(self._list_shards_blocking)
        except AWS_ERRORS as exc:
            self.counters.read_errors += 1
            logger.warning("listing the shards of %s failed: %s", self._stream_arn, exc)
            return None

    def _list_shards_blocking(self) -> list[Shard]:
        shards: list[Shard] = []
        page: dict[str, Any] = {}
        while True:
            # StreamARN goes with NextToken too (only StreamName may not), as cross-account needs.
            response = self._client.list_shards(
                StreamARN=self._stream_arn, MaxResults=self._shard_page, **page
            )
            shards.extend(Shard.of(listed) for listed in response.get("Shards", []))
            if not response.get("NextToken"):
                return shards
            page = {"NextToken": response["NextToken"]}

    async def _pause(self, failures: int, hint_s: float | None = None) -> None:
        """Back off (jittered, or as the error suggests) on the injected clock; stop() cuts it."""
        jitter = self._rng.random()
        backoff = disposition.backoff_s(
            failures=failures, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S, jitter=jitter
        )
        await self._sleep(backoff if hint_s is None else hint_s)

    async def _sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        """Sleep `seconds` on the injected clock, cut short by `stop()` or by `until` being set."""
        events = [self._stopping] if until is None else [self._stopping, until]
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._clock.sleep(seconds))]
        waits += [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
