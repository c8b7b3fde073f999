"""Daemon scheduler benchmark: how fast a deployment converges against the simulator's limits.

Run from the repository root with the venv active:

    python -m bench.scheduler                    # 1,000 + rolling update, then 5,000: ~2-3 min
    python -m bench.scheduler --quick            # 200 instances + rolling update, < 60 s
    python -m bench.scheduler --sizes 1000 --no-rolling --profile   # py-spy on the scheduler

Each size gets a fresh stack of three processes on 127.0.0.1 (`scheduler_stack`): the
simulator (real StartTask / StopTask throttles, default lifecycle timing), a CSS fed by the
simulator's change stream, and the real `blox scheduler` CLI reading that CSS. The bench adds
N container instances (in the simulator, in-process), registers the task definition, waits
for the CSS to hold every instance, creates environment `bench` through the scheduler API
(maxUnavailable 10%), then times from the moment before its deployment is created to the
moment every instance runs a RUNNING task of the target revision as the simulator shows it
(ListTasks + DescribeTasks, paginated; the latest `startedAt`, see `scheduler_watch`). On the
first size it then registers revision 2 and rolls it out (PATCH + a new deployment), timed
the same way. Figures are judged against the lower bounds derived in `scheduler_bounds`:
  - convergence <= 1.25 x (N / (10 x 40 StartTask calls/s) + 3 s pending);
  - rolling update of 1,000 with maxUnavailable 10% <= 1.3 x max(N (E[stop] + E[pending]) /
    U, StopTask's rate): every replacement holds one of U slots for its stopping delay plus
    the new task's pending delay;
  - one planner pass over 5,000 instances <= 50 ms: `bench.scheduler_plan`, run from here.
Where the time went is printed beside each figure: the controller's first action after the
deployment, the StartTask calls the simulator accepted and throttled and their rate, the
pending tail, the CSS apply lag, the scheduler's passes and mean pass time (its /metrics),
and for the rolling update the mean stop / reaction / pending parts of a replacement and the
peak and mean number of unavailable instances. `--profile` samples the scheduler with py-spy
during each timed window and prints its busiest functions. PASS/MISS are for information;
results go to bench/results/scheduler.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench import scheduler_bounds as bounds
from bench import scheduler_plan, scheduler_profile
from bench.scheduler_report import clean, console, limit, print_targets, print_where
from bench.scheduler_stack import Stack, stack
from bench.scheduler_watch import Watcher, scrape

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ENVIRONMENT = "bench"
FAMILY = "bench-daemon"
MAX_UNAVAILABLE_PERCENT = 10
log = Console(stderr=True)


def register_definition(watcher: Watcher, image: str) -> str:
    container = {"name": "agent", "image": image, "cpu": 64, "memory": 128, "essential": True}
    found = watcher.ecs.register_task_definition(family=FAMILY, containerDefinitions=[container])
    return str(found["taskDefinition"]["taskDefinitionArn"])


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


class DeploymentClock(threading.Thread):
    """Polls the deployment until the scheduler marks it completed; remembers when."""

    def __init__(self, api: str, deployment: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{api}/v1/environments/{ENVIRONMENT}/deployments/{deployment}"
        self.completed_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set() and self.completed_at is None:
                if http.get(self.url).json().get("status") == "completed":
                    self.completed_at = time.time()
                self.stop.wait(0.1)


def timed_deployment(
    running: Stack, watcher: Watcher, *, token: str, definition: str, instances: set[str],
    timeout_s: float, profile: Path | None,
) -> dict[str, Any]:  # fmt: skip
    """Create a deployment and watch until every instance runs `definition`; the raw figures."""
    api, css = running.scheduler_url, running.css_url
    httpx.get(f"{css}/_bench/ingest", params={"reset": "true"}, timeout=30)
    before = scrape(f"{api}/metrics")
    sampling = (
        scheduler_profile.sampling(running.pid("scheduler"), profile)
        if profile
        else contextlib.nullcontext(False)
    )
    with sampling:
        t0 = time.time()
        answer = httpx.post(
            f"{api}/v1/environments/{ENVIRONMENT}/deployments",
            params={"deploymentToken": token},
            timeout=30,
        )
        answer.raise_for_status()
        deployment = answer.json()["id"]
        status = DeploymentClock(api, deployment)
        status.start()
        seen = watcher.until_running(
            instances=instances, definition=definition, timeout_s=timeout_s
        )
        status.join(timeout=30)
        status.stop.set()
    after = scrape(f"{api}/metrics")
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    passes = delta.get("blox_scheduler_reconcile_duration_seconds_count", 0.0)
    took = seen.last_started - t0
    calls = httpx.get(f"{running.sim_url}/_bench/calls", timeout=30).json()
    return {
        "t0": t0,
        "seen": seen,
        "deployment": deployment,
        "all_running_s": took,
        "complete": seen.complete,
        "duplicates": seen.duplicates,
        "deployment_completed_s": status.completed_at - t0 if status.completed_at else math.nan,
        "observer": {"polls": seen.polls, **seen.reads},
        "ingest": httpx.get(f"{css}/_bench/ingest", timeout=30).json(),
        "controller": {
            "passes": passes,
            "mean_pass_ms": 1000
            * delta.get("blox_scheduler_reconcile_duration_seconds_sum", 0.0)
            / passes
            if passes
            else math.nan,
            "started": delta.get("blox_scheduler_actions_total{action=started}", 0.0),
            "stopped": delta.get("blox_scheduler_actions_total{action=stopped}", 0.0),
            "refused": delta.get("blox_scheduler_actions_total{action=failed}", 0.0),
        },
        "start_calls": bounds.pacing(calls["StartTask"], t0, t0 + took),
        "stop_calls": bounds.pacing(calls["StopTask"], t0, t0 + took),
        "profile": scheduler_profile.summary(profile) if profile else None,
    }


def converge(
    running: Stack, watcher: Watcher, n: int, profile: Path | None
) -> tuple[dict[str, Any], set[str]]:
    """A new environment on `n` fresh instances; the figures, and the instances."""
    log.print(f"[dim]{n:,} instances: registering, then waiting for the CSS…[/]")
    setup = httpx.post(
        f"{running.sim_url}/_bench/setup", json={"cluster": CLUSTER, "instances": n}, timeout=120
    ).json()
    definition = register_definition(watcher, "agent:1")
    wait_for(
        lambda: (
            httpx.get(f"{running.css_url}/_bench/ingest", timeout=30).json()["total"]
            >= setup["emitted"]
        ),
        "the CSS to hold every instance",
    )
    body = {
        "name": ENVIRONMENT,
        "instanceGroup": {"cluster": CLUSTER},
        "taskDefinition": f"{FAMILY}:1",
        "rollout": {"maxUnavailable": f"{MAX_UNAVAILABLE_PERCENT}%"},
    }
    created = httpx.post(f"{running.scheduler_url}/v1/environments", json=body, timeout=30)
    created.raise_for_status()
    bound = bounds.convergence_bound(n)
    log.print(f"[dim]{n:,} instances: deploying (bound {bound['bound_s']:.1f} s)…[/]")
    raw = timed_deployment(
        running, watcher, token=created.json()["deploymentToken"], definition=definition,
        instances=set(setup["instances"]), timeout_s=max(120.0, 6 * bound["bound_s"]),
        profile=profile,
    )  # fmt: skip
    seen = raw.pop("seen")
    result = {
        "instances": n,
        "bound": bound,
        "ratio": raw["all_running_s"] / bound["bound_s"],
        "ratio_floor": raw["all_running_s"] / bound["floor_s"],
        **raw,
        "where": bounds.convergence(seen.tasks, raw["t0"]),
        "definition": definition,
    }
    return result, set(setup["instances"])


def roll(
    running: Stack, watcher: Watcher, first: dict[str, Any], instances: set[str],
    profile: Path | None,
) -> dict[str, Any]:  # fmt: skip
    """Revision 2 over the converged fleet of `first`, maxUnavailable 10%."""
    n = first["instances"]
    url = f"{running.scheduler_url}/v1/environments/{ENVIRONMENT}/deployments"
    wait_for(
        lambda: (
            httpx.get(f"{url}/{first['deployment']}", timeout=30).json()["status"] == "completed"
        ),
        "the first deployment to complete",
    )
    definition = register_definition(watcher, "agent:2")
    patch = {"taskDefinition": f"{FAMILY}:2", "rollout": {"maxUnavailable": "10%"}}
    updated = httpx.patch(
        f"{running.scheduler_url}/v1/environments/{ENVIRONMENT}", json=patch, timeout=30
    )
    updated.raise_for_status()
    unavailable = n * MAX_UNAVAILABLE_PERCENT // 100
    bound = bounds.rolling_bound(n, unavailable)
    log.print(f"[dim]{n:,} instances: rolling update (bound {bound['bound_s']:.1f} s)…[/]")
    raw = timed_deployment(
        running, watcher, token=updated.json()["deploymentToken"], definition=definition,
        instances=instances, timeout_s=max(180.0, 6 * bound["bound_s"]), profile=profile,
    )  # fmt: skip
    seen = raw.pop("seen")
    old = watcher.stopped_tasks(first["definition"])
    where = bounds.rolling(old, seen.tasks, t0=raw["t0"], max_unavailable=unavailable)
    return {
        "instances": n,
        "bound": bound,
        "ratio": raw["all_running_s"] / bound["bound_s"],
        "ratio_realized": raw["all_running_s"] / where["realized_slots_s"],
        **raw,
        "where": where,
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    scenarios: dict[str, dict[str, Any]] = {}
    for k, n in enumerate(args.sizes):
        (folder / str(n)).mkdir()
        keep = Path(args.profile) if args.profile else folder
        profile = (keep / f"converge-{n}.txt") if args.profile is not None else None
        with stack(
            seed=k, store=args.store, folder=folder / str(n), batch=args.ingest_batch
        ) as running:
            watcher = Watcher(running.sim_url, CLUSTER)
            try:
                first, instances = converge(running, watcher, n, profile)
                scenarios[f"converge {n:,}"] = first
                if k == 0 and args.rolling:
                    profile = (keep / f"rolling-{n}.txt") if args.profile is not None else None
                    scenarios[f"rolling {n:,}"] = roll(running, watcher, first, instances, profile)
            finally:
                watcher.close()
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 instances, a short plan run")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--no-rolling", dest="rolling", action="store_false")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--ingest-batch", type=int, default=1, help="CSS: events per apply")
    parser.add_argument("--plan-passes", type=int, default=None)
    parser.add_argument(
        "--profile", nargs="?", const="", metavar="DIR", help="py-spy on the scheduler (raw "
        "stacks kept in DIR when given)"
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scheduler.json")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([200] if args.quick else [1_000, 5_000])
    passes = args.plan_passes or (5 if args.quick else 30)
    began = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as folder:
        scenarios = run(args, Path(folder))
    print_targets(scenarios)
    print_where(scenarios)
    plan_results = scheduler_plan.measure(passes)
    plan_verdicts = scheduler_plan.report(plan_results)
    targets = {
        f"{name} <= {limit(name)}x bound": row["complete"] and row["ratio"] <= limit(name)
        for name, row in scenarios.items()
    }
    for found in plan_verdicts:
        targets[f"plan {found['figure']} <= {found['target_ms']:g} ms"] = found["verdict"] == "PASS"
    load_after = os.getloadavg()
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": load_before,
        "loadavg_end": load_after,
    }
    mode = "quick" if args.quick else "full"
    console.print(
        f"simulator, CSS and `blox scheduler` in 3 processes ({args.store} stores); "
        f"nproc {info['nproc']}, load {load_before[0]:.2f} → {load_after[0]:.2f}; "
        f"{mode} run in {time.perf_counter() - began:.0f} s"
    )
    record = {
        "machine": info,
        "mode": mode,
        "store": args.store,
        "scenarios": scenarios,
        "plan": {"passes": passes, "results": plan_results, "targets": plan_verdicts},
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(clean(record), indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
