"""Helpers of `bench.scheduler`: the whole stack, one process per service, on 127.0.0.1.

    simulator  python -m bench.scheduler_stack sim --port P        (this module's child)
        │ every state change → an EventBridge envelope, streamed as NDJSON on GET /_bench/events
        ▼
    CSS        python -m bench.scheduler_stack css --port Q --events …   (this module's child)
        │ the real `Processor` into a store, the real CSS API (`create_app`)
        ▼
    scheduler  python -m blox scheduler --css-endpoint … --ecs-endpoint-url …   (the real CLI)
        └─ StartTask / StopTask on the simulator, under its real throttle

The simulator is `blox sim up`'s parts (`EcsState` on the system clock, default lifecycle
timing: PENDING 1-3 s, stopping 0.5-2 s; `blox.sim.server.serve` with its lifecycle loop) with
ECS's real token buckets for every write (StartTask: burst 100, 40 calls/s) and only the reads
raised to 1e9/s, so that the benchmark's own observer (DescribeTasks, ListTasks) never takes
a token and the scheduler, which reads nothing but one DescribeTaskDefinition, is unaffected.
Its extra routes: `/_bench/events` (the change stream, one consumer), `/_bench/setup` (create a
cluster and register N container instances in-process: RegisterContainerInstance's 20/s would
take minutes at 5,000) and `/_bench/calls` (when every StartTask / StopTask was accepted or
throttled). Events reach the CSS over loopback HTTP instead of SQS: moto's SQS carries a few
hundred events/s (`bench.css`), far below the ~3 events per task this needs. The CSS applies
each event with `Processor.process` (`--ingest-batch 1`, the default), or what has arrived in
batches of up to N with `process_many`, as its SQS pollers do with theirs. `/_bench/ingest` on
the CSS reports its apply lag (envelope built in the simulator → applied to the store).

Caller: `bench.scheduler`. Processes are started and stopped with `bench.css_procs.child`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.css_procs import Child, child
from blox.clock import SystemClock
from blox.css.api.app import create_app
from blox.css.processor import Processor
from blox.sim import errors as sim_errors
from blox.sim import server
from blox.sim.chaos import register_instances
from blox.sim.events import EnvelopeFactory, envelope_json
from blox.sim.state import EcsState, EntityChange, SimConfig
from blox.sim.throttle import ECS_RATES, Throttle
from blox.testing.ports import free_port

__all__ = ["AWS_ENV", "Stack", "bench_rates", "stack"]

ROOT = Path(__file__).resolve().parent.parent
RAISED = (1e9, 1e9)
COUNTED = ("StartTask", "StopTask")
AWS_ENV = {  # placeholder keys: no credential chain walk (and no metadata endpoint off 127/8)
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def bench_rates() -> dict[str, tuple[float, float]]:
    """ECS's buckets with every read (Describe*, List*) raised; writes keep their real limits."""
    rates = dict(ECS_RATES)
    for operation in rates:
        if operation.startswith(("Describe", "List")):
            rates[operation] = RAISED
    return rates


# -- the simulator child -------------------------------------------------------------------


