"""`blox tasks`, `blox instances`, `blox watch tasks|instances` and `blox version`: read-only.

`tasks` and `instances` list what the cluster state service knows (every page; `-o json` is
`{"items": [...]}` as `GET /v1/tasks` answers). `watch` prints one JSON line per change, the
CSS's own JSON of the entity (its `metadata.entityVersion` included), from `--from-version N`
(N included) or from now; the SDK's `Watch` reconnects and resumes by itself when the CSS
restarts or the connection drops. The CSS must answer once at the start (else exit 3); after
that the watch waits for it as long as it takes, until Ctrl-C (exit 130) or `--count`
changes. `version` prints the client's version and whether each server answers.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from blox import __version__
from blox.cli import output, tables
from blox.cli.config import Settings
from blox.cli.exits import CliError
from blox.cli.session import CSS, SCHEDULER, Session, client_command, interruptible
from blox.client import CssClient, Watch
from blox.contract import css

__all__ = ["instances", "tasks", "version", "watch_app"]

watch_app = typer.Typer(
    help="Follow changes of tasks or instances, one JSON line each.", no_args_is_help=True
)

ClusterOption = typer.Option(None, "--cluster", "-c", help="Only this cluster's (name or ARN).")


@client_command
def tasks(
    session: Session,
    cluster: str | None = ClusterOption,
    status: str | None = typer.Option(
        None, "--status", "-s", help="Only tasks in this status (pending, running, stopped)."
    ),
    started_by: str | None = typer.Option(
        None, "--started-by", help="Only tasks started by this (a deployment id for daemons)."
    ),
) -> None:
    """List the tasks the cluster state service knows."""
    with session.css() as client:
        items = client.tasks(cluster=cluster, status=status, started_by=started_by)
    output.emit(output.payload(items), session.output, lambda: tables.tasks_table(items))


@client_command
def instances(
    session: Session,
    cluster: str | None = ClusterOption,
    status: str | None = typer.Option(
        None, "--status", "-s", help="Only instances in this status (active, draining …)."
    ),
) -> None:
    """List the container instances the cluster state service knows."""
    with session.css() as client:
        items = client.instances(cluster=cluster, status=status)
    output.emit(output.payload(items), session.output, lambda: tables.instances_table(items))


FromVersionOption = typer.Option(
    None, "--from-version", min=0, help="Start at this entityVersion (included); default: now."
)
CountOption = typer.Option(0, "--count", "-n", min=0, help="Stop after this many (0: never).")


def _stream(
    session: Session,
    kind: str,
    open_watch: Any,
    count: int,
) -> None:
    """Print each change of `open_watch(client)` as one JSON line, until `count` (0: never)."""
    with interruptible(), session.css() as client:
        client.ping()  # reachable now? (else exit 3, not a hang)
        seen = 0
        watch: Watch[Any] = open_watch(client)
        with watch:
            for _, item in watch:
                typer.echo(css.dump(item).decode())
                seen += 1
                if count and seen >= count:
                    return
    raise CliError(f"the {kind} stream ended")  # pragma: no cover - a Watch never ends


@watch_app.command("tasks")
@client_command
def watch_tasks(
    session: Session, from_version: int | None = FromVersionOption, count: int = CountOption
) -> None:
    """Print every task change as one JSON line; resumes by itself if the CSS restarts."""

    def open_watch(client: CssClient) -> Watch[css.TaskPublic]:
        return client.watch_tasks(from_version)

    _stream(session, "task", open_watch, count)


@watch_app.command("instances")
@client_command
def watch_instances(
    session: Session, from_version: int | None = FromVersionOption, count: int = CountOption
) -> None:
    """Print every container instance change as one JSON line; resumes by itself."""

    def open_watch(client: CssClient) -> Watch[css.ContainerInstancePublic]:
        return client.watch_instances(from_version)

    _stream(session, "instance", open_watch, count)


def _probe(session: Session, server: str) -> dict[str, Any]:
    settings: Settings = session.settings
    endpoint = settings.css_endpoint if server == CSS else settings.scheduler_endpoint
    try:
        if server == CSS:
            with session.css() as css_client:
                css_client.ping()
        else:
            with session.scheduler() as client:
                client.ping()
    except CliError as exc:
        return {"endpoint": endpoint, "reachable": False, "error": str(exc)}
    return {"endpoint": endpoint, "reachable": True}


@client_command
def version(session: Session) -> None:
    """Print the client's version, and whether the CSS and the scheduler answer."""
    data: dict[str, Any] = {
        "client": __version__,
        "scheduler": _probe(session, SCHEDULER),
        "css": _probe(session, CSS),
    }

    def table() -> Table:
        rows = Table("COMPONENT", "ENDPOINT", "STATE", box=None, pad_edge=False)
        rows.add_row("client", "-", f"blox-ecs {__version__}")
        for name in ("scheduler", "css"):
            probe = data[name]
            state = "reachable" if probe["reachable"] else f"unreachable: {probe['error']}"
            rows.add_row(name, probe["endpoint"], state)
        return rows

    output.emit(data, session.output, table)
