"""State-level faults: agents that drop and come back, drains, killed tasks, refused starts,
harder throttling, extra instances, and the random task killer, every one counted.

`Chaos` is the shell that the admin routes (`sim/admin.py`) and `sim/service.py` drive; it
calls only `EcsState`'s public operations and fault hooks, so every fault is announced as the
same events a real change would be. It must run on the server's event loop (the one thread
that touches the state). Randomness comes from its own seeded `random.Random`, time from the
injected `Clock`, so a seeded run kills the same tasks at the same clock times.

Invariant: `counters` say what was done, not what was asked: a disconnect of an instance
whose agent is already gone, or a kill of a task already STOPPED, counts nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blox.clock import Clock
from blox.errors import Invalid
from blox.sim import errors
from blox.sim.state import EcsState
from blox.sim.state.tasks import Task
from blox.sim.throttle import Throttle

KILL_TICK_S = 0.1  # the random killer decides this often (clock time)
UPDATE_STATE_BATCH = 10  # UpdateContainerInstancesState takes at most 10 instances
RUNNING_KILL = ("EssentialContainerExited", "Essential container in task exited", 137)
PENDING_KILL = ("TaskFailedToStart", "Task failed to start", None)


class ChaosInvalid(Invalid):
    """A state-level fault setting is out of range (e.g. a negative kill rate)."""


@dataclass
class StateFaultCounters:
    """What the state-level faults did; compare with what clients and consumers saw."""

    killed: int = 0  # tasks moved to STOPPED by a kill (random or asked for)
    disconnected: int = 0
    reconnected: int = 0
    drained: int = 0  # instances moved from ACTIVE to DRAINING
    start_failures_set: int = 0  # instances whose StartTask placements now fail
    start_failures_cleared: int = 0
    throttle_changes: int = 0
    instances_added: int = 0


class Chaos:
    """Injects state-level faults into one `EcsState` (and its `Throttle`) and counts them."""

    def __init__(
        self,
        state: EcsState,
        *,
        throttle: Throttle,
        clock: Clock,
        rng: random.Random,
        kill_rate_per_s: float = 0.0,
    ) -> None:
        self.state = state
        self.throttle = throttle
        self.counters = StateFaultCounters()
        self._clock = clock
        self._rng = rng
        self.kill_rate_per_s = check_kill_rate(kill_rate_per_s)
        self._initial_rates = dict(throttle.rates)

    # -- instances -------------------------------------------------------------------------

    def add_instances(
        self,
        *,
        cluster: str,
        count: int,
        cpu: int | None = None,
        memory: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Register `count` container instances (created cluster if needed); their ARNs."""
        arns = register_instances(
            self.state, cluster=cluster, count=count, cpu=cpu, memory=memory, attributes=attributes
        )
        self.counters.instances_added += len(arns)
        return arns

    def set_agents(self, *, cluster: str, instances: list[str], connected: bool) -> int:
        """Disconnect or reconnect agents; how many changed."""
        targets = [self.state.instance_of(self.state.clusters.get(cluster), i) for i in instances]
        changed = [t for t in targets if t.status != "INACTIVE" and t.agent_connected != connected]
        for target in changed:
            hook = self.state.reconnect_agent if connected else self.state.disconnect_agent
            hook(cluster, target.arn)
        if connected:
            self.counters.reconnected += len(changed)
        else:
            self.counters.disconnected += len(changed)
        return len(changed)

    def drain(self, *, cluster: str, instances: list[str]) -> int:
        """Set DRAINING, as UpdateContainerInstancesState would; how many were ACTIVE."""
        target = self.state.clusters.get(cluster)
        found = [self.state.instance_of(target, ref) for ref in instances]
        active = [i.arn for i in found if i.status == "ACTIVE"]
        for start in range(0, len(active), UPDATE_STATE_BATCH):
            self.state.update_container_instances_state(
                cluster=cluster, refs=active[start : start + UPDATE_STATE_BATCH], status="DRAINING"
            )
        self.counters.drained += len(active)
        return len(active)

    def fail_starts(self, *, cluster: str, instances: list[str], reason: str) -> None:
        """StartTask / RunTask refuse these instances with `reason` until cleared."""
        before = set(self.state.start_failures)
        self.state.fail_starts(cluster, instances, reason)
        self.counters.start_failures_set += len(set(self.state.start_failures) - before)

    def clear_start_failures(self, *, instances: list[str] | None = None) -> None:
        """Let StartTask place on these (or all) instances again."""
        before = len(self.state.start_failures)
        self.state.clear_start_failures(instances)
        self.counters.start_failures_cleared += before - len(self.state.start_failures)

    # -- tasks -----------------------------------------------------------------------------

    def kill(
        self, *, cluster: str | None = None, task: str | None = None, count: int = 1
    ) -> list[str]:
        """Kill one named task, or `count` random live tasks (of `cluster`, or of any)."""
        if task is not None:
            if cluster is None:
                raise ChaosInvalid("killing a named task needs its cluster")
            found = self.state.tasks.find(self.state.clusters.get(cluster).arn, task)
            if found is None:
                raise errors.InvalidParameter("The referenced task was not found.")
            victims = [found] if _is_live(found) else []
        else:
            cluster_arn = None if cluster is None else self.state.clusters.get(cluster).arn
            live = [
                t
                for t in self.state.tasks.by_seq.values()
                if _is_live(t) and cluster_arn in (None, t.cluster_arn)
            ]
            victims = self._rng.sample(live, min(count, len(live)))
        for victim in victims:
            self._kill_one(victim)
        return [v.arn for v in victims]

    def _kill_one(self, task: Task) -> None:
        stop_code, reason, exit_code = (
            RUNNING_KILL if task.last_status == "RUNNING" else PENDING_KILL
        )
        self.state.kill_task(
            task.cluster_arn, task.arn, reason=reason, stop_code=stop_code, exit_code=exit_code
        )
        self.counters.killed += 1

    async def run_killer(self, *, tick_s: float = KILL_TICK_S) -> None:
        """Kill random live tasks at `kill_rate_per_s` on average, forever (clock time)."""
        while True:
            await self._clock.sleep(tick_s)
            expected = self.kill_rate_per_s * tick_s
            count = int(expected) + (self._rng.random() < expected - int(expected))
            if count:
                self.kill(count=count)

    # -- throttling ------------------------------------------------------------------------

    def set_throttle(self, *, operation: str, capacity: float, rate_per_s: float) -> None:
        """Change one operation's token bucket now."""
        for name, value in (("capacity", capacity), ("rate_per_s", rate_per_s)):
            if not math.isfinite(value) or value < 0:
                raise ChaosInvalid(f"{name} must be a finite number >= 0, got {value}")
        self.throttle.set_rate(operation, capacity=capacity, rate_per_s=rate_per_s)
        self.counters.throttle_changes += 1

    def reset_throttle(self) -> None:
        """Put every bucket back to the rates it had when this `Chaos` was built (refilled)."""
        if self.throttle.rates != self._initial_rates:
            self.counters.throttle_changes += 1
        self.throttle.rates = dict(self._initial_rates)
        self.throttle.buckets.clear()

    def describe(self) -> dict[str, Any]:
        """The state-level faults in force, as plain data."""
        return {
            "kill_rate_per_s": self.kill_rate_per_s,
            "start_failures": dict(self.state.start_failures),
            "throttle": {op: list(rate) for op, rate in sorted(self.throttle.rates.items())},
        }


def register_instances(
    state: EcsState,
    *,
    cluster: str,
    count: int,
    cpu: int | None = None,
    memory: int | None = None,
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """Create `cluster` if needed and register `count` instances in it; their ARNs."""
    state.create_cluster(name=cluster)
    resources = [
        {"name": name, "type": "INTEGER", "integerValue": value}
        for name, value in (("CPU", cpu), ("MEMORY", memory))
        if value is not None
    ]
    attrs = [{"name": k, "value": v} for k, v in (attributes or {}).items()]
    return [
        state.register_container_instance(
            cluster=cluster, total_resources=resources or None, attributes=attrs or None
        )["containerInstanceArn"]
        for _ in range(count)
    ]


def check_kill_rate(value: object) -> float:
    """`value` as a kill rate (tasks per second, finite, >= 0); ChaosInvalid otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChaosInvalid(f"kill_rate_per_s must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ChaosInvalid(f"kill_rate_per_s must be a finite number >= 0, got {value}")
    return float(value)


def _is_live(task: Task) -> bool:
    return task.last_status != "STOPPED" and task.desired_status != "STOPPED"
