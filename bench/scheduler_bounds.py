"""Helpers of `bench.scheduler`: the lower bounds the simulator's limits set, and where a
measured run spent its time. Pure: values in, dicts of figures out.

Limits (read from the simulator's own code, so the bounds follow it): StartTask's bucket
(burst B = 100 calls, refilled at r = 40 calls/s, 10 instances a call), StopTask's (burst 100,
40/s, one task a call), and the lifecycle (`LifecycleTiming`: PENDING → RUNNING after
p ~ U(1, 3) s, stop requested → STOPPED after s ~ U(0.5, 2) s).

Convergence of a new environment on N instances (every one runs a RUNNING task):
    bound = N / (10 r) + p_max                        the issue's formula (N/400 s + 3 s)
    floor = max(0, ceil(N/10) - B) / r + p_max        the same with the bucket's burst spent first
The last of ceil(N/10) StartTask calls cannot go out before the bucket allows it, and a task
it starts needs its pending delay; p_max (3 s) because the last few hundred tasks draw it
many times. The target judges `bound`; `floor` is what a perfect client could reach.

Rolling update of N instances with maxUnavailable U (maxSurge 0, no health check, min-ready 0):
each instance's replacement holds one of the U "unavailable" slots from its StopTask until the
new task is RUNNING: at least its stopping delay s_i (the scheduler must see the old task
STOPPED before it starts the new one on the instance: one task per instance) plus the new
task's pending delay p_i. With U slots, any schedule needs
    slots = N (E[s] + E[p]) / U = N x 3.25 s / U          (32.5 s for N = 1,000, U = 100)
and cannot beat the StopTask bucket either: (N - 100) / 40 + s_min + p_min (24 s at 1,000);
StartTask (ceil(N/10) calls) is within its burst. bound = the largest of the three. The
`waves` figure (N/U waves, each a whole stop then a whole start: (N/U)(s_max + p_max) = 50 s)
is what a wave-at-a-time scheduler would need; a level-triggered one refills a slot the moment
it frees, so `slots`, not `waves`, is the real minimum. `realized_slots` is the same sum over
the delays the simulator actually drew in the run (Σ (s_i + p_i) / U).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.scheduler_watch import Placed
from blox.sim.state import LifecycleTiming
from blox.sim.throttle import ECS_RATES

__all__ = ["convergence", "convergence_bound", "rolling", "rolling_bound", "pacing"]

TIMING = LifecycleTiming()
START_BURST, START_RATE = ECS_RATES["StartTask"]
STOP_BURST, STOP_RATE = ECS_RATES["StopTask"]
START_BATCH = 10


def _rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def convergence_bound(n: int) -> dict[str, float]:
    """The issue's bound for a new environment on `n` instances, and the burst-aware floor."""
    calls = math.ceil(n / START_BATCH)
    pending = TIMING.pending_s[1]
    return {
        "start_calls": float(calls),
        "rate_limit_s": n / (START_BATCH * START_RATE),
        "pending_s": pending,
        "bound_s": n / (START_BATCH * START_RATE) + pending,
        "floor_s": max(0, calls - START_BURST) / START_RATE + pending,
    }


def rolling_bound(n: int, max_unavailable: int) -> dict[str, float]:
    """The rolling update's lower bound (see the module docstring) and its parts."""
    stop_mean, pending_mean = _mean(TIMING.stopping_s), _mean(TIMING.pending_s)
    slots = n * (stop_mean + pending_mean) / max_unavailable
    stop_rate = max(0, n - STOP_BURST) / STOP_RATE + TIMING.stopping_s[0] + TIMING.pending_s[0]
    start_rate = max(0, math.ceil(n / START_BATCH) - START_BURST) / START_RATE
    return {
        "max_unavailable": float(max_unavailable),
        "slots_s": slots,
        "stop_rate_s": stop_rate,
        "start_rate_s": start_rate,
        "waves_s": n / max_unavailable * (TIMING.stopping_s[1] + TIMING.pending_s[1]),
        "bound_s": max(slots, stop_rate, start_rate),
    }


def pacing(calls: Mapping[str, list[float]], t0: float, t1: float) -> dict[str, float]:
    """StartTask or StopTask calls the simulator saw within [t0, t1]: accepted, throttled,
    the accepted rate, the median gap between two accepted calls, and how late the last
    accepted call was against a client that sends each call the moment the bucket has a token
    (burst first, then one every 1/r s)."""
    ok = [t - t0 for t in calls["ok"] if t0 <= t <= t1]
    throttled = [t for t in calls["throttled"] if t0 <= t <= t1]
    out = {"accepted": float(len(ok)), "throttled": float(len(throttled))}
    if ok:
        ideal_last = max(0, len(ok) - START_BURST) / START_RATE
        out |= {
            "first_s": ok[0],
            "last_s": ok[-1],
            "ideal_last_s": ideal_last,
            "late_s": ok[-1] - ideal_last,
            "rate_per_s": (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else math.nan,
            # back-to-back calls are one client round trip apart: the median gap shows it
            "gap_p50_ms": 1000 * _rank([b - a for a, b in itertools.pairwise(ok)], 0.5),
        }
    return out


def convergence(tasks: Mapping[str, Placed], t0: float) -> dict[str, float]:
    """Where a new environment's time went: StartTask issue times, pending delays, the tail."""
    created = [t.created - t0 for t in tasks.values()]
    pending = [(t.started or t.created) - t.created for t in tasks.values()]
    started = [(t.started or t.created) - t0 for t in tasks.values()]
    return {
        "first_created_s": min(created, default=math.nan),
        "p50_created_s": _rank(created, 0.5),
        "last_created_s": max(created, default=math.nan),
        "pending_mean_s": _mean(pending),
        "pending_max_s": max(pending, default=math.nan),
        "all_running_s": max(started, default=math.nan),
        "tail_s": max(started, default=math.nan) - max(created, default=math.nan),
    }


def rolling(
    old: Mapping[str, Placed], new: Mapping[str, Placed], *, t0: float, max_unavailable: int
) -> dict[str, Any]:
    """Per replacement (old task's StopTask → new task RUNNING): its parts, the realized
    bound, how many instances were unavailable at once at the peak, and on average."""
    # (stop requested, STOPPED, new task created, new task RUNNING) per replaced instance
    spans = [
        (o.stopping, o.stopped, n.created, n.started or n.created)
        for i, n in new.items()
        if (o := old.get(i)) is not None and o.stopping is not None and o.stopped is not None
    ]
    stop = [stopped - stopping for stopping, stopped, _, _ in spans]
    react = [created - stopped for _, stopped, created, _ in spans]
    pending = [running - created for _, _, created, running in spans]
    slot = [running - stopping for stopping, _, _, running in spans]
    edges = sorted([(span[0], 1) for span in spans] + [(span[3], -1) for span in spans])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    end = max((span[3] for span in spans), default=t0)
    figures = {"stop_s": stop, "react_s": react, "pending_s": pending, "slot_s": slot}
    out: dict[str, Any] = {"replacements": len(spans)}
    for name, values in figures.items():
        out[name] = {"mean": _mean(values), "p50": _rank(values, 0.5), "p99": _rank(values, 0.99)}
    out |= {
        "first_stop_s": min((span[0] - t0 for span in spans), default=math.nan),
        "realized_slots_s": (sum(stop) + sum(pending)) / max_unavailable,
        "peak_unavailable": peak,
        "mean_unavailable": sum(slot) / (end - t0) if end > t0 else math.nan,
    }
    return out
