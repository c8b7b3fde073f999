"""Helpers of `bench.css`: ECS events produced by the simulator's own state, in process.

An `EcsState` (blox.sim) on a `SteppedClock` that only this module moves places, runs and
stops tasks; a listener collects the `EntityChange`s it announces and `EnvelopeFactory` (the
simulator's publisher path) turns them into the SQS message bodies AWS would deliver. Two
shapes:

- `churn`: task lifecycles in commit order (PENDING, RUNNING, STOPPED, and the container
  instance changes each placement and stop causes), every change of every entity: what the
  ingest section feeds through SQS.
- `fleet`: the last change of every task and instance of a large fleet (90 % RUNNING, 5 %
  STOPPED, 5 % PENDING; 20 startedBy values, 5 families, several clusters): what the list
  section loads through the processor. Generation runs with the cyclic GC off (it makes
  millions of short-lived objects and no cycles worth collecting).
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from blox.sim import events
from blox.sim.chaos import register_instances
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig

__all__ = ["FAMILIES", "STARTED_BY", "Fleet", "SteppedClock", "churn", "fleet", "summary"]

STARTED_BY = [f"svc-{i:02d}" for i in range(20)]
FAMILIES = [f"app-{i}" for i in range(5)]
TIMING = LifecycleTiming(pending_s=(0.5, 1.5), stopping_s=(0.3, 0.8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class SteppedClock:
    """A `blox.clock.Clock` that moves only when `step` is called (generation is synchronous)."""

    def __init__(self) -> None:
        self._elapsed = 0.0

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return datetime.fromtimestamp(T0.timestamp() + self._elapsed, UTC)

    async def sleep(self, seconds: float) -> None:  # never awaited here; the protocol wants it
        self._elapsed += max(0.0, seconds)

    def step(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        self._elapsed += seconds


@dataclass
class Fleet:
    """Generated events and what a query needs to know about them."""

    bodies: list[str]
    clusters: dict[str, str] = field(default_factory=dict)  # name -> ARN
    instances: list[str] = field(default_factory=list)  # container instance ARNs
    tasks: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # task lastStatus -> count
    last_versions: dict[str, int] = field(default_factory=dict)  # ARN -> highest version
    task_status: dict[str, str] = field(default_factory=dict)  # task ARN -> final lastStatus


@contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _state(seed: int, clusters: list[str], per_cluster: int) -> tuple[EcsState, SteppedClock]:
    clock = SteppedClock()
    state = EcsState(clock=clock, config=SimConfig(seed=seed, timing=TIMING))
    for name in clusters:
        register_instances(state, cluster=name, count=per_cluster)
    for family in FAMILIES:
        container = {"name": "main", "image": "nginx", "cpu": 64, "memory": 128}
        state.register_task_definition({"family": family, "containerDefinitions": [container]})
    return state, clock


def _arn_of(change: EntityChange) -> str:
    detail = change.detail
    return str(detail.get("taskArn") or detail["containerInstanceArn"])


def _bodies(changes: list[EntityChange], seed: int) -> list[str]:
    factory = events.EnvelopeFactory(random.Random(seed))
    return [events.envelope_json(factory.build(change)) for change in changes]


def _fleet(bodies: list[str], state: EcsState, final: dict[str, EntityChange]) -> Fleet:
    """A `Fleet` of `bodies`; `final` is the last change of each entity (versions only rise)."""
    out = Fleet(bodies=bodies)
    out.clusters = {arn.rsplit("/", 1)[-1]: arn for arn in state.clusters.active_arns()}
    out.instances = [i.arn for i in state.instances.by_arn.values()]
    for arn, change in final.items():
        out.last_versions[arn] = int(change.detail["version"])
        if change.kind == "task":
            status = change.detail["lastStatus"]
            out.task_status[arn] = status
            out.statuses[status] = out.statuses.get(status, 0) + 1
    out.tasks = len(out.task_status)
    return out


def churn(count: int, *, cluster: str, instances: int = 100, seed: int = 1) -> Fleet:
    """The first `count` changes of a churning cluster: starts, runs and stops, in order."""
    with _gc_off():
        state, clock = _state(seed, [cluster], instances)
        changes: list[EntityChange] = []
        state.listeners.append(changes.append)
        arns = [i.arn for i in state.instances.by_arn.values()]
        rng = random.Random(seed)
        running: list[str] = []
        turn = 0
        while len(changes) < count:
            chunk = arns[(turn * 10) % len(arns) :][:10]
            placed, _ = state.start_task(
                cluster=cluster,
                task_definition=rng.choice(FAMILIES),
                instances=chunk,
                started_by=rng.choice(STARTED_BY),
            )
            running.extend(t["taskArn"] for t in placed)
            while len(running) > 2 * len(arns):  # stop a random task: lifecycles, not a fill-up
                state.stop_task(cluster=cluster, task=running.pop(rng.randrange(len(running))))
            clock.step(0.1)
            state.tick()
            turn += 1
        kept = changes[:count]
        return _fleet(_bodies(kept, seed), state, {_arn_of(c): c for c in kept})


def fleet(*, instances: int, tasks: int, clusters: int = 4, seed: int = 1) -> Fleet:
    """The last change of every task and instance of a fleet of `instances` running `tasks`."""
    names = [f"fleet-{n}" for n in range(clusters)]
    with _gc_off():
        state, clock = _state(seed, names, instances // clusters)
        last: dict[str, EntityChange] = {}

        def keep(change: EntityChange) -> None:
            last[_arn_of(change)] = change

        state.listeners.append(keep)
        rng = random.Random(seed)
        by_cluster: dict[str, list[str]] = {name: [] for name in names}
        for instance in state.instances.by_arn.values():
            by_cluster[instance.cluster_arn.rsplit("/", 1)[-1]].append(instance.arn)
        rounds = max(1, tasks // max(1, instances))
        started: list[tuple[str, str]] = []
        for number in range(rounds):
            if number == rounds - 1:  # the last round stays PENDING; stop every 19th task before
                for cluster, arn in started[::19]:
                    state.stop_task(cluster=cluster, task=arn)
                clock.step(2.0)
                state.tick()
            for name, arns in by_cluster.items():
                for start in range(0, len(arns), 10):
                    placed, _ = state.start_task(
                        cluster=name,
                        task_definition=rng.choice(FAMILIES),
                        instances=arns[start : start + 10],
                        started_by=rng.choice(STARTED_BY),
                    )
                    started.extend((name, t["taskArn"]) for t in placed)
        return _fleet(_bodies(list(last.values()), seed), state, last)


def summary(fleet_: Fleet) -> dict[str, Any]:
    """Counts for the JSON record."""
    return {
        "events": len(fleet_.bodies),
        "tasks": fleet_.tasks,
        "instances": len(fleet_.instances),
        "clusters": len(fleet_.clusters),
        "task_statuses": dict(sorted(fleet_.statuses.items())),
    }
