"""`blox up`'s composition root: moto, the BloxLocal stack, the simulator, the CSS, the scheduler.

`run(settings, stop=…, ready=…)` starts, in order: moto in server mode (a child process), the
BloxLocal stack created on it through the CloudFormation API (queue, dead-letter queue,
EventBridge rule), the simulated ECS with a cluster of `instances` publishing its events to
that rule, the cluster state service reading the queue, and the daemon scheduler reading the
CSS — the three services on this event loop, each on its own SQLite file in `data_dir` (or one
`--store` for both). With `aws=True` there is no moto, stack or simulator: the CSS reads the
given queue and both services call the real ECS of `region` (the usual AWS credential chain).

Once the CSS and the scheduler answer `/readyz`, `ready(endpoints)` runs (the CLI prints,
and with `--demo` rolls an environment out) while everything serves. When `stop` is set, or
a service fails, everything stops in reverse order: the scheduler, the CSS (it acknowledges
what it applied), the simulator (its state file is written), and moto last. Caller:
`blox.cli.up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx

from blox import errors
from blox.css import service as css_service
from blox.css import settings as css_settings
from blox.css.settings import CssSettings
from blox.local import stack as local_stack
from blox.local.moto import MotoServer, free_port, port_taken
from blox.obs import listen
from blox.scheduler import service as scheduler_service
from blox.sim import service as sim_service

__all__ = ["DEMO_FAMILY", "Endpoints", "ServiceFailed", "UpSettings", "run"]

logger = logging.getLogger(__name__)

DEMO_FAMILY = "web"  # the task definition `blox up` registers on the simulator
READY_TIMEOUT_S = 120.0
DUMMY_CREDENTIALS = "testing"
S = TypeVar("S")
R = TypeVar("R")


class UpInvalid(errors.Invalid):
    """A `blox up` option is out of range or inconsistent with another."""


class ServiceFailed(errors.Unavailable):
    """A part of `blox up` could not start, or stopped on its own."""


@dataclass(frozen=True)
class UpSettings:
    """Everything `blox up` can be told; validated when built."""

    data_dir: Path
    store_url: str | None = None  # None: one SQLite file per service in data_dir
    host: str = "127.0.0.1"
    css_port: int = css_settings.DEFAULT_PORT
    scheduler_port: int = 2000
    sim_port: int = sim_service.DEFAULT_PORT  # 0: a free port
    moto_port: int = 0  # 0: a free port
    cluster: str = "demo"
    instances: int = 3
    aws: bool = False
    region: str = "us-east-1"
    queue: str | None = None  # with aws: the queue the ECS events arrive on
    reconcile_interval_s: float = css_settings.DEFAULT_RECONCILE_INTERVAL_S

    def __post_init__(self) -> None:
        checks = [
            (self.instances >= 0, f"--instances must be >= 0, got {self.instances}"),
            (not self.aws or bool(self.queue), "--aws needs --queue: the SQS queue of ECS events"),
            (self.aws or self.queue is None, "--queue is for --aws; locally blox up makes one"),
            (bool(self.cluster.strip()), "--cluster must not be empty"),
        ]
        for flag, port in (
            ("--css-port", self.css_port),
            ("--scheduler-port", self.scheduler_port),
            ("--sim-port", self.sim_port),
            ("--moto-port", self.moto_port),
        ):
            checks.append((0 <= port <= 65535, f"{flag} must be within 0..65535, got {port}"))
        for ok, message in checks:
            if not ok:
                raise UpInvalid(message)


@dataclass(frozen=True)
class Endpoints:
    """Where the running parts answer, for the user and for `ready`."""

    css: str
    scheduler: str
    queue: str
    cluster: str
    data_dir: Path
    stores: tuple[str, ...]
    ecs: str | None = None  # the simulator; None with --aws
    moto: str | None = None
    instances: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """One JSON-able line of it."""
        return {
            "css": self.css,
            "scheduler": self.scheduler,
            "ecs": self.ecs,
            "moto": self.moto,
            "queue": self.queue,
            "cluster": self.cluster,
            "instances": len(self.instances),
            "stores": list(self.stores),
            "dataDir": str(self.data_dir),
        }


def check_data_dir(data_dir: Path) -> None:
    """Create `data_dir` if needed and prove it writable, or say what to do."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".blox-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UpInvalid(
            f"the data dir {data_dir} is not writable ({exc.strerror or exc}): "
            "choose another with --data-dir"
        ) from exc


