"""Section 2 of `bench.css`: list and filter pages of 100 out of a 100,000-task fleet, and RSS.

The fleet (`css_fleet.fleet`: the last change of each of `tasks` tasks and `instances`
instances, 4 clusters) is applied to the store through `Processor.process` straight from
memory (16 coroutines, entities sharded; no SQS), then the real `blox css` is started on that
store (subprocess, an empty queue on moto) and asked over HTTP, one request at a time:

- per query, the first page (`maxResults=100`) `first` times;
- a walk from the first page following `nextToken` for up to `walk_budget_s`, which also
  collects real tokens (tokens are opaque: their format may change with secondary indexes);
- `samples` pages from a random collected token.

A request is timed until its body is read (httpx, not parsed). Queries whose parameters the
service does not know yet answer 400; they are skipped with a note, not counted. The CSS
process's VmRSS and VmHWM are read from /proc after the start and at the end.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from bench.css_fleet import FAMILIES, STARTED_BY, Fleet, fleet, summary
from bench.css_ingest import make_queue
from bench.css_procs import css_service, memory_mb
from bench.sim import percentile
from blox.clock import SystemClock
from blox.css import processor as processor_module
from blox.css.processor import Processor
from blox.store import open_store

__all__ = ["ListSizes", "list_store"]

LOAD_WORKERS = 16
PAGE = "100"


@dataclass(frozen=True)
class ListSizes:
    """How big and how long."""

    instances: int
    tasks: int
    first: int  # first-page requests per query
    samples: int  # random-token requests per query
    walk_budget_s: float


async def load(store_url: str, fleet_: Fleet) -> dict[str, float]:
    """Apply every body through the processor, LOAD_WORKERS coroutines by entity."""
    shards: list[list[str]] = [[] for _ in range(LOAD_WORKERS)]
    for body in fleet_.bodies:
        arn = json.loads(body)["resources"][0]
        shards[zlib.crc32(arn.encode()) % LOAD_WORKERS].append(body)
    store = await open_store(store_url)
    try:
        processor = Processor(store, clock=SystemClock())

        async def worker(bodies: list[str]) -> None:
            for body in bodies:
                await processor.process(body)

        started = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in shards))
        seconds = time.perf_counter() - started
        applied = processor.counters.applied
        out = {"load_s": seconds, "load_per_s": len(fleet_.bodies) / seconds, "applied": applied}
        # `blox css` reindexes a store it finds unmarked before it serves (minutes on etcd at
        # 100k tasks); doing it here keeps that out of the start, where this checkout has it.
        reindex = getattr(processor_module, "reindex", None)
        if reindex is not None:
            started = time.perf_counter()
            await reindex(store)
            out["reindex_s"] = time.perf_counter() - started
    finally:
        await store.close()
    return out


def queries(fleet_: Fleet, rng: random.Random) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (path, query parameters without paging)."""
    cluster_name, cluster_arn = next(iter(fleet_.clusters.items()))
    family = rng.choice(FAMILIES)
    return {
        "tasks: no filter": ("/v1/tasks", {}),
        "tasks: status=running": ("/v1/tasks", {"status": "running"}),
        "tasks: status=stopped": ("/v1/tasks", {"status": "stopped"}),
        "tasks: startedBy": ("/v1/tasks", {"startedBy": rng.choice(STARTED_BY)}),
        "tasks: cluster name": ("/v1/tasks", {"cluster": cluster_name}),
        "tasks: cluster ARN": ("/v1/tasks", {"cluster": cluster_arn}),
        "tasks: cluster+status+startedBy": (
            "/v1/tasks",
            {"cluster": cluster_name, "status": "running", "startedBy": rng.choice(STARTED_BY)},
        ),
        "tasks: containerInstance": (
            "/v1/tasks",
            {"containerInstance": rng.choice(fleet_.instances)},
        ),
        "tasks: family": ("/v1/tasks", {"family": family}),
        "tasks: group": ("/v1/tasks", {"group": f"family:{family}"}),
        "instances: no filter": ("/v1/instances", {}),
        "instances: status=active": ("/v1/instances", {"status": "active"}),
    }


