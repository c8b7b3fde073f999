"""The task lifecycle, PENDING -> RUNNING -> STOPPED, and when each due step happens.

Assumptions:
  - Time is the injected clock's: `monotonic()` orders due steps, `now()` stamps records.
  - Every random delay comes from the state's seeded `random.Random`, so a run replays.
Invariants:
  - A task's lastStatus only moves forward: PENDING -> RUNNING -> STOPPED (or PENDING -> STOPPED).
  - desiredStatus STOPPED is set before (or together with) lastStatus STOPPED, never after.
  - A due step is re-checked when it fires: a step for a task that moved on is dropped, so
    stale entries in the queue are harmless and never need to be cancelled.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from blox.sim.state.tasks import Task

Step = Literal["run", "stop", "expire_task", "expire_instance"]


@dataclass(frozen=True, slots=True)
class LifecycleTiming:
    """How long each transition takes, in seconds; ranges are (low, high), drawn uniformly."""

    pending_s: tuple[float, float] = (1.0, 3.0)
    stopping_s: tuple[float, float] = (0.5, 2.0)
    stopped_retention_s: float = 3600.0
    inactive_retention_s: float = 3600.0


class DueSteps:
    """A queue of lifecycle steps ordered by the monotonic time they fall due."""

    def __init__(self, *, timing: LifecycleTiming, rng: random.Random) -> None:
        self.timing = timing
        self._rng = rng
        self._heap: list[tuple[float, int, Step, int]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def jitter(self, span: tuple[float, float]) -> float:
        """A delay drawn from `span` with the seeded RNG."""
        low, high = span
        return low if high <= low else self._rng.uniform(low, high)

    def schedule(self, step: Step, seq: int, *, at: float) -> None:
        """Make `step` for entity `seq` due at monotonic time `at`."""
        heapq.heappush(self._heap, (at, next(self._order), step, seq))

    def entries(self) -> list[tuple[float, Step, int]]:
        """Every queued step as (due, step, seq), in the order they fall due (for snapshots)."""
        return [(at, step, seq) for at, _, step, seq in sorted(self._heap)]

    def pop_due(self, now: float) -> tuple[Step, int] | None:
        """The next step due at `now`, or None."""
        if self._heap and self._heap[0][0] <= now:
            _, _, step, seq = heapq.heappop(self._heap)
            return step, seq
        return None


def start_running(task: Task, *, now: datetime, pending_s: float) -> None:
    """PENDING -> RUNNING: image pulled, containers started, connectivity established."""
    task.last_status = "RUNNING"
    task.connectivity_at = task.created_at + timedelta(seconds=min(0.5, pending_s / 4))
    task.pull_started_at = task.created_at + timedelta(seconds=pending_s / 4)
    task.pull_stopped_at = task.created_at + timedelta(seconds=pending_s * 3 / 4)
    task.started_at = now


def begin_stopping(
    task: Task,
    *,
    now: datetime,
    reason: str,
    stop_code: str | None,
    exit_code: int | None = None,
    container_reason: str | None = None,
) -> None:
    """desiredStatus -> STOPPED: record why; lastStatus follows in `finish_stopping`."""
    task.desired_status = "STOPPED"
    task.stopping_at = now
    task.stopped_reason = reason
    task.stop_code = stop_code
    task.exit_code = exit_code
    task.container_reason = container_reason


def finish_stopping(task: Task, *, now: datetime) -> None:
    """lastStatus -> STOPPED; a container that ran and was stopped by request exits 0."""
    if task.exit_code is None and task.started_at is not None:
        task.exit_code = 0
    task.last_status = "STOPPED"
    task.execution_stopped_at = now
    task.stopped_at = now
