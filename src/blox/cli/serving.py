"""What `blox css` and `blox scheduler` share: `--version`, and serving until a signal.

`serve(run, settings)` runs a service's `run(settings, stop=…, ready=…)` on a fresh loop, sets
`stop` on Ctrl-C or SIGTERM, prints the service's one JSON line when it is ready and
`{"stopped": true}` once it has stopped in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import typer

from blox import __version__

__all__ = ["serve", "version"]

S = TypeVar("S", contravariant=True)


class Service(Protocol[S]):
    """A service's `run`: serve `settings` until `stop`, calling `ready` once serving."""

    def __call__(
        self, settings: S, *, stop: asyncio.Event, ready: Callable[[dict[str, Any]], None]
    ) -> Awaitable[None]: ...


def version(value: bool) -> None:
    """The eager `--version` callback: print the version and exit."""
    if value:
        typer.echo(f"blox-ecs {__version__}")
        raise typer.Exit


def serve(run: Service[S], settings: S) -> None:
    """Run the service until Ctrl-C or SIGTERM."""
    asyncio.run(_serve(run, settings))


async def _serve(run: Service[S], settings: S) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager's stop
        loop.add_signal_handler(signum, stop.set)

    def ready(summary: dict[str, Any]) -> None:
        typer.echo(json.dumps(summary), nl=True)

    await run(settings, stop=stop, ready=ready)
    typer.echo(json.dumps({"stopped": True}))
