"""Simulator scale benchmark: a 5,000-instance, 50,000-task fleet, its memory and read latency.

Run from the repository root with the venv active:

    python -m bench.sim                      # 5,000 instances / 50,000 tasks, about 2 minutes
    python -m bench.sim --quick              # 500 instances / 5,000 tasks
    python -m bench.sim --out /tmp/sim.json

The simulator runs in a subprocess of its own (`python -m bench.sim --serve PORT`: an
`EcsState` on the system clock served by `blox.sim.server.serve`, uvicorn on 127.0.0.1, the
lifecycle loop included), so its RSS is its own: VmRSS/VmHWM are read from /proc/<pid>/status
when it is idle, after the fleet is built and at the end. Its throttle has every bucket raised
to 1e9 tokens (burst and per second) so that throttling never skews a latency.

The fleet is built through the real API over HTTP with boto3 (4 client threads):
CreateCluster, RegisterTaskDefinition, RegisterContainerInstance x N, then StartTask with 10
instances per call (startedBy one of 20 values) until every instance runs tasks/N tasks, then
StopTask on every 20th task (desiredStatus STOPPED); then 4 s for tasks to reach RUNNING.

Timed, sequentially from one boto3 client over real HTTP (p50/p99 ms per call): DescribeTasks
of 100 random task ARNs; ListTasks pages of 100 from a random nextToken with the cluster only,
a random containerInstance, a random startedBy and desiredStatus STOPPED; and one full
paginated walk of the cluster's RUNNING tasks. Each is timed again with this (client) process's
cyclic GC off: with 100 tasks to parse, boto3's GC pauses alone make the DescribeTasks p99 (~37
ms with GC on, ~12 ms off, p50 ~10 ms either way, measured on 2 CPUs). The very same requests
are then sent as raw HTTP POSTs with httpx (no signing, no boto3 parsing) and run inside the
simulator process on the state (the api module's handler, which calls `EcsState.describe_tasks`
/ `list_tasks`; no validation, no JSON), and with the JSON rendering added; boto3/state p50 is
printed as the overhead ratio. Targets (RSS <= 1 GB, DescribeTasks(100) <= 20 ms p99, ListTasks
page <= 20 ms p99, judged on the plain boto3 figures) are PASS/MISS for information only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "bench"
FAMILY = "bench-app"
STARTED_BY = [f"svc-{i:02d}" for i in range(20)]
TARGET_RSS_MB = 1024.0
TARGET_P99_MS = 20.0
THREADS = 4
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
Params = dict[str, Any]
console = Console(width=None if sys.stdout.isatty() else 150)
log = Console(stderr=True)


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank q-quantile of `samples` (nan when empty)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


# -- the simulator subprocess --------------------------------------------------------------


def serve_child(port: int) -> None:
    """The simulator process: state + throttle (raised) + one bench route, until killed."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from blox.clock import SystemClock
    from blox.sim import api
    from blox.sim.server import serve
    from blox.sim.state import EcsState
    from blox.sim.throttle import Throttle

    clock = SystemClock()
    state = EcsState(clock=clock)
    throttle = Throttle(clock=clock, rates={}, default=(1e9, 1e9))

    async def direct(request: Request) -> JSONResponse:
        """Time each posted request on the state (handler) and with JSON rendering."""
        workloads: dict[str, tuple[str, list[Params]]] = await request.json()
        out: dict[str, dict[str, list[float]]] = {}
        for name, (operation, requests) in workloads.items():
            handler = api.HANDLERS[operation]
            plain, rendered = [], []
            for params in requests:
                t0 = time.perf_counter()
                handler(state, params)
                plain.append((time.perf_counter() - t0) * 1000)
            for params in requests:
                t0 = time.perf_counter()
                api.render(handler(state, params))
                rendered.append((time.perf_counter() - t0) * 1000)
            out[name] = {"state": plain, "state_json": rendered}
        return JSONResponse(out)

    route = Route("/bench/direct", direct, methods=["POST"])
    asyncio.run(serve(state, port=port, throttle=throttle, extra_routes=[route]))


