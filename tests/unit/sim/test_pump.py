"""EventPump in fake time: delays honour the injected clock, overflow and failures are counted."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from blox.clock import ManualClock
from blox.sim.events import Envelope, MemoryPublisher, PublishOutcome
from blox.sim.faults import EventFaults, FaultConfig
from blox.sim.pump import EventPump, PumpCounters


def envelope(number: int) -> Envelope:
    return {"id": f"id-{number}", "detail": {"version": 1}}


async def settle() -> None:
    """Let the pump's task and its worker threads' callbacks run (zero-length yields only)."""
    for _ in range(50):
        await asyncio.sleep(0)


class BrokenPublisher:
    def publish(self, envelopes: Sequence[Envelope]) -> PublishOutcome:
        raise RuntimeError("sink is down")


async def test_delayed_envelopes_wait_for_the_clock_then_publish(clock: ManualClock) -> None:
    sink = MemoryPublisher()
    faults = EventFaults(FaultConfig(delay_rate=1.0, delay_s=5.0), rng=random.Random(1))
    pump = EventPump(sink, clock=clock, linger_s=0.0, faults=faults)
    pump.start()
    for number in range(3):
        assert pump.offer(envelope(number))

    await clock.advance(4.0)
    await settle()
    assert pump.pending == 3
    await clock.advance(1.0)
    await settle()
    assert pump.pending == 0
    await pump.stop()

    assert [e["id"] for e in sink.envelopes] == ["id-0", "id-1", "id-2"]
    assert pump.counters == PumpCounters(offered=3, published=3)
    assert faults.counters.delayed == 3


async def test_a_full_buffer_drops_and_counts_without_blocking(clock: ManualClock) -> None:
    pump = EventPump(MemoryPublisher(), clock=clock, capacity=2)

    accepted = [pump.offer(envelope(n)) for n in range(5)]

    assert accepted == [True, True, False, False, False]
    assert pump.counters == PumpCounters(offered=5, dropped_full=3)


async def test_a_failing_publisher_counts_failures_and_the_pump_survives(
    clock: ManualClock,
) -> None:
    pump = EventPump(BrokenPublisher(), clock=clock, linger_s=0.0, batch_size=2)

    async with pump:
        for number in range(5):
            pump.offer(envelope(number))

    assert pump.counters == PumpCounters(offered=5, failed=5)
