"""Composition root for `blox sim up`: state, bootstrap fleet, event sink, faults, admin, server.

`run(settings, stop=…)` builds everything from `SimSettings`, serves the ECS API and the
`/_sim` admin routes on one port until `stop` is set (or uvicorn exits on a signal), then
shuts down in order: server, random killer, periodic saver, event pump (flushing everything
buffered, delayed or held), the last save of the state file, and finally the boto3 client of
the sink. Everything runs on the caller's event loop, the one thread that touches the state.
With a state file (issue 7) the state saved there is restored instead of bootstrapping a new
one: `--instances` only fills clusters the state does not have yet. Caller: `blox.cli.sim`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import uvicorn

from blox.clock import Clock, SystemClock
from blox.errors import Invalid
from blox.sim import admin, server, statefile
from blox.sim.chaos import Chaos, check_kill_rate, register_instances
from blox.sim.events import EnvelopeFactory, MemoryPublisher, Publisher
from blox.sim.faults import EventFaults, FaultConfig
from blox.sim.publishers import EventBridgePublisher, SqsPublisher
from blox.sim.pump import EventPump
from blox.sim.state import EcsState, LifecycleTiming, SimConfig, snapshot
from blox.sim.throttle import Throttle

DEFAULT_PORT = 8001  # away from LocalStack's 4566 and the 8000 of most dev servers
SINKS = ("memory", "sqs", "eventbridge")
DUMMY_CREDENTIALS = "testing"  # what moto accepts; used only with an endpoint URL
DEFAULT_SAVE_EVERY_S = 30.0  # a crash loses at most this much of the state file's history
RNG_NAMES = ("events", "chaos", "envelopes")  # drawn from the seed in this order


class SettingsInvalid(Invalid):
    """A `blox sim up` setting is out of range or inconsistent with another."""


@dataclass(frozen=True)
class SimSettings:
    """Everything `blox sim up` can be told; validated when built."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    clusters: tuple[str, ...] = ("default",)
    instances: int = 0  # per cluster
    instance_cpu: int | None = None  # None: the state's default (an m6i.large)
    instance_memory: int | None = None
    sink: str = "memory"
    queue_url: str | None = None
    event_bus: str = "default"
    aws_endpoint_url: str | None = None
    region: str = "us-east-1"
    account: str = "123456789012"
    seed: int = 0
    pending_s: float | None = None  # None: LifecycleTiming's default range
    faults: FaultConfig = field(default_factory=FaultConfig)
    kill_rate_per_s: float = 0.0
    state_file: Path | None = None  # None: the state lives in memory only
    save_every_s: float = DEFAULT_SAVE_EVERY_S

    def __post_init__(self) -> None:
        checks = [
            (0 < self.port <= 65535, f"--port must be between 1 and 65535, got {self.port}"),
            (self.instances >= 0, f"--instances must be >= 0, got {self.instances}"),
            (bool(self.clusters), "at least one --cluster is needed"),
            (self.sink in SINKS, f"--sink must be one of {', '.join(SINKS)}, got {self.sink!r}"),
            (self.sink != "sqs" or bool(self.queue_url), "--sink sqs needs --queue-url"),
            (self.pending_s is None or self.pending_s >= 0, "--pending-seconds must be >= 0"),
            (
                math.isfinite(self.save_every_s) and self.save_every_s > 0,
                f"--save-every must be a number of seconds > 0, got {self.save_every_s}",
            ),
        ]
        for name, value in (
            ("--instance-cpu", self.instance_cpu),
            ("--instance-memory", self.instance_memory),
        ):
            checks.append((value is None or value > 0, f"{name} must be > 0, got {value}"))
        for ok, message in checks:
            if not ok:
                raise SettingsInvalid(message)
        check_kill_rate(self.kill_rate_per_s)

    def timing(self) -> LifecycleTiming:
        """The lifecycle timing: a fixed pending time when one was given."""
        if self.pending_s is None:
            return LifecycleTiming()
        return LifecycleTiming(pending_s=(self.pending_s, self.pending_s))


@contextlib.contextmanager
def open_sink(settings: SimSettings) -> Iterator[Publisher]:
    """The publisher for `settings.sink`; its boto3 client is closed on exit."""
    if settings.sink == "memory":
        yield MemoryPublisher()
        return
    dummy = settings.aws_endpoint_url is not None and "AWS_ACCESS_KEY_ID" not in os.environ
    session = boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=DUMMY_CREDENTIALS if dummy else None,
        aws_secret_access_key=DUMMY_CREDENTIALS if dummy else None,
    )
    if settings.sink == "sqs":
        sqs = session.client("sqs", endpoint_url=settings.aws_endpoint_url)
        try:
            yield SqsPublisher(sqs, settings.queue_url or "")
        finally:
            sqs.close()
        return
    bus = session.client("events", endpoint_url=settings.aws_endpoint_url)
    try:
        yield EventBridgePublisher(bus, event_bus_name=settings.event_bus)
    finally:
        bus.close()


