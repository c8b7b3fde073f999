"""The event pump: a bounded buffer between the simulator's state and a blocking `Publisher`.

The state's listener calls `offer` synchronously on the event loop's thread; `offer` never
blocks and never raises: when the buffer is full the envelope is counted as dropped and
logged. The `run` task batches envelopes (up to `batch_size`, or whatever arrived within
`linger_s`), applies `EventFaults` if configured, honours their release times with the
injected `Clock`, and publishes each batch with `asyncio.to_thread` (at most `concurrency` in
flight). `stop` delivers everything still buffered, delayed or held before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from types import TracebackType

from blox.clock import Clock
from blox.sim.events import Envelope, EnvelopeFactory, Publisher
from blox.sim.faults import EventFaults, Release
from blox.sim.state.changes import EntityChange, Listener

logger = logging.getLogger(__name__)

DROP_LOG_EVERY = 1000  # log the first drop and then every 1000th, not each one


@dataclass
class PumpCounters:
    """What the pump did: offered = buffered + published + failed + dropped_full (when idle)."""

    offered: int = 0
    published: int = 0
    failed: int = 0
    dropped_full: int = 0


class EventPump:
    """Buffers envelopes from the state and publishes them in batches from a worker thread."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        clock: Clock,
        capacity: int = 10_000,
        batch_size: int = 10,
        linger_s: float = 0.05,
        concurrency: int = 1,
        faults: EventFaults | None = None,
    ) -> None:
        self.counters = PumpCounters()
        self.faults = faults
        self._publisher = publisher
        self._clock = clock
        self._capacity = capacity
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._ready: deque[Envelope] = deque()
        self._delayed: list[tuple[float, int, Envelope]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def offer(self, envelope: Envelope) -> bool:
        """Take one envelope without blocking; False (counted, logged) when the buffer is full."""
        self.counters.offered += 1
        if len(self._ready) + len(self._delayed) >= self._capacity:
            self.counters.dropped_full += 1
            if self.counters.dropped_full % DROP_LOG_EVERY == 1:
                logger.warning(
                    "event buffer full (%d); %d envelopes dropped so far",
                    self._capacity,
                    self.counters.dropped_full,
                )
            return False
        if self.faults is None:
            self._ready.append(envelope)
        else:
            self._schedule(self.faults.apply(envelope, self._clock.monotonic()))
        self._wake.set()
        return True

    def listener(self, factory: EnvelopeFactory) -> Listener:
        """A state listener that turns each change into an envelope and offers it."""

        def on_change(change: EntityChange) -> None:
            try:
                self.offer(factory.build(change))
            except Exception:  # a listener must not raise into the state (changes.py)
                logger.exception("could not build an envelope for a %s change", change.kind)

        return on_change

    async def __aenter__(self) -> EventPump:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        """Start the publishing task on the running loop."""
        self._task = asyncio.create_task(self.run(), name="blox.sim.event-pump")

    async def stop(self) -> None:
        """Deliver everything buffered, delayed or held, then end the publishing task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    @property
    def pending(self) -> int:
        """Envelopes not yet handed to the publisher (buffered, delayed or held by faults)."""
        held = self.faults.held if self.faults else 0
        return len(self._ready) + len(self._delayed) + held

    async def run(self) -> None:
        """Batch and publish until `stop`; then drain."""
        try:
            while True:
                self._promote()
                if self._ready:
                    await self._send(await self._next_batch())
                    continue
                if self._stopping:
                    break
                await self._idle()
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _next_batch(self) -> list[Envelope]:
        if len(self._ready) < self._batch_size and not self._stopping and self._linger_s > 0:
            await self._clock.sleep(self._linger_s)
            self._promote()
        count = min(self._batch_size, len(self._ready))
        return [self._ready.popleft() for _ in range(count)]

    async def _send(self, batch: list[Envelope]) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._publish(batch))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _publish(self, batch: list[Envelope]) -> None:
        try:
            outcome = await asyncio.to_thread(self._publisher.publish, batch)
        except Exception:
            logger.exception("publisher failed on a batch of %d envelopes", len(batch))
            self.counters.failed += len(batch)
        else:
            self.counters.published += outcome.published
            self.counters.failed += len(outcome.failed)
            if outcome.failed:
                logger.error("%d envelopes could not be published", len(outcome.failed))
        finally:
            self._slots.release()

    async def _idle(self) -> None:
        """Wait for an offer, a stop, or the next delayed release, whichever comes first."""
        deadline = self._next_deadline()
        self._wake.clear()
        if deadline is None:
            await self._wake.wait()
            return
        woken = asyncio.create_task(self._wake.wait())
        timer = asyncio.create_task(self._clock.sleep(deadline - self._clock.monotonic()))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, timer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _next_deadline(self) -> float | None:
        deadlines = [self._delayed[0][0]] if self._delayed else []
        held = self.faults.next_deadline() if self.faults else None
        if held is not None:
            deadlines.append(held)
        return min(deadlines, default=None)

    def _schedule(self, releases: list[Release]) -> None:
        now = self._clock.monotonic()
        for release in releases:
            if release.at <= now:
                self._ready.append(release.envelope)
            else:
                heapq.heappush(self._delayed, (release.at, next(self._order), release.envelope))

    def _promote(self) -> None:
        """Move what is due (or everything, when stopping) from faults and delays to ready."""
        now = self._clock.monotonic()
        if self.faults is not None:
            self._schedule(self.faults.flush(now) if self._stopping else self.faults.due(now))
        while self._delayed and (self._stopping or self._delayed[0][0] <= now):
            self._ready.append(heapq.heappop(self._delayed)[2])
