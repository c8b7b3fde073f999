"""blox.model: pure domain values shared by every box (ARNs, ECS events, stored records).

Nothing here performs I/O or reads the clock; it imports only the standard library and
`blox.errors`. Callers: `blox.css` (ingest, apply, processor) and, later, the scheduler.
"""

from __future__ import annotations

from blox.model import arn, ecs, errors, events

__all__ = ["arn", "ecs", "errors", "events"]