@dataclass
class Sim:
    """One running simulator's parts, handed to `run`'s `ready` callback."""

    state: EcsState
    chaos: Chaos
    events: EventFaults
    pump: EventPump
    publisher: Publisher
    url: str
    instances: dict[str, list[str]]
    rngs: dict[str, random.Random] = field(default_factory=dict)
    restored: bool = False

    def summary(self) -> dict[str, Any]:
        """What a user needs to reach it: endpoint, admin prefix, clusters and instances."""
        out: dict[str, Any] = {
            "endpoint": self.url,
            "admin": f"{self.url}{admin.PREFIX}",
            "clusters": self.instances,
        }
        if self.restored:
            out["restored"] = True
        return out

    def capture(self) -> dict[str, Any]:
        """The whole state and every RNG as a snapshot document (on the state's loop only)."""
        return snapshot.dump(self.state, rngs=self.rngs)


def build(
    settings: SimSettings,
    *,
    clock: Clock,
    publisher: Publisher,
    restored: snapshot.Restored | None = None,
) -> Sim:
    """State (new, or `restored`), faults, pump and the bootstrap fleet (events via the pump).

    A restored run keeps its RNGs where the saved run left them (event ids, faults and kills
    go on, they do not replay); a new run draws them from `settings.seed`.
    """
    seeds = random.Random(settings.seed)
    rngs = {name: random.Random(seeds.getrandbits(64)) for name in RNG_NAMES}
    if restored is None:
        config = SimConfig(
            region=settings.region,
            account=settings.account,
            seed=settings.seed,
            timing=settings.timing(),
        )
        state = EcsState(clock=clock, config=config)
    else:
        state = restored.state
        rngs.update((name, rng) for name, rng in restored.rngs.items() if name in RNG_NAMES)
    events = EventFaults(settings.faults, rng=rngs["events"])
    chaos = Chaos(
        state,
        throttle=Throttle(clock=clock),
        clock=clock,
        rng=rngs["chaos"],
        kill_rate_per_s=settings.kill_rate_per_s,
    )
    pump = EventPump(publisher, clock=clock, faults=events)
    state.listeners.append(pump.listener(EnvelopeFactory(rngs["envelopes"])))
    for name in [n for n in settings.clusters if state.clusters.find(n) is None]:
        register_instances(
            state,
            cluster=name,
            count=settings.instances,
            cpu=settings.instance_cpu,
            memory=settings.instance_memory,
        )
    url = f"http://{settings.host}:{settings.port}"
    return Sim(
        state=state,
        chaos=chaos,
        events=events,
        pump=pump,
        publisher=publisher,
        url=url,
        instances=_listed_instances(state),
        rngs=rngs,
        restored=restored is not None,
    )


def _listed_instances(state: EcsState) -> dict[str, list[str]]:
    """ACTIVE and DRAINING instances of every ACTIVE cluster, as ListContainerInstances says."""
    listed = {}
    for cluster in state.clusters.all():
        if cluster.status == "ACTIVE":
            arns, _ = state.list_container_instances(
                cluster=cluster.name, status=None, after=0, limit=1 << 62
            )
            listed[cluster.name] = arns
    return listed


def restore(settings: SimSettings, *, clock: Clock) -> snapshot.Restored | None:
    """The state saved in `settings.state_file`, if there is one; errors name the file."""
    if settings.state_file is None:
        return None
    restored = statefile.load(settings.state_file, clock=clock, timing=settings.timing())
    if restored is not None:
        config = restored.state.config
        if (config.region, config.account) != (settings.region, settings.account):
            raise SettingsInvalid(
                f"state file {settings.state_file} holds region {config.region} and account "
                f"{config.account}: start with --region {config.region} --account "
                f"{config.account}, or with another --state-file"
            )
    return restored


async def run(
    settings: SimSettings,
    *,
    stop: asyncio.Event,
    clock: Clock | None = None,
    ready: Callable[[Sim], None] | None = None,
) -> None:
    """Serve until `stop` is set or uvicorn exits; then stop everything, flushing events."""
    clock = clock or SystemClock()
    restored = restore(settings, clock=clock)  # before anything starts: a bad file stops us
    with open_sink(settings) as publisher:
        sim = build(settings, clock=clock, publisher=publisher, restored=restored)
        saver = None
        if settings.state_file is not None:
            saver = statefile.Saver(
                settings.state_file, capture=sim.capture, clock=clock, every_s=settings.save_every_s
            )
            await saver.save()  # at once: the bootstrap survives a crash; a bad folder shows now
            saver.start()
        sim.pump.start()
        killer = asyncio.create_task(sim.chaos.run_killer(), name="blox.sim.killer")
        try:
            routes = admin.routes(chaos=sim.chaos, events=sim.events, pump=sim.pump)
            if ready is not None:
                ready(sim)
            await _serve_until(stop, sim, settings=settings, routes=routes)
        finally:
            killer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killer
            if saver is not None:
                await saver.stop()
            await sim.pump.stop()
            if saver is not None:
                await saver.save()  # after the flush: the fault RNGs have drawn their last


async def _serve_until(
    stop: asyncio.Event, sim: Sim, *, settings: SimSettings, routes: Any
) -> None:
    uvicorn_server: list[uvicorn.Server] = []

    async def watch() -> None:
        await stop.wait()
        for running in uvicorn_server:
            running.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve(
            sim.state,
            port=settings.port,
            host=settings.host,
            throttle=sim.chaos.throttle,
            extra_routes=routes,
            started=uvicorn_server.append,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
