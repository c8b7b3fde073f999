"""`blox up`: everything on one machine, on the embedded store.

Today it opens the embedded SQLite store in the data folder, takes the leadership of this
installation, keeps the store compacted, and reports; the simulator, CSS and scheduler join
it as their issues land (4 to 7). `--once` reports and exits, for scripts and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from blox.clock import Clock, SystemClock
from blox.store import Election, Leadership, Store, compaction, errors, open_store

T = TypeVar("T")


def up(
    data_dir: Path = typer.Option(Path(".blox"), "--data-dir", help="Where state is kept."),
    store: str = typer.Option(
        "", "--store", envvar="BLOX_STORE", help="Store URL (default: sqlite in the data folder)."
    ),
    once: bool = typer.Option(False, "--once", help="Report and exit instead of serving."),
) -> None:
    """Run blox-ecs on this machine: embedded store (more services arrive with later issues)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = store or f"sqlite:{data_dir.resolve() / 'blox.db'}"
    asyncio.run(_serve(url, once=once))


async def _serve(url: str, *, once: bool) -> None:
    clock = SystemClock()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager's stop
        loop.add_signal_handler(signum, stop.set)
    store = await open_store(url, clock=clock)
    election = Election(store, "up", ttl_s=10, clock=clock)
    try:
        identity = f"{socket.gethostname()}:{os.getpid()}"
        leadership = await _until(stop, election.campaign(identity))
        if leadership is None:
            return  # stopped while another blox led
        revision = await store.put("system/up", json.dumps({"by": identity}).encode())
        typer.echo(json.dumps({"store": url, "revision": revision, "leader": identity}))
        if not once:
            typer.echo("blox is up: the embedded store is ready. Ctrl-C stops it.")
            await _until(stop, _lead(store, leadership, clock))
            typer.echo("blox stopped.")
    finally:
        with contextlib.suppress(errors.StoreError):
            await election.resign()
        await store.close()


async def _lead(store: Store, leadership: Leadership, clock: Clock) -> None:
    """The leader's work until it loses the lease: today, keeping the store compacted."""
    compactor = asyncio.create_task(compaction.compact_forever(store, clock=clock))
    try:
        await leadership.lost.wait()
    finally:
        compactor.cancel()
    raise errors.StoreError(f"lost the leadership of {store.url}: another blox took over")


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of `work`, or None if `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
    await asyncio.wait({task})  # a cancelled `work` finishes its own clean-up first
    return None if task.cancelled() else task.result()