@contextlib.contextmanager
def simulator() -> Iterator[tuple[str, int]]:
    """The simulator subprocess on a free loopback port: (endpoint URL, pid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "bench.sim", "--serve", str(port)]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the simulator subprocess did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


# -- building the fleet over HTTP ----------------------------------------------------------


def ecs_client(endpoint: str) -> Any:
    return boto3.client(
        "ecs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=THREADS),
    )


def in_threads(endpoint: str, jobs: list[Params], call: Callable[[Any, Params], Any]) -> list[Any]:
    """Run `call(client, job)` for every job on THREADS threads, a boto3 client each."""
    local = threading.local()

    def run(job: Params) -> Any:
        if not hasattr(local, "client"):
            local.client = ecs_client(endpoint)
        return call(local.client, job)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, jobs))


def build_fleet(endpoint: str, instances: int, tasks: int) -> tuple[dict[str, float], list[str]]:
    """Instances, tasks and stops through the API; returns (rates, task ARNs)."""
    ecs = ecs_client(endpoint)
    ecs.create_cluster(clusterName=CLUSTER)
    container = {"name": "app", "image": "busybox", "cpu": 128, "memory": 256, "essential": True}
    ecs.register_task_definition(family=FAMILY, containerDefinitions=[container])
    figures: dict[str, float] = {}

    def register(client: Any, job: Params) -> str:
        answer = client.register_container_instance(cluster=CLUSTER, **job)
        return str(answer["containerInstance"]["containerInstanceArn"])

    identities = [{"instanceIdentityDocument": json.dumps({"n": i})} for i in range(instances)]
    t0 = time.perf_counter()
    instance_arns = in_threads(endpoint, identities, register)
    figures["build_register_per_s"] = instances / (time.perf_counter() - t0)

    def start(client: Any, job: Params) -> list[str]:
        answer = client.start_task(cluster=CLUSTER, taskDefinition=FAMILY, **job)
        if answer["failures"]:
            raise RuntimeError(f"StartTask failures: {answer['failures'][:2]}")
        return [t["taskArn"] for t in answer["tasks"]]

    chunks = [instance_arns[i : i + 10] for i in range(0, instances, 10)]
    starts = [
        {"containerInstances": chunk, "startedBy": STARTED_BY[n % len(STARTED_BY)]}
        for _ in range(tasks // instances)
        for n, chunk in enumerate(chunks)
    ]
    t0 = time.perf_counter()
    task_arns = [arn for arns in in_threads(endpoint, starts, start) for arn in arns]
    figures["build_start_tasks_per_s"] = len(task_arns) / (time.perf_counter() - t0)

    def stop(client: Any, job: Params) -> None:
        client.stop_task(cluster=CLUSTER, **job)

    t0 = time.perf_counter()
    in_threads(endpoint, [{"task": arn} for arn in task_arns[::20]], stop)
    figures["build_stop_per_s"] = len(task_arns[::20]) / (time.perf_counter() - t0)
    figures |= {"instances": float(instances), "tasks": float(len(task_arns))}
    return figures, instance_arns + task_arns


# -- the timed requests --------------------------------------------------------------------


def workloads(
    instance_arns: list[str], task_arns: list[str], samples: int, rng: random.Random
) -> dict[str, tuple[str, list[Params]]]:
    """name -> (operation, requests): the same requests go over boto3, httpx and the state."""
    from blox.sim.state.paging import encode_token

    first, last = len(instance_arns) + 1, len(instance_arns) + len(task_arns)

    def token() -> str:  # resume after a random task's sequence number
        return encode_token(rng.randint(first, last - 200))

    base = {"cluster": CLUSTER, "maxResults": 100}
    describe = [{"cluster": CLUSTER, "tasks": rng.sample(task_arns, 100)} for _ in range(samples)]
    listing: dict[str, Callable[[], Params]] = {
        "ListTasks cluster only": lambda: base | {"nextToken": token()},
        "ListTasks containerInstance": lambda: (
            base | {"containerInstance": rng.choice(instance_arns)}
        ),
        "ListTasks startedBy": lambda: (
            base | {"startedBy": rng.choice(STARTED_BY), "nextToken": token()}
        ),
        "ListTasks desiredStatus=STOPPED": lambda: (
            base | {"desiredStatus": "STOPPED", "nextToken": token()}
        ),
    }
    out = {"DescribeTasks 100 ids": ("DescribeTasks", describe)}
    out |= {name: ("ListTasks", [make() for _ in range(samples)]) for name, make in listing.items()}
    return out


def time_boto3(ecs: Any, operation: str, requests: list[Params]) -> list[float]:
    method = ecs.describe_tasks if operation == "DescribeTasks" else ecs.list_tasks
    samples = []
    for params in requests:
        t0 = time.perf_counter()
        method(**params)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def time_boto3_gc_off(ecs: Any, operation: str, requests: list[Params]) -> list[float]:
    """`time_boto3` with this (client) process's cyclic GC off: its pauses land in the p99."""
    gc.collect()
    gc.disable()
    try:
        return time_boto3(ecs, operation, requests)
    finally:
        gc.enable()


