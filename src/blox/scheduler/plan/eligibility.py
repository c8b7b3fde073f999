"""Should this container instance run the daemon? One `Placement` per instance, from its status,
its agent and the target revision's attribute constraints. Pure.

Callers: `buckets.classify` (which turns a placement and the instance's tasks into a bucket).

Assumptions / Invariants:
- Only an ACTIVE instance with a connected agent whose attributes meet every constraint of the
  target revision gets a new task (ELIGIBLE). The cluster is the caller's filter.
- An ACTIVE or DRAINING instance whose agent is disconnected is never started on and never
  stopped on (its state is unknown: a start could double up once it reconnects); if it would be
  eligible it still counts as desired, and as unavailable.
- DRAINING keeps the daemon until the instance's other tasks are gone (stopped last).
- An instance that is not ACTIVE or DRAINING (INACTIVE, DEREGISTERING, …) or that the CSS no
  longer shows (GONE) never gets a task, and any task of ours still on it is stopped.
"""

from __future__ import annotations

import enum

from blox.model.daemon import Revision
from blox.scheduler.plan.snapshot import ACTIVE, DRAINING, ObservedInstance

__all__ = ["Placement", "judge"]


class Placement(enum.Enum):
    """Where an instance stands with respect to the daemon."""

    ELIGIBLE = "eligible"  # ACTIVE, agent connected, constraints hold: runs one task
    DISCONNECTED = "disconnected"  # would be eligible, but its agent is disconnected: wait
    DRAINING = "draining"  # DRAINING, agent connected: no new task, ours stopped last
    UNREACHABLE = "unreachable"  # not wanted (draining or unmatched), agent disconnected: wait
    UNMATCHED = "unmatched"  # ACTIVE, agent connected, a constraint does not hold: stop ours
    NOT_ACTIVE = "not-active"  # INACTIVE or another status that runs nothing: stop ours
    GONE = "gone"  # not among the observed instances (a task of ours points at it): stop ours

    @property
    def is_desired(self) -> bool:
        """Whether the instance counts in `DaemonStatus.desired` (it should run the daemon)."""
        return self in (Placement.ELIGIBLE, Placement.DISCONNECTED)


def judge(instance: ObservedInstance | None, *, revision: Revision) -> Placement:
    """The placement of `instance` (None: gone) for the target `revision`."""
    if instance is None:
        return Placement.GONE
    if instance.status == ACTIVE:
        matches = revision.selects(instance.attributes)
        if instance.agent_connected:
            return Placement.ELIGIBLE if matches else Placement.UNMATCHED
        return Placement.DISCONNECTED if matches else Placement.UNREACHABLE
    if instance.status == DRAINING:
        return Placement.DRAINING if instance.agent_connected else Placement.UNREACHABLE
    return Placement.NOT_ACTIVE
