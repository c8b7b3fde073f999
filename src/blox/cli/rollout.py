"""`blox deploy` and `blox rollout status`: start a rollout, and follow one to its end.

`deploy ENV` deploys the environment's current revision with its `deploymentToken` (the
scheduler refuses a token already deployed); `--revision N` deploys a copy of revision N
instead (a rollback, or forward again). `rollout status ENV` follows the newest deployment (or
`--deployment ID`): every `POLL_S` it reads the environment's counters and the deployment, and
shows them (a live bar on a terminal, plain lines elsewhere) until the deployment completes
(exit 0) or fails or is rolled back (exit 4, `exits.RolloutFailed`, saying why). A deployment
superseded by a newer one hands over to that one. `--no-follow` looks once (exit 4 only if it
has failed). `deploy --wait` and `env rollback --wait` follow theirs the same way.

The loop is asyncio on an injected `Clock`; `progress.progress_of` decides, this module only
polls and reports. With `-o json|yaml` the view goes to stderr and the final deployment, as
the scheduler's JSON, to stdout.
"""

from __future__ import annotations

import asyncio
import sys

import typer

from blox.cli import output, tables
from blox.cli.exits import RolloutFailed, ServerError
from blox.cli.progress import LiveView, PlainView, RolloutProgress, View, progress_of
from blox.cli.session import SCHEDULER, Session, client_command, interruptible, talking_to
from blox.client import AsyncSchedulerClient
from blox.clock import Clock, SystemClock
from blox.contract import scheduler

__all__ = ["POLL_S", "app", "deploy", "finish", "follow"]

POLL_S = 0.5  # how often the follower looks; the controller's status changes about as often

app = typer.Typer(help="Follow rollouts.", no_args_is_help=True)


async def follow(
    client: AsyncSchedulerClient,
    name: str,
    deployment_id: str | None,
    *,
    clock: Clock,
    view: View,
    once: bool = False,
    poll_s: float = POLL_S,
) -> tuple[RolloutProgress, scheduler.DeploymentPublic]:
    """Poll `name`'s deployment (default: its newest) until it is final (or once); the last
    progress and deployment seen."""
    if deployment_id is None:
        deployment_id = await _newest(client, name)
    while True:
        environment = await client.environment(name)
        deployment = await client.deployment(name, deployment_id)
        if deployment.status == "superseded":
            newest = await _newest(client, name)
            if newest != deployment_id:
                why = f" ({deployment.reason})" if deployment.reason else ""
                view.note(f"deployment {deployment_id} was superseded by {newest}{why}")
                deployment_id = newest
                continue
        progress = progress_of(environment, deployment)
        view.show(progress)
        if once or progress.is_final:
            return progress, deployment
        await clock.sleep(poll_s)


async def _newest(client: AsyncSchedulerClient, name: str) -> str:
    found = await client.deployments(name)
    if not found:
        raise ServerError(f"environment {name} has no deployment yet: `blox deploy {name}`")
    return found[0].id


def _view(session: Session) -> View:
    """A live bar on a terminal when the view has stdout; plain lines elsewhere."""
    if session.output != "table":
        return PlainView(sys.stderr)
    if sys.stdout.isatty():
        return LiveView(output.console(sys.stdout))
    return PlainView()


def _watch(
    session: Session, name: str, deployment_id: str | None, *, once: bool
) -> tuple[RolloutProgress, scheduler.DeploymentPublic]:
    """Run `follow` against the session's scheduler, on the system clock."""
    clock = SystemClock()
    view = _view(session)

    async def run() -> tuple[RolloutProgress, scheduler.DeploymentPublic]:
        async with session.async_scheduler(clock) as client:
            return await follow(client, name, deployment_id, clock=clock, view=view, once=once)

    try:
        with talking_to(SCHEDULER, session.settings.scheduler_endpoint), interruptible():
            return asyncio.run(run())
    finally:
        view.close()


def _report(
    session: Session,
    progress: RolloutProgress,
    deployment: scheduler.DeploymentPublic,
    *,
    once: bool,
) -> None:
    """Print the outcome; RolloutFailed when the deployment failed."""
    if session.output != "table":
        output.emit(output.payload(deployment), session.output, lambda: "")
    if progress.is_failed:
        raise RolloutFailed(progress.outcome())
    if session.output == "table" and (progress.is_completed or not once):
        typer.echo(progress.outcome())


def finish(session: Session, deployment: scheduler.DeploymentPublic, *, wait: bool) -> None:
    """After starting `deployment`: print it, or with `wait` follow it to its end."""
    if not wait:
        output.emit(
            output.payload(deployment), session.output, lambda: tables.deployment_view(deployment)
        )
        return
    progress, final = _watch(session, deployment.environment_name, deployment.id, once=False)
    _report(session, progress, final, once=False)


@client_command
def deploy(
    session: Session,
    name: str = typer.Argument(..., help="The environment.", show_default=False),
    revision: int | None = typer.Option(
        None, "--revision", "-r", min=1, help="Deploy a copy of this kept revision instead."
    ),
    wait: bool = typer.Option(
        False, "--wait", "-w", help="Follow the rollout; exit 4 if it fails."
    ),
) -> None:
    """Deploy an environment's current revision (or revision N) to its instances."""
    with session.scheduler() as client:
        if revision is None:
            environment = client.environment(name)
            deployment = client.deploy(name, environment.deployment_token)
        else:
            deployment = client.rollback(name, revision)
    finish(session, deployment, wait=wait)


@app.command("status")
@client_command
def status(
    session: Session,
    name: str = typer.Argument(..., help="The environment.", show_default=False),
    deployment: str | None = typer.Option(
        None, "--deployment", "-d", help="Follow this deployment (default: the newest)."
    ),
    no_follow: bool = typer.Option(False, "--no-follow", help="Look once, then exit."),
) -> None:
    """Follow a rollout until it completes (exit 0) or fails (exit 4), showing its progress."""
    progress, final = _watch(session, name, deployment, once=no_follow)
    _report(session, progress, final, once=no_follow)