def time_httpx(http: httpx.Client, operation: str, requests: list[Params]) -> list[float]:
    headers = {
        "X-Amz-Target": TARGET_PREFIX + operation,
        "Content-Type": "application/x-amz-json-1.1",
    }
    samples = []
    for params in requests:
        body = json.dumps(params)
        t0 = time.perf_counter()
        response = http.post("/", content=body, headers=headers)
        response.read()
        samples.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return samples


def walk(ecs: Any) -> dict[str, float]:
    """Every RUNNING task of the cluster, page by page over boto3."""
    pages, arns, samples, token = 0, 0, [], None
    t0 = time.perf_counter()
    while True:
        page_t0 = time.perf_counter()
        answer = ecs.list_tasks(
            cluster=CLUSTER, maxResults=100, **({"nextToken": token} if token else {})
        )
        samples.append((time.perf_counter() - page_t0) * 1000)
        pages, arns = pages + 1, arns + len(answer["taskArns"])
        token = answer.get("nextToken")
        if token is None:
            break
    seconds = time.perf_counter() - t0
    return {
        "walk_pages": float(pages),
        "walk_tasks": float(arns),
        "walk_s": seconds,
        "walk_pages_per_s": pages / seconds,
        "walk_page_p99_ms": percentile(samples, 0.99),
    }


# -- report --------------------------------------------------------------------------------


