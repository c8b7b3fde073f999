"""blox.scheduler.plan: the daemon scheduler's functional core (STYLE B5).

`planner.plan(desired=, observed=, pending=, now=) → Plan` decides, from values only, what to
start, stop and wait for. No asyncio, no I/O, no clock reads: it imports only `blox.model`,
`blox.errors` and the standard library (import-linter and a nested ruff.toml keep it so).
Callers: `blox.scheduler.control` (the shell); the bucket vocabulary is in README.md.
"""

from __future__ import annotations

from blox.scheduler.plan import (
    actions,
    buckets,
    eligibility,
    planner,
    readiness,
    rollout,
    snapshot,
    status,
)

__all__ = [
    "actions",
    "buckets",
    "eligibility",
    "planner",
    "readiness",
    "rollout",
    "snapshot",
    "status",
]
