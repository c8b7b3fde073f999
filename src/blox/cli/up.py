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
import socket
from pathlib import Path

import typer

from blox.clock import SystemClock
from blox.store import Election, compaction, open_store


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
    store = await open_store(url, clock=clock)
    election = Election(store, "up", ttl_s=10, clock=clock)
    try:
        identity = f"{socket.gethostname()}:{os.getpid()}"
        await election.campaign(identity)
        revision = await store.put("system/up", json.dumps({"by": identity}).encode())
        typer.echo(json.dumps({"store": url, "revision": revision, "leader": identity}))
        if once:
            return
        typer.echo("blox is up: the embedded store is ready. Ctrl-C stops it.")
        await compaction.compact_forever(store, clock=clock)
    finally:
        with contextlib.suppress(Exception):
            await election.resign()
        await store.close()