def _timed(http: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = http.get(path, params=params)
    return (time.perf_counter() - started) * 1000, response


def query(
    http: httpx.Client, path: str, params: dict[str, str], sizes: ListSizes, rng: random.Random
) -> dict[str, float] | str:
    """First-page, walk and random-token figures of one query, or why it was skipped."""
    base = params | {"maxResults": PAGE}
    _, probe = _timed(http, path, base)
    if probe.status_code != 200:
        return f"HTTP {probe.status_code} {probe.text.strip()[:80]!r}"
    first = [_timed(http, path, base)[0] for _ in range(sizes.first)]
    tokens: list[str] = []
    walk: list[float] = []
    items, complete, token = len(probe.json()["items"]), False, probe.json().get("nextToken")
    deadline = time.perf_counter() + sizes.walk_budget_s
    while token and time.perf_counter() < deadline:
        tokens.append(token)
        ms, page = _timed(http, path, base | {"nextToken": token})
        page.raise_for_status()
        walk.append(ms)
        body = page.json()
        items += len(body["items"])
        token = body.get("nextToken")
    complete = not token
    random_ms = []
    for _ in range(sizes.samples if tokens else 0):
        ms, page = _timed(http, path, base | {"nextToken": rng.choice(tokens)})
        page.raise_for_status()
        random_ms.append(ms)
    out = {
        "first_p50_ms": percentile(first, 0.50),
        "first_p99_ms": percentile(first, 0.99),
        "walk_pages": float(len(walk) + 1),
        "walk_items": float(items),
        "walk_complete": float(complete),
        "walk_p99_ms": percentile(walk, 0.99),
        "walk_pages_per_s": len(walk) / (sum(walk) / 1000) if walk else math.nan,
        "random_samples": float(len(random_ms)),
        "random_p50_ms": percentile(random_ms, 0.50),
        "random_p99_ms": percentile(random_ms, 0.99),
    }
    out["p99_ms"] = max(out["first_p99_ms"], out["random_p99_ms"] if random_ms else 0.0)
    return out


def list_store(moto: str, store_url: str, sizes: ListSizes, notes: list[str]) -> dict[str, Any]:
    """Load the fleet into `store_url`, serve it with `blox css`, time every query."""
    made = time.perf_counter()
    fleet_ = fleet(instances=sizes.instances, tasks=sizes.tasks)
    out: dict[str, Any] = {"fleet": summary(fleet_), "generate_s": time.perf_counter() - made}
    out |= asyncio.run(load(store_url, fleet_))
    fleet_.bodies = []  # the bench's own memory; the CSS process is measured
    sqs, url = make_queue(moto, "list")
    rng = random.Random(3)
    results: dict[str, dict[str, float]] = {}
    try:
        started = time.perf_counter()
        with css_service(queue_url=url, moto=moto, store_url=store_url, wait_s=20) as css:
            out["css_start_s"] = time.perf_counter() - started
            out["rss_start_mb"] = memory_mb(css.pid)
            with httpx.Client(base_url=css.ready["api"], timeout=120) as http:
                for name, (path, params) in queries(fleet_, rng).items():
                    figures = query(http, path, params, sizes, rng)
                    if isinstance(figures, str):
                        notes.append(f"list {name}: skipped, the service answers {figures}")
                        continue
                    results[name] = figures
            out["rss_end_mb"] = memory_mb(css.pid)
    finally:
        sqs.delete_queue(QueueUrl=url)
    out["queries"] = results
    task_p99 = [r["p99_ms"] for n, r in results.items() if n.startswith("tasks")]
    out["worst_task_page_p99_ms"] = max(task_p99, default=math.nan)
    out["peak_rss_mb"] = out["rss_end_mb"]["VmHWM"]
    return out
