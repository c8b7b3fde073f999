"""Event-stream faults: duplicate, reorder, delay and drop envelopes on their way to the sink.

`EventFaults` is the pure core: `apply(envelope, now)` returns the `Release`s (when, what) that
one envelope turns into, `due(now)` the reorder windows held too long, `flush()` everything
held. `now` is the pump clock's monotonic seconds; randomness comes from the injected, seeded
`random.Random`. `sim/pump.py` is the async shell that honours the release times.

Assumptions / Invariants:
- Per envelope, in this order: drop (`drop_rate`); else duplicate (`duplicate_rate`: the same
  envelope, same id and version, twice); each copy is delayed by `delay_s` with `delay_rate`;
  then, if `reorder_window` > 1, held until the window is full (or `reorder_hold_s` passed)
  and released shuffled.
- Nothing is lost but what is counted as dropped: once flushed,
  `published == received - dropped + duplicated`, and every counter says what really happened.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from blox.errors import Invalid
from blox.sim.events import Envelope


class FaultConfigInvalid(Invalid):
    """A fault setting is unknown, of the wrong type, or out of range."""


RATES = ("duplicate_rate", "drop_rate", "delay_rate")


@dataclass(frozen=True)
class FaultConfig:
    """Which faults to inject; the defaults inject none."""

    duplicate_rate: float = 0.0  # share of envelopes sent twice
    drop_rate: float = 0.0  # share of envelopes never sent
    delay_rate: float = 0.0  # share of envelopes held back by delay_s
    delay_s: float = 0.0
    reorder_window: int = 0  # 0 or 1: no reordering; N: release N envelopes shuffled
    reorder_hold_s: float = 1.0  # release a partial window once its oldest waited this long

    def __post_init__(self) -> None:
        for name in (*RATES, "delay_s", "reorder_hold_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultConfigInvalid(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise FaultConfigInvalid(f"{name} must be finite, got {value!r}")
        for name in RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FaultConfigInvalid(
                    f"{name} must be between 0 and 1, got {getattr(self, name)}"
                )
        if self.delay_s < 0:
            raise FaultConfigInvalid(f"delay_s must be >= 0 seconds, got {self.delay_s}")
        if self.delay_rate > 0 and self.delay_s == 0:
            raise FaultConfigInvalid(
                "delay_rate > 0 needs delay_s > 0 (a delay of 0 s does nothing)"
            )
        if self.reorder_hold_s <= 0:
            raise FaultConfigInvalid(
                f"reorder_hold_s must be > 0 seconds, got {self.reorder_hold_s}"
            )
        window = self.reorder_window
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise FaultConfigInvalid(f"reorder_window must be an integer >= 0, got {window!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FaultConfig:
        """Build from plain data (a JSON object, CLI flags); unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultConfigInvalid(
                f"unknown fault setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)  # type: ignore[arg-type]  # types are checked in __post_init__

    def to_dict(self) -> dict[str, float | int]:
        """Plain data that `from_dict` turns back into an equal config."""
        return asdict(self)


@dataclass
class FaultCounters:
    """What the faults did; compare with what the consumer saw."""

    received: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    reordered: int = 0  # envelopes released at another place in their window than they arrived
    published: int = 0  # envelopes handed on to the sink, duplicates included


@dataclass(frozen=True)
class Release:
    """Hand `envelope` to the sink at monotonic time `at` (seconds)."""

    at: float
    envelope: Envelope


class EventFaults:
    """The pure fault core: envelopes in, timed releases out, every fault counted."""

    def __init__(self, config: FaultConfig, *, rng: random.Random) -> None:
        self.config = config
        self.counters = FaultCounters()
        self._rng = rng
        self._window: list[Release] = []
        self._window_opened_at = 0.0

    def reconfigure(self, config: FaultConfig) -> None:
        """Inject `config` from the next envelope on; a held reorder window stays held until
        it fills or its hold time passes (`due`), so nothing is lost by a change."""
        self.config = config

    def apply(self, envelope: Envelope, now: float) -> list[Release]:
        """The releases one arriving envelope turns into (none if dropped or held)."""
        self.counters.received += 1
        config = self.config
        if config.drop_rate and self._rng.random() < config.drop_rate:
            self.counters.dropped += 1
            return []
        copies = 1
        if config.duplicate_rate and self._rng.random() < config.duplicate_rate:
            copies = 2
            self.counters.duplicated += 1
        releases = []
        for _ in range(copies):
            at = now
            if config.delay_rate and self._rng.random() < config.delay_rate:
                at = now + config.delay_s
                self.counters.delayed += 1
            releases.append(Release(at=at, envelope=envelope))
        if config.reorder_window <= 1:
            return self._count(releases)
        out: list[Release] = []
        for release in releases:
            if not self._window:
                self._window_opened_at = now
            self._window.append(release)
            if len(self._window) >= config.reorder_window:
                out.extend(self._shuffle_window(now))
        return out

    def due(self, now: float) -> list[Release]:
        """Release a partial reorder window whose oldest envelope has waited reorder_hold_s."""
        if self._window and now - self._window_opened_at >= self.config.reorder_hold_s:
            return self._shuffle_window(now)
        return []

    def next_deadline(self) -> float | None:
        """When `due` will next release something, if anything is held."""
        if not self._window:
            return None
        return self._window_opened_at + self.config.reorder_hold_s

    def flush(self, now: float) -> list[Release]:
        """Release everything held, shuffled as usual (at shutdown)."""
        return self._shuffle_window(now) if self._window else []

    @property
    def held(self) -> int:
        """Envelopes waiting in the reorder window."""
        return len(self._window)

    def _shuffle_window(self, now: float) -> list[Release]:
        window, self._window = self._window, []
        order = list(range(len(window)))
        self._rng.shuffle(order)
        self.counters.reordered += sum(1 for place, index in enumerate(order) if place != index)
        return self._count([Release(max(window[i].at, now), window[i].envelope) for i in order])

    def _count(self, releases: list[Release]) -> list[Release]:
        self.counters.published += len(releases)
        return releases