def check_ports(settings: UpSettings) -> None:
    """Fail before starting anything when a chosen port is taken, naming its flag."""
    chosen = [("--css-port", settings.css_port), ("--scheduler-port", settings.scheduler_port)]
    if not settings.aws:
        chosen += [("--sim-port", settings.sim_port), ("--moto-port", settings.moto_port)]
    seen: dict[int, str] = {}
    for flag, port in chosen:
        if port and port in seen:
            raise UpInvalid(f"{seen[port]} and {flag} are both {port}: give each its own port")
        seen[port] = flag
        if port and port_taken(settings.host, port):
            raise UpInvalid(
                f"{settings.host}:{port} is in use: stop what listens there or choose another "
                f"{flag}"
            )


def _store_urls(settings: UpSettings) -> tuple[str, str]:
    """The CSS's and the scheduler's store: one given URL, or a SQLite file each."""
    if settings.store_url:
        return settings.store_url, settings.store_url
    folder = settings.data_dir.resolve()
    return f"sqlite:{folder / 'blox.db'}", f"sqlite:{folder / 'scheduler.db'}"


async def run(
    settings: UpSettings,
    *,
    stop: asyncio.Event,
    ready: Callable[[Endpoints], Awaitable[None]] | None = None,
) -> None:
    """Start everything, call `ready`, serve until `stop`; then stop everything in order."""
    check_data_dir(settings.data_dir)
    check_ports(settings)
    css_store, scheduler_store = _store_urls(settings)
    async with contextlib.AsyncExitStack() as parts:
        moto_url = ecs_url = None
        instances: tuple[str, ...] = ()
        if settings.aws:
            queue = settings.queue or ""
        else:
            moto = MotoServer.start(
                host=settings.host, port=settings.moto_port, log_path=settings.data_dir / "moto.log"
            )
            parts.callback(moto.stop)
            moto_url = moto.url
            outputs = await asyncio.to_thread(_create_stack, moto_url, settings.region)
            queue = outputs.queue_url
            sim = await parts.enter_async_context(
                _started("simulator", sim_service.run, _sim_settings(settings, moto_url), stop)
            )
            ecs_url = sim.url
            await _until_answers(f"{ecs_url}/_sim/counters", stop)
            instances = await asyncio.to_thread(_prepare_simulator, ecs_url, settings)
        css_summary = await parts.enter_async_context(
            _started(
                "cluster state service",
                css_service.run,
                CssSettings(
                    queue=queue,
                    store_url=css_store,
                    host=settings.host,
                    port=settings.css_port,
                    region=settings.region,
                    sqs_endpoint_url=moto_url,
                    ecs_endpoint_url=ecs_url,
                    reconcile_interval_s=settings.reconcile_interval_s,
                ),
                stop,
            )
        )
        scheduler_summary = await parts.enter_async_context(
            _started(
                "scheduler",
                scheduler_service.run,
                scheduler_service.SchedulerSettings(
                    store_url=scheduler_store,
                    css_url=css_summary["api"],
                    host=settings.host,
                    port=settings.scheduler_port,
                    region=settings.region,
                    ecs_endpoint_url=ecs_url,
                ),
                stop,
            )
        )
        endpoints = Endpoints(
            css=css_summary["api"],
            scheduler=scheduler_summary["api"],
            queue=queue,
            cluster=settings.cluster,
            data_dir=settings.data_dir,
            stores=tuple(dict.fromkeys((css_store, scheduler_store))),
            ecs=ecs_url,
            moto=moto_url,
            instances=instances,
        )
        for url in (endpoints.css, endpoints.scheduler):
            await _until_answers(f"{url}/readyz", stop)
        if not stop.is_set() and ready is not None:
            await listen.unless_stopped(stop, ready(endpoints))
        await stop.wait()


