"""Composition root for `blox scheduler`: the v0.3 API on every replica, the controller on one.

`run(settings, stop=…, ready=…)` opens the store and an ECS client, serves the scheduler API
(environments, deployments; `/healthz`, `/readyz`, `/metrics`) and campaigns for the
`scheduler` leadership; the leader runs the informer (list + watch of the CSS at
`--css-endpoint`) and the controller, and stops them the moment its lease is lost, so a standby
takes over within the lease TTL. Starts in flight are in the store: a new leader never starts a
task its predecessor already asked for. Stops in order on `stop`: the leader's loops (resigning),
the HTTP server, the clients, the store. Caller: `blox.cli.scheduler`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from blox import errors
from blox.client.css import AsyncCssClient
from blox.clock import Clock, SystemClock
from blox.ecs import EcsClient
from blox.obs import Readiness, SchedulerMetrics, listen
from blox.obs.health import store_check
from blox.scheduler.api.app import create_app
from blox.scheduler.catalog import EcsClientCatalog
from blox.scheduler.control.controller import Controller
from blox.scheduler.control.informer import Informer
from blox.scheduler.errors import SchedulerError
from blox.store import Election, compaction, open_store, while_leading

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_CSS",
    "ELECTION",
    "SchedulerSettings",
    "SettingsInvalid",
    "css_url",
    "run",
]

DEFAULT_BIND = "127.0.0.1:2000"
DEFAULT_CSS = "127.0.0.1:3000"
ELECTION = "scheduler"
LEASE_TTL_S = 10


class SettingsInvalid(SchedulerError, errors.Invalid):
    """A `blox scheduler` setting is malformed."""


def css_url(endpoint: str) -> str:
    """The CSS base URL from v0.3's `--css-endpoint host:port` (a full http URL also works)."""
    text = endpoint.strip()
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SettingsInvalid(
            f"--css-endpoint must be host:port (e.g. {DEFAULT_CSS}) or a URL, got {endpoint!r}"
        )
    return f"http://{text}"


@dataclass(frozen=True)
class SchedulerSettings:
    """Everything `blox scheduler` can be told; validated when built."""

    store_url: str
    css_url: str = f"http://{DEFAULT_CSS}"
    host: str = "127.0.0.1"
    port: int = 2000
    region: str = "us-east-1"
    ecs_endpoint_url: str | None = None
    resync_s: float = 5.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsInvalid(f"--bind port must be within 0..65535, got {self.port}")
        if self.resync_s <= 0:
            raise SettingsInvalid(f"--resync must be positive, got {self.resync_s:g}s")


async def run(
    settings: SchedulerSettings,
    *,
    stop: asyncio.Event,
    ready: Callable[[dict[str, Any]], None] | None = None,
    clock: Clock | None = None,
) -> None:
    """Serve, and control while leading, until `stop` is set; then stop in order."""
    clock = clock or SystemClock()
    store = await open_store(settings.store_url, clock=clock)
    ecs = EcsClient.create(
        region=settings.region, endpoint_url=settings.ecs_endpoint_url, clock=clock
    )
    try:
        metrics = SchedulerMetrics(clock=clock)
        controllers: list[Controller] = []
        metrics.track_controller(lambda: controllers[-1] if controllers else None)
        readiness = Readiness(clock=clock)
        readiness.add_check("store", store_check(store))
        app = create_app(
            store=store,
            catalog=EcsClientCatalog(ecs),
            clock=clock,
            readiness=readiness,
            metrics=metrics,
        )

        async def control() -> None:
            """The leader's work: the informer and the controller, until cancelled."""
            metrics.leading.set(1)
            async with AsyncCssClient(settings.css_url, clock=clock) as css:
                informer = Informer(css, clock=clock)
                controller = Controller(
                    store,
                    informer,
                    ecs,
                    clock=clock,
                    resync_s=settings.resync_s,
                    observe_pass=metrics.reconcile_duration.observe,
                )
                controllers.append(controller)
                try:
                    await asyncio.gather(informer.run(), controller.run())
                finally:
                    metrics.leading.set(0)

        election = Election(store, ELECTION, ttl_s=LEASE_TTL_S, clock=clock)

        async def lead() -> None:
            """Control and compact, each on the replica elected for it."""
            await asyncio.gather(
                while_leading(election, settings.identity, control, clock=clock),
                compaction.lead(store, identity=settings.identity, clock=clock),
            )

        sock = listen.bind(settings.host, settings.port)
        try:
            leading = lead()  # made once bound: a port in use leaves no coroutine never awaited
            summary = {"api": listen.api_url(sock), "store": store.url, "css": settings.css_url}
            await _serve(app, sock, leading, stop=stop, ready=lambda: ready and ready(summary))
        finally:
            sock.close()
    finally:
        ecs.close()
        await store.close()


async def _serve(
    app: FastAPI,
    sock: socket.socket,
    leading: Coroutine[Any, Any, None],
    *,
    stop: asyncio.Event,
    ready: Callable[[], object],
) -> None:
    server = listen.server(app)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="blox.scheduler.api")
    controlling = asyncio.create_task(leading, name="blox.scheduler.leader")
    stopped = asyncio.create_task(stop.wait(), name="blox.scheduler.stop")
    listen.settle_heap()
    ready()
    try:
        await asyncio.wait({serving, controlling, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        controlling.cancel()  # resigns: a standby takes over at once
        await asyncio.wait({controlling})
        server.should_exit = True
        await asyncio.wait({serving})
    for task in (serving, controlling):
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