def summarise(timings: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, by_mode in timings.items():
        row = {"samples": float(len(by_mode["boto3"]))}
        for mode, samples in by_mode.items():
            row[f"{mode}_p50_ms"] = percentile(samples, 0.50)
            row[f"{mode}_p99_ms"] = percentile(samples, 0.99)
        row["ratio_boto3_state_p50"] = row["boto3_p50_ms"] / row["state_p50_ms"]
        out[name] = row
    return out


def print_report(report: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]MISS[/]"

    table = Table(title="blox.sim at scale: boto3 over HTTP vs. httpx vs. the state in-process")
    columns = ("request (pages of 100)", "boto3 p50", "boto3 p99", "gc off p99", "httpx p99")
    for column in (*columns, "state p99", "state+JSON p99", "boto3/state p50", "target"):
        table.add_column(column, justify="left" if column.startswith("request") else "right")
    for name, row in report["latency"].items():
        p99 = row["boto3_p99_ms"]
        table.add_row(
            name,
            f"{row['boto3_p50_ms']:.2f}",
            f"{p99:.2f} {mark(p99 <= TARGET_P99_MS)}",
            f"{row['boto3_gc_off_p99_ms']:.2f}",
            f"{row['httpx_p99_ms']:.2f}",
            f"{row['state_p99_ms']:.3f}",
            f"{row['state_json_p99_ms']:.3f}",
            f"{row['ratio_boto3_state_p50']:.1f}x",
            f"<= {TARGET_P99_MS:g} ms",
        )
    console.print(table)
    fleet, mem, walked = report["fleet"], report["memory_mb"], report["walk"]
    peak = mem["end"]["VmHWM"]
    summary = Table(title="fleet, memory (simulator subprocess) and full walk")
    for column in ("figure", "value", "target"):
        summary.add_column(column, justify="left" if column == "figure" else "right")
    rows = [
        ("container instances / tasks", f"{fleet['instances']:,.0f} / {fleet['tasks']:,.0f}", ""),
        ("RegisterContainerInstance/s (HTTP)", f"{fleet['build_register_per_s']:,.0f}", ""),
        ("tasks started/s (StartTask x10, HTTP)", f"{fleet['build_start_tasks_per_s']:,.0f}", ""),
        ("StopTask/s (HTTP)", f"{fleet['build_stop_per_s']:,.0f}", ""),
        ("RSS idle, before the fleet (MiB)", f"{mem['before']['VmRSS']:,.0f}", ""),
        ("RSS after the fleet (MiB)", f"{mem['after_fleet']['VmRSS']:,.0f}", ""),
        ("RSS at the end (MiB)", f"{mem['end']['VmRSS']:,.0f}", ""),
        ("peak RSS, VmHWM (MiB)", f"{peak:,.0f} {mark(peak <= TARGET_RSS_MB)}", "<= 1024"),
        ("full walk: pages / RUNNING tasks", f"{walked['walk_pages']:,.0f} / "
         f"{walked['walk_tasks']:,.0f}", ""),
        ("full walk: seconds, pages/s", f"{walked['walk_s']:.2f} s, "
         f"{walked['walk_pages_per_s']:,.0f}/s", ""),
        ("full walk: page p99 ms (boto3)", f"{walked['walk_page_p99_ms']:.2f}", ""),
    ]  # fmt: skip
    for row in rows:
        summary.add_row(*row)
    console.print(summary)


def run(instances: int, tasks: int, samples: int) -> dict[str, Any]:
    rng = random.Random(7)
    with simulator() as (endpoint, pid):
        before = memory_mb(pid)
        log.print(f"[dim]building {instances:,} instances / {tasks:,} tasks over HTTP…[/]")
        fleet, arns = build_fleet(endpoint, instances, tasks)
        time.sleep(4.0)  # PENDING -> RUNNING (1-3 s) and STOPPING -> STOPPED (0.5-2 s)
        after_fleet = memory_mb(pid)
        plan = workloads(arns[:instances], arns[instances:], samples, rng)
        ecs = ecs_client(endpoint)
        timings: dict[str, dict[str, list[float]]] = {}
        with httpx.Client(base_url=endpoint, timeout=60) as http:
            for name, (operation, requests) in plan.items():
                log.print(f"[dim]timing {name}…[/]")
                time_boto3(ecs, operation, requests[:20])  # warm-up, not counted
                timings[name] = {
                    "boto3": time_boto3(ecs, operation, requests),
                    "boto3_gc_off": time_boto3_gc_off(ecs, operation, requests),
                    "httpx": time_httpx(http, operation, requests),
                }
            walked = walk(ecs)
            direct = http.post("/bench/direct", json=plan).json()
        for name, by_mode in direct.items():
            timings[name] |= by_mode
        end = memory_mb(pid)
    return {
        "fleet": fleet,
        "memory_mb": {"before": before, "after_fleet": after_fleet, "end": end},
        "latency": summarise(timings),
        "walk": walked,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 instances / 5,000 tasks")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sim.json")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the simulator process
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve_child(args.serve)
        return 0
    instances, tasks, samples = (500, 5_000, 200) if args.quick else (5_000, 50_000, 500)
    started = time.perf_counter()
    report = run(instances, tasks, samples)
    print_report(report)
    latency = report["latency"]
    checks = {
        f"{n} boto3 p99 <= 20 ms": r["boto3_p99_ms"] <= TARGET_P99_MS for n, r in latency.items()
    }
    checks["peak RSS <= 1024 MiB"] = report["memory_mb"]["end"]["VmHWM"] <= TARGET_RSS_MB
    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "boto3": metadata.version("boto3"),
        "uvicorn": metadata.version("uvicorn"),
    }
    describe = latency["DescribeTasks 100 ids"]
    if describe["boto3_p99_ms"] > TARGET_P99_MS >= describe["boto3_gc_off_p99_ms"]:
        console.print(
            "[yellow]note[/] the DescribeTasks p99 is the client's: with its GC off it is "
            f"{describe['boto3_gc_off_p99_ms']:.1f} ms; the server answers raw HTTP in "
            f"{describe['httpx_p99_ms']:.1f} ms p99"
        )
    console.print(
        "throttle raised to 1e9 tokens/s for every operation; simulator in its own process; "
        f"nproc {info['nproc']}, Python {info['python']}, "
        f"{'quick' if args.quick else 'full'} run in {time.perf_counter() - started:.0f} s"
    )
    record = {"machine": info, "mode": "quick" if args.quick else "full", "samples": samples}
    record |= report | {"targets": checks}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
