"""`blox up`: the whole system on this machine, in one command.

moto (SQS, EventBridge, CloudFormation), the BloxLocal stack, the simulated ECS with a demo
cluster, the cluster state service and the daemon scheduler, on SQLite files in `--data-dir`
(kept across restarts) — composed by `blox.local.compose`. When everything is ready it prints
the endpoints and three commands to try (or one JSON line with `--json`); `--demo` also rolls
an environment out and shows its progress; `--once` stops as soon as everything was ready.
Ctrl-C or SIGTERM stops everything in order, exit 0. Bad options, a port in use or a data dir
that is not writable are one line on stderr (exit 1, rendered by `cli/main.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import typer

from blox.cli import output, rollout
from blox.cli.progress import LiveView, PlainView, View
from blox.client import AsyncSchedulerClient, HttpNotFound
from blox.clock import SystemClock
from blox.contract import scheduler
from blox.local import compose
from blox.obs import listen, setup_logging


def up(
    data_dir: Path = typer.Option(Path(".blox"), "--data-dir", help="Where state is kept."),
    store: str = typer.Option(
        "", "--store", envvar="BLOX_STORE", help="One store URL for both services, e.g. etcd://."
    ),
    cluster: str = typer.Option("demo", "--cluster", help="The simulated cluster's name."),
    instances: int = typer.Option(3, "--instances", help="Its container instances."),
    demo: bool = typer.Option(False, "--demo", help="Also create an environment and roll it out."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address every part listens on."),
    css_port: int = typer.Option(3000, "--css-port", help="The cluster state service's port."),
    scheduler_port: int = typer.Option(2000, "--scheduler-port", help="The scheduler's port."),
    sim_port: int = typer.Option(8001, "--sim-port", help="The simulated ECS's port (0: any)."),
    moto_port: int = typer.Option(0, "--moto-port", help="moto's port (0: any free one)."),
    aws: bool = typer.Option(False, "--aws", help="Use the real ECS and SQS (needs --queue)."),
    region: str = typer.Option(
        "", "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)."
    ),
    queue: str | None = typer.Option(None, "--queue", help="With --aws: the SQS queue of events."),
    reconcile_interval: str = typer.Option(
        "5m", "--reconcile-interval", help="Time between the CSS's reconciles with ECS."
    ),
    once: bool = typer.Option(False, "--once", help="Stop as soon as everything is ready."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line instead of text."),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning, …"),
    log_format: str = typer.Option("text", "--log-format", help="Log lines as text or json."),
) -> None:
    """Run blox-ecs on this machine: moto, the simulator, the CSS and the scheduler."""
    setup_logging(log_format, log_level)
    if demo and aws:
        raise compose.UpInvalid("--demo runs on the simulator: drop --aws")
    settings = compose.UpSettings(
        data_dir=data_dir,
        store_url=store or None,
        host=host,
        css_port=css_port,
        scheduler_port=scheduler_port,
        sim_port=sim_port,
        moto_port=moto_port,
        cluster=cluster,
        instances=instances,
        aws=aws,
        region=listen.region(region),
        queue=queue,
        reconcile_interval_s=listen.parse_duration("--reconcile-interval", reconcile_interval),
    )
    asyncio.run(_serve(settings, once=once, as_json=as_json, demo=demo))


async def _serve(settings: compose.UpSettings, *, once: bool, as_json: bool, demo: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager's stop
        loop.add_signal_handler(signum, stop.set)

    async def ready(endpoints: compose.Endpoints) -> None:
        if as_json:
            typer.echo(json.dumps(endpoints.summary()))
        else:
            typer.echo(welcome(endpoints, program=_program()))
        if demo:
            await roll_out_demo(endpoints, view=_view(as_json))
        if once:
            stop.set()

    await compose.run(settings, stop=stop, ready=ready)
    typer.echo(json.dumps({"stopped": True}) if as_json else "blox stopped.")


async def roll_out_demo(endpoints: compose.Endpoints, *, view: View) -> None:
    """Create the demo environment (unless a restart kept it), deploy it, follow the rollout."""
    clock = SystemClock()
    name = compose.DEMO_FAMILY
    async with AsyncSchedulerClient(endpoints.scheduler, clock=clock) as client:
        try:
            environment = await client.environment(name)
        except HttpNotFound:
            environment = await client.create_environment(
                scheduler.EnvironmentCreate(
                    name=name,
                    instance_group=scheduler.InstanceGroupCreate(cluster=endpoints.cluster),
                    task_definition=compose.DEMO_FAMILY,
                )
            )
        deployments = await client.deployments(name)
        if deployments and deployments[0].revision == environment.revision:
            deployment_id = deployments[0].id  # deployed before a restart: follow that one
        else:
            deployment_id = (await client.deploy(name, environment.deployment_token)).id
        try:
            progress, _ = await rollout.follow(client, name, deployment_id, clock=clock, view=view)
        finally:
            view.close()
        view.note(progress.outcome())


def _view(as_json: bool) -> View:
    """The rollout's progress: a live bar on a terminal, else plain lines (stderr with --json)."""
    if as_json:
        return PlainView(sys.stderr)
    return LiveView(output.console(sys.stdout)) if sys.stdout.isatty() else PlainView()


def _program() -> str:
    """How the user's shell reaches the `blox` command: `blox`, or its path in the venv."""
    installed = Path(sys.executable).with_name("blox")
    found = shutil.which("blox")
    if found and Path(found).resolve() == installed.resolve():
        return "blox"
    if installed.exists():
        return os.path.relpath(installed)
    return "blox"


def welcome(endpoints: compose.Endpoints, *, program: str) -> str:
    """The text printed when everything is ready: endpoints, then three things to try."""
    lines = [f"blox-ecs is up; state is kept in {endpoints.data_dir}.", ""]
    lines.append(f"  scheduler   {endpoints.scheduler}   (API docs at /docs)")
    lines.append(f"  css         {endpoints.css}")
    if endpoints.ecs is not None:
        lines.append(
            f"  ecs (sim)   {endpoints.ecs}   cluster {endpoints.cluster!r}, "
            f"{len(endpoints.instances)} instances"
        )
    if endpoints.moto is not None:
        queue = endpoints.queue.rsplit("/", 1)[-1]
        lines.append(f"  aws (moto)  {endpoints.moto}   SQS queue {queue} of the BloxLocal stack")
    cluster = endpoints.cluster
    family = compose.DEMO_FAMILY if endpoints.ecs is not None else "FAMILY"
    if endpoints.ecs is None:
        cluster = "CLUSTER"  # a real fleet: the user's own names
    lines += [
        "",
        "Try:",
        f"  {program} env create {family} --cluster {cluster} --task-definition {family}",
        f"  {program} deploy {family} --wait",
        f"  {program} tasks --cluster {cluster}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
