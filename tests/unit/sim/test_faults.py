"""Event faults in fake time, seeded: every fault happens as configured and is counted."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from blox.errors import Invalid
from blox.sim.events import Envelope
from blox.sim.faults import EventFaults, FaultConfig, FaultConfigInvalid, Release

EVENTS = 2_000
STEP_S = 0.01  # fake seconds between two arrivals: a reorder window fills before its hold ends
RATE_TOLERANCE = 0.03  # about 3.4 binomial standard deviations at p=0.2 over 2,000 events


def envelope(number: int) -> Envelope:
    return {
        "id": f"id-{number}",
        "resources": [f"task/{number % 50}"],
        "detail": {"taskArn": f"task/{number % 50}", "version": number // 50 + 1},
    }


def run(
    config: FaultConfig, *, seed: int = 1, count: int = EVENTS
) -> tuple[EventFaults, list[Release]]:
    """Feed `count` envelopes STEP_S apart in fake time, then flush."""
    faults = EventFaults(config, rng=random.Random(seed))
    out: list[Release] = []
    for number in range(count):
        out += faults.due(number * STEP_S)
        out += faults.apply(envelope(number), number * STEP_S)
    out += faults.flush(count * STEP_S)
    return faults, out


def arrival(release: Release) -> float:
    return int(release.envelope["id"][3:]) * STEP_S


def ids(releases: list[Release]) -> list[str]:
    return [r.envelope["id"] for r in releases]


def test_no_faults_pass_every_envelope_once_in_order_immediately() -> None:
    faults, out = run(FaultConfig())

    assert ids(out) == [f"id-{n}" for n in range(EVENTS)]
    assert all(r.at == n * STEP_S for n, r in enumerate(out))
    assert faults.counters.published == EVENTS


@pytest.mark.parametrize(("rate", "seed"), [(0.05, 1), (0.2, 2), (0.5, 3)])
def test_drop_rate_holds_and_the_count_is_exactly_what_is_missing(rate: float, seed: int) -> None:
    faults, out = run(FaultConfig(drop_rate=rate), seed=seed)

    missing = {f"id-{n}" for n in range(EVENTS)} - set(ids(out))
    assert faults.counters.dropped == len(missing) == EVENTS - len(out)
    assert abs(faults.counters.dropped / EVENTS - rate) < RATE_TOLERANCE


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_duplicates_are_the_same_envelope_with_the_same_version(rate: float) -> None:
    faults, out = run(FaultConfig(duplicate_rate=rate))

    seen = Counter(ids(out))
    twice = [key for key, times in seen.items() if times == 2]
    assert set(seen.values()) <= {1, 2}
    assert len(twice) == faults.counters.duplicated
    assert abs(faults.counters.duplicated / EVENTS - rate) < RATE_TOLERANCE
    for key in twice:
        copies = [r.envelope for r in out if r.envelope["id"] == key]
        assert copies[0] is copies[1]
        assert copies[0]["detail"]["version"] == copies[1]["detail"]["version"]


def test_delay_releases_by_the_injected_clock_at_the_configured_rate() -> None:
    faults, out = run(FaultConfig(delay_rate=0.25, delay_s=30.0))

    late = [r for r in out if r.at > arrival(r)]
    assert len(late) == faults.counters.delayed
    assert all(r.at == arrival(r) + 30.0 for r in late)
    assert abs(len(late) / EVENTS - 0.25) < RATE_TOLERANCE
    assert sorted(ids(out)) == sorted(f"id-{n}" for n in range(EVENTS))


def test_reorder_keeps_every_envelope_exactly_once_and_counts_the_moved_ones() -> None:
    faults, out = run(FaultConfig(reorder_window=8))

    assert Counter(ids(out)) == Counter(f"id-{n}" for n in range(EVENTS))
    assert ids(out) != [f"id-{n}" for n in range(EVENTS)]
    moved = sum(1 for n, key in enumerate(ids(out)) if key != f"id-{n}")
    assert faults.counters.reordered == moved
    assert moved > EVENTS / 2  # a shuffled window of 8 leaves about 1 in 8 in place


def test_reorder_stays_within_its_window() -> None:
    _, out = run(FaultConfig(reorder_window=5, reorder_hold_s=1000.0))

    assert all(n // 5 == int(key[3:]) // 5 for n, key in enumerate(ids(out)))


def test_a_partial_reorder_window_is_released_once_held_too_long() -> None:
    faults = EventFaults(FaultConfig(reorder_window=10, reorder_hold_s=2.0), rng=random.Random(4))
    held = [faults.apply(envelope(n), 100.0 + n * 0.1) for n in range(3)]

    assert held == [[], [], []]
    assert faults.next_deadline() == 102.0
    assert faults.due(101.9) == []
    released = faults.due(102.0)
    assert sorted(ids(released)) == ["id-0", "id-1", "id-2"]
    assert all(r.at == 102.0 for r in released)
    assert faults.held == 0
    assert faults.next_deadline() is None


def test_all_faults_together_account_for_every_envelope() -> None:
    config = FaultConfig(
        duplicate_rate=0.1, drop_rate=0.1, delay_rate=0.2, delay_s=5.0, reorder_window=4
    )
    faults, out = run(config, seed=9)
    c = faults.counters

    assert c.received == EVENTS
    assert c.published == len(out) == EVENTS - c.dropped + c.duplicated
    assert min(c.dropped, c.duplicated, c.delayed, c.reordered) > 0


def test_the_same_seed_gives_the_same_faults() -> None:
    config = FaultConfig(duplicate_rate=0.2, drop_rate=0.2, reorder_window=3)

    assert ids(run(config, seed=5)[1]) == ids(run(config, seed=5)[1])
    assert ids(run(config, seed=5)[1]) != ids(run(config, seed=6)[1])


def test_config_round_trips_through_plain_data() -> None:
    config = FaultConfig(duplicate_rate=0.5, delay_rate=1.0, delay_s=2.5, reorder_window=3)

    assert FaultConfig.from_dict(config.to_dict()) == config
    assert FaultConfig.from_dict({}) == FaultConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"drop_rate": 1.5}, "drop_rate must be between 0 and 1, got 1.5"),
        ({"duplicate_rate": -0.1}, "duplicate_rate must be between 0 and 1"),
        ({"delay_rate": float("nan"), "delay_s": 1}, "delay_rate must be finite"),
        ({"drop_rate": "0.1"}, "drop_rate must be a number, got '0.1'"),
        ({"drop_rate": True}, "drop_rate must be a number, got True"),
        ({"delay_s": -1}, "delay_s must be >= 0 seconds"),
        ({"delay_rate": 0.5}, "delay_rate > 0 needs delay_s > 0"),
        ({"reorder_window": 2.5}, "reorder_window must be an integer >= 0, got 2.5"),
        ({"reorder_window": -1}, "reorder_window must be an integer >= 0"),
        ({"reorder_hold_s": 0}, "reorder_hold_s must be > 0 seconds"),
        ({"drop": 0.1}, "unknown fault setting(s) drop; known: delay_rate, delay_s"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_invalid_configs_are_refused_with_a_clear_message(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(FaultConfigInvalid) as refused:
        FaultConfig.from_dict(data)

    assert message in str(refused.value)
    assert isinstance(refused.value, Invalid)