@contextlib.asynccontextmanager
async def _started(
    name: str,
    run_service: Callable[..., Coroutine[Any, Any, None]],
    service_settings: Any,
    stop_all: asyncio.Event,
) -> AsyncIterator[Any]:
    """Run a service until the block ends; yields what it hands to its `ready` callback.

    A service that ends on its own (crash, port taken) sets `stop_all`, so that everything
    else stops, and its error is raised at the end of the block as a ServiceFailed.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    summary: asyncio.Future[Any] = loop.create_future()

    def ready(value: Any) -> None:
        if not summary.done():
            summary.set_result(value)

    task = asyncio.create_task(run_service(service_settings, stop=stop, ready=ready), name=name)
    task.add_done_callback(lambda _: stop_all.set() if not stop.is_set() else None)
    await asyncio.wait({summary, task}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if not summary.done():
            _raise_failure(name, task)
        yield summary.result()
    finally:
        summary.cancel()
        stopped_by_us = not task.done()
        stop.set()
        if not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not stopped_by_us:
            _raise_failure(name, task)


def _raise_failure(name: str, task: asyncio.Task[None]) -> None:
    """The failure of a service that ended on its own, as one clear error."""
    if task.cancelled():
        raise ServiceFailed(f"the {name} was cancelled")
    exc = task.exception()
    if isinstance(exc, errors.BloxError):
        raise ServiceFailed(f"the {name} failed: {exc}") from exc
    if exc is not None:
        raise ServiceFailed(f"the {name} failed: {type(exc).__name__}: {exc}") from exc
    raise ServiceFailed(f"the {name} stopped on its own")


async def _until_answers(url: str, stop: asyncio.Event) -> None:
    """Poll `url` until it answers 200 (or `stop`); ServiceFailed after READY_TIMEOUT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if loop.time() > deadline:
                raise ServiceFailed(f"{url} did not answer 200 within {READY_TIMEOUT_S:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)


def _sim_settings(settings: UpSettings, moto_url: str) -> sim_service.SimSettings:
    return sim_service.SimSettings(
        host=settings.host,
        port=settings.sim_port or free_port(settings.host),
        clusters=(settings.cluster,),
        instances=settings.instances,
        sink="eventbridge",
        aws_endpoint_url=moto_url,
        region=settings.region,
        state_file=settings.data_dir / "sim.json",
    )


def _aws(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client of a loopback AWS stand-in, with moto's placeholder credentials."""
    dummy = None if "AWS_ACCESS_KEY_ID" in os.environ else DUMMY_CREDENTIALS
    return boto3.session.Session(
        region_name=region, aws_access_key_id=dummy, aws_secret_access_key=dummy
    ).client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def _create_stack(moto_url: str, region: str) -> local_stack.StackOutputs:
    cloudformation = _aws("cloudformation", moto_url, region)
    try:
        return local_stack.create_local_stack(cloudformation)
    finally:
        cloudformation.close()


def _prepare_simulator(ecs_url: str, settings: UpSettings) -> tuple[str, ...]:
    """Register the demo task definition (unless a restart kept it); the cluster's instances."""
    ecs = _aws("ecs", ecs_url, settings.region)
    try:
        if not ecs.list_task_definitions(familyPrefix=DEMO_FAMILY)["taskDefinitionArns"]:
            ecs.register_task_definition(
                family=DEMO_FAMILY,
                containerDefinitions=[
                    {"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27", "memory": 128}
                ],
            )
        pages = ecs.get_paginator("list_container_instances").paginate(cluster=settings.cluster)
        return tuple(arn for page in pages for arn in page["containerInstanceArns"])
    finally:
        ecs.close()
