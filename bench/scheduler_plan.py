"""Planner benchmark: the time of one pure `planner.plan` pass over 1,000 and 5,000 instances.

Run from the repository root with the venv active:

    python -m bench.scheduler_plan                 # 1k and 5k instances, 30 passes each
    python -m bench.scheduler_plan --passes 5      # a quick look
    python -m bench.scheduler_plan --out /tmp/plan.json

Each fleet is built in memory (no I/O: the planner is pure) with instances of the cluster, each
with a few attributes, and one task per instance (the environment's, plus as many tasks of
another environment that the planner must skip), in four shapes:
  steady   every instance runs an available task of the target revision: nothing to do
  fresh    no task of ours yet: a start on every instance
  rolling  half the fleet updated, maxUnavailable 10%: budgeted stops, waits on the budget
  surging  half the fleet updated, maxSurge 10%: surge starts next to old tasks
Figures: min / p50 / max milliseconds per pass (time.perf_counter, GC left on, as in the
controller). Target (issue 6): 5,000 instances in <= 50 ms per pass; PASS/MISS for information,
never asserted. Writes bench/results/scheduler_plan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from blox.model.daemon import Constraint, Revision, RolloutPolicy, Share
from blox.scheduler.plan import planner
from blox.scheduler.plan.snapshot import (
    Desired,
    Observed,
    ObservedInstance,
    ObservedTask,
    Pending,
    TaskNeeds,
    group_of,
)

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 5_000)
TARGET_MS = 50.0
TARGET_SIZE = 5_000
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER = f"{ACCOUNT}:cluster/bench"
console = Console(width=None if sys.stdout.isatty() else 120)


def definition(revision: int) -> str:
    return f"{ACCOUNT}:task-definition/daemon:{revision}"


def revision(policy: RolloutPolicy) -> Revision:
    return Revision(
        number=2,
        task_definition=definition(2),
        cluster_arn=CLUSTER,
        constraints=(Constraint("stack", "==", "prod"),),
        rollout=policy,
    )


def instances(n: int) -> tuple[ObservedInstance, ...]:
    return tuple(
        ObservedInstance(
            container_instance_arn=f"{ACCOUNT}:container-instance/bench/{k:032x}",
            status="ACTIVE",
            attributes={"stack": "prod", "ecs.os-type": "linux", "ecs.capability.docker": None},
            remaining_cpu=1024,
            remaining_memory=2048,
            other_tasks=1,
        )
        for k in range(n)
    )


def tasks(fleet: tuple[ObservedInstance, ...], *, updated: float) -> tuple[ObservedTask, ...]:
    """One task of ours per instance (a share `updated` at the target revision) and one of
    another environment per instance."""
    cut = int(len(fleet) * updated)
    out = []
    for k, inst in enumerate(fleet):
        for env, rev in (("daemon", 2 if k < cut else 1), ("other", 1)):
            out.append(
                ObservedTask(
                    task_arn=f"{ACCOUNT}:task/bench/{env}{k:027x}",
                    container_instance_arn=inst.container_instance_arn,
                    task_definition_arn=definition(rev),
                    last_status="RUNNING",
                    started_by="0b0e7c2e-3f7e-4c55-9a59-5a1c1d1f0c00",
                    group=group_of(env, rev),
                    health_status="HEALTHY",
                    running_since=NOW - timedelta(minutes=5),
                )
            )
    return tuple(out)


def shapes(n: int) -> dict[str, tuple[Desired, Observed]]:
    fleet = instances(n)
    needs = TaskNeeds(cpu=256, memory=512, has_health_check=True)
    rolling = revision(RolloutPolicy(max_unavailable=Share(10, percent=True), min_ready_s=30))
    surging = revision(RolloutPolicy(max_surge=Share(10, percent=True), min_ready_s=30))
    others = tuple(t for t in tasks(fleet, updated=1.0) if t.group == group_of("other", 1))
    half = tasks(fleet, updated=0.5)
    return {
        "steady": (Desired("daemon", rolling, needs), Observed(fleet, tasks(fleet, updated=1.0))),
        "fresh": (Desired("daemon", rolling, needs), Observed(fleet, others)),
        "rolling": (Desired("daemon", rolling, needs), Observed(fleet, half)),
        "surging": (Desired("daemon", surging, needs), Observed(fleet, half)),
    }


def timed(call: Callable[[], Any], passes: int) -> list[float]:
    call()  # warm-up
    samples = []
    for _ in range(passes):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def measure(passes: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for n in SIZES:
        for shape, (want, observed) in shapes(n).items():
            plan = planner.plan(desired=want, observed=observed, pending=Pending(), now=NOW)
            ms = timed(
                lambda w=want, o=observed: planner.plan(  # type: ignore[misc]
                    desired=w, observed=o, pending=Pending(), now=NOW
                ),
                passes,
            )
            results[f"{n} {shape}"] = {
                "instances": n,
                "tasks": len(observed.tasks),
                "shape": shape,
                "passes": passes,
                "starts": len(plan.starts),
                "stops": len(plan.stops),
                "waits": len(plan.waits),
                "min_ms": min(ms),
                "p50_ms": statistics.median(ms),
                "max_ms": max(ms),
            }
    return results


def report(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    table = Table(title="planner.plan, one pass (ms)")
    for column in ("fleet", "tasks", "starts", "stops", "waits", "min", "p50", "max", "target"):
        table.add_column(column, justify="left" if column == "fleet" else "right")
    verdicts = []
    for name, row in results.items():
        verdict = ""
        if row["instances"] == TARGET_SIZE:
            verdict = "PASS" if row["p50_ms"] <= TARGET_MS else "MISS"
            verdicts.append({"figure": name, "target_ms": TARGET_MS, "verdict": verdict})
        table.add_row(
            name,
            str(row["tasks"]),
            str(row["starts"]),
            str(row["stops"]),
            str(row["waits"]),
            f"{row['min_ms']:.1f}",
            f"{row['p50_ms']:.1f}",
            f"{row['max_ms']:.1f}",
            f"≤ {TARGET_MS:.0f} {verdict}" if verdict else "",
        )
    console.print(table)
    return verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=30, help="timed passes per fleet shape")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/scheduler_plan.json")
    args = parser.parse_args(argv)
    results = measure(args.passes)
    verdicts = report(results)
    record = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "results": results,
        "targets": verdicts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"written {args.out}")


if __name__ == "__main__":
    main()