class CountingThrottle(Throttle):
    """The simulator's throttle, remembering when each StartTask / StopTask got a token or not."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: dict[str, dict[str, list[float]]] = {
            op: {"ok": [], "throttled": []} for op in COUNTED
        }

    def take(self, operation: str) -> None:
        try:
            super().take(operation)
        except sim_errors.Throttled:
            if operation in self.calls:
                self.calls[operation]["throttled"].append(time.time())
            raise
        if operation in self.calls:
            self.calls[operation]["ok"].append(time.time())


class EventFeed:
    """Every state change as `<epoch seconds>\\t<envelope JSON>` lines for one streaming reader."""

    def __init__(self, factory: EnvelopeFactory) -> None:
        self._factory = factory
        self._lines: collections.deque[str] = collections.deque()
        self._arrived = asyncio.Event()
        self.emitted = 0

    def on_change(self, change: EntityChange) -> None:
        self._lines.append(f"{time.time():.6f}\t{envelope_json(self._factory.build(change))}")
        self.emitted += 1
        self._arrived.set()

    async def stream(self, request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                chunk = [self._lines.popleft() for _ in range(len(self._lines))]
                if chunk:
                    yield ("\n".join(chunk) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")


async def serve_sim(port: int, seed: int) -> None:
    """The simulator child: serve until SIGTERM; one JSON ready line on stdout."""
    clock = SystemClock()
    state = EcsState(clock=clock, config=SimConfig(seed=seed))
    throttle = CountingThrottle(clock=clock, rates=bench_rates())
    feed = EventFeed(EnvelopeFactory(random.Random(seed)))
    state.listeners.append(feed.on_change)

    async def setup(request: Request) -> Response:
        body = await request.json()
        arns = register_instances(
            state,
            cluster=str(body["cluster"]),
            count=int(body["instances"]),
            attributes={"stack": "bench"},
        )
        return JSONResponse({"instances": arns, "emitted": feed.emitted})

    async def calls(request: Request) -> Response:
        return JSONResponse(throttle.calls)

    routes = [
        Route("/_bench/events", feed.stream),
        Route("/_bench/setup", setup, methods=["POST"]),
        Route("/_bench/calls", calls),
    ]
    started: list[uvicorn.Server] = []
    announcing = asyncio.create_task(_announce(started, {"url": f"http://127.0.0.1:{port}"}))
    try:
        await server.serve(
            state, port=port, throttle=throttle, extra_routes=routes, started=started.append
        )
    finally:
        announcing.cancel()


async def _announce(servers: list[uvicorn.Server], ready: dict[str, Any]) -> None:
    while not (servers and servers[0].started):  # noqa: ASYNC110 (uvicorn sets a bare flag)
        await asyncio.sleep(0.02)
    print(json.dumps(ready), flush=True)


# -- the CSS child -------------------------------------------------------------------------


class Ingest:
    """Reads the simulator's change stream and applies it in batches; keeps the apply lag."""

    def __init__(self, processor: Processor, events_url: str, batch: int) -> None:
        self._processor = processor
        self._events_url = events_url
        self._batch = batch
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.lags_ms: list[float] = []
        self.applied = 0
        self.failed = 0
        self.batches = 0
        self.total = 0  # events handled since the start, never reset

    async def read(self) -> None:
        async with (
            httpx.AsyncClient(timeout=None) as http,
            http.stream("GET", self._events_url) as response,
        ):
            async for line in response.aiter_lines():
                if line:
                    stamp, _, body = line.partition("\t")
                    self._queue.put_nowait((float(stamp), body))

    async def apply(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            results = await self._process([body for _, body in batch])
            done = time.time()
            self.batches += 1
            self.total += len(batch)
            for (stamp, _), result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    self.failed += 1
                else:
                    self.applied += 1
                    self.lags_ms.append((done - stamp) * 1000)

    async def _process(self, bodies: list[str]) -> list[Any]:
        if self._batch > 1:
            return await self._processor.process_many(bodies)
        results: list[Any] = []
        for body in bodies:
            try:
                results.append(await self._processor.process(body))
            except Exception as exc:  # counted as failed, as process_many would return it
                results.append(exc)
        return results

    async def report(self, reset: bool = False) -> dict[str, Any]:
        """Events applied and failed, batches, backlog, and apply lag p50/p99/max (ms)."""
        lags = sorted(self.lags_ms)
        out = {
            "total": self.total,
            "applied": self.applied,
            "failed": self.failed,
            "batches": self.batches,
            "backlog": self._queue.qsize(),
            "lag_p50_ms": _rank(lags, 0.50),
            "lag_p99_ms": _rank(lags, 0.99),
            "lag_max_ms": lags[-1] if lags else math.nan,
        }
        if reset:
            self.lags_ms, self.applied, self.failed, self.batches = [], 0, 0, 0
        return out


def _rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


async def serve_css(port: int, events_url: str, store_url: str, batch: int) -> None:
    """The CSS child: ingest the simulator's changes and serve the CSS API until SIGTERM."""
    from blox.store import open_store

    clock = SystemClock()
    store = await open_store(store_url, clock=clock)
    ingest = Ingest(Processor(store, clock=clock), events_url, batch)
    app = create_app(store=store)
    app.add_api_route("/_bench/ingest", ingest.report, methods=["GET"])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    css = uvicorn.Server(config)
    work = [asyncio.create_task(ingest.read()), asyncio.create_task(ingest.apply())]
    announcing = asyncio.create_task(_announce([css], {"url": f"http://127.0.0.1:{port}"}))
    try:
        await css.serve()
    finally:
        for task in (*work, announcing):
            task.cancel()
        await asyncio.gather(*work, announcing, return_exceptions=True)
        await store.close()


# -- the stack, from the benchmark's side --------------------------------------------------


@dataclass
class Stack:
    """The three running services: their URLs and processes."""

    sim_url: str
    css_url: str
    scheduler_url: str
    children: dict[str, Child]

    def pid(self, name: str) -> int:
        return self.children[name].pid


def _store(kind: str, folder: Path, name: str) -> str:
    return "memory://" if kind == "memory" else f"sqlite:{folder / name}.db"


@contextlib.contextmanager
def stack(
    *, seed: int, store: str, folder: Path, batch: int = 1, resync_s: float = 5.0
) -> Iterator[Stack]:
    """Simulator, CSS and `blox scheduler`, started in that order, stopped in reverse."""
    here = [sys.executable, "-m", "bench.scheduler_stack"]
    os.environ.update(AWS_ENV)  # inherited by the children; the bench's boto3 uses it too
    with contextlib.ExitStack() as running:
        sim_port, css_port, scheduler_port = free_port(), free_port(), free_port()
        sim = running.enter_context(
            child([*here, "sim", "--port", str(sim_port), "--seed", str(seed)], name="simulator")
        )
        css_command = [*here, "css", "--port", str(css_port), "--events"]
        css_command += [f"{sim.ready['url']}/_bench/events", "--store"]
        css_command += [_store(store, folder, "css"), "--batch", str(batch)]
        css = running.enter_context(child(css_command, name="CSS"))
        command = [sys.executable, "-m", "blox", "scheduler", "--bind"]
        command += [f"127.0.0.1:{scheduler_port}", "--css-endpoint", css.ready["url"]]
        command += ["--store", _store(store, folder, "scheduler"), "--ecs-endpoint-url"]
        command += [sim.ready["url"], "--resync", f"{resync_s:g}s", "--log-level", "warning"]
        scheduler = running.enter_context(child(command, name="blox scheduler"))
        yield Stack(
            sim_url=sim.ready["url"],
            css_url=css.ready["url"],
            scheduler_url=scheduler.ready["api"],
            children={"sim": sim, "css": css, "scheduler": scheduler},
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler_stack")
    parser.add_argument("role", choices=("sim", "css"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--events", default="")
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.role == "sim":
            asyncio.run(serve_sim(args.port, args.seed))
        else:
            asyncio.run(serve_css(args.port, args.events, args.store, args.batch))


if __name__ == "__main__":
    main()
