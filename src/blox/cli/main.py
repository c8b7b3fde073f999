"""The `blox` command: registers the sub-commands and renders every BloxError in one place.

An error we raise on purpose prints as one line on stderr with exit status 1, never as a
traceback; a usage error is typer's (exit status 2).
"""

from __future__ import annotations

import logging
import sys

import typer

from blox import __version__, errors
from blox.cli import css, scheduler, sim, store, up
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
    """Run the command line; a BloxError becomes one line on stderr and exit status 1."""
    try:
        app()  # standalone: typer prints usage errors itself, with exit status 2
    except errors.BloxError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        # A bug of ours: one line for the user, the traceback only with --verbose.
        logger.debug("unexpected error", exc_info=True)
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", err=True
        )
        sys.exit(1)
