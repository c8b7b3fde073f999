"""The `blox` command: registers the sub-commands and renders every BloxError in one place.

Servers: `up`, `css`, `scheduler`, `sim`, `store`. Clients of the running servers (`envs`,
`rollout`, `queries`): `env …`, `deploy`, `rollout status`, `tasks`, `instances`,
`watch tasks|instances`, `version`. An error we raise on purpose prints as one line on stderr,
never as a traceback, with the exit status `exits` documents (1 a server refused, 2 usage or
configuration, 3 a server unreachable, 4 a rollout failed); a usage error is typer's (2).
"""

from __future__ import annotations

import logging
import sys

import typer

from blox import __version__, errors
from blox.cli import css, envs, exits, queries, rollout, scheduler, sim, store, up
from blox.obs import setup_logging

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="blox",
    help="blox-ecs: cluster state service, daemon scheduler and local ECS for Amazon ECS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(store.app, name="store")
app.add_typer(sim.app, name="sim")
app.command("up")(up.up)
app.command("css")(css.css)
app.command("scheduler")(scheduler.scheduler)
app.add_typer(envs.app, name="env")
app.command("deploy")(rollout.deploy)
app.add_typer(rollout.app, name="rollout")
app.command("tasks")(queries.tasks)
app.command("instances")(queries.instances)
app.add_typer(queries.watch_app, name="watch")
app.command("version")(queries.version)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"blox-ecs {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level."),
) -> None:
    # One handler on the root logger; `blox css` / `blox scheduler` replace it with theirs.
    setup_logging("text", logging.DEBUG if verbose else logging.WARNING)


def main() -> None:
    """Run the command line; a BloxError becomes one line on stderr and its exit status."""
    try:
        app()  # standalone: typer prints usage errors itself, with exit status 2
    except errors.BloxError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exits.code_of(exc))
    except Exception as exc:
        # A bug of ours: one line for the user, the traceback only with --verbose.
        logger.debug("unexpected error", exc_info=True)
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", err=True
        )
        sys.exit(1)
