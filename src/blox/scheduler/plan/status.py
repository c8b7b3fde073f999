"""An environment's status counters, as Kubernetes' DaemonSet status shows them. Pure.

Callers: `planner.plan` (counts its buckets into `Plan.status`); the status API and the
deployment records show the result.

Assumptions / Invariants (per container instance, not per task, as in Kubernetes):
- desired: instances that should run the daemon: ACTIVE, constraints met, agent connected or
  not (a disconnected one counts, as an unavailable one).
- current: desired instances running at least one live task of the environment.
- ready / available: desired instances with a task that is ready / available (see
  `readiness`); a disconnected agent's task is neither.
- updated: desired instances running a live task of the target task definition;
  updated_available: those whose target task is available (what completes a deployment).
- unavailable = desired - available; misscheduled: instances that should not run the daemon
  but run a live task of it (unmatched, DRAINING, not ACTIVE, gone).
- current_revision: the revision most current instances run (ties: the older one); equals
  target_revision once the rollout is done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DaemonStatus", "Tally", "count"]


class Tally(Protocol):
    """What `count` reads of one instance's bucket (`buckets.Slot` provides it)."""

    @property
    def is_desired(self) -> bool: ...
    @property
    def live(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    @property
    def available(self) -> bool: ...
    @property
    def updated(self) -> bool: ...
    @property
    def updated_available(self) -> bool: ...
    @property
    def revision(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """The counters of one environment (each a number of container instances)."""

    desired: int
    current: int
    ready: int
    updated: int
    available: int
    unavailable: int
    misscheduled: int
    updated_available: int
    current_revision: int | None  # what most instances run; None while none runs anything
    target_revision: int
    reason: str | None = None  # the reason it waits (a `WaitReason` value), None when it does not


def count(*, slots: Iterable[Tally], target_revision: int, reason: str | None) -> DaemonStatus:
    """Count `slots` into a DaemonStatus.

    slots: one per container instance the planner looked at, in any order.
    target_revision: the number of the revision being rolled out.
    reason: the first wait reason of the plan, or None.
    """
    desired = current = ready = updated = available = misscheduled = updated_available = 0
    revisions: Counter[int] = Counter()
    for slot in slots:
        if not slot.is_desired:
            misscheduled += slot.live > 0
            continue
        desired += 1
        current += slot.live > 0
        ready += slot.ready
        available += slot.available
        updated += slot.updated
        updated_available += slot.updated_available
        if slot.live > 0 and slot.revision is not None:
            revisions[slot.revision] += 1
    current_revision = None
    if revisions:
        current_revision = min(revisions, key=lambda rev: (-revisions[rev], rev))
    return DaemonStatus(
        desired=desired,
        current=current,
        ready=ready,
        updated=updated,
        available=available,
        unavailable=desired - available,
        misscheduled=misscheduled,
        updated_available=updated_available,
        current_revision=current_revision,
        target_revision=target_revision,
        reason=reason,
    )
