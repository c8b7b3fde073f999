"""`blox css`: the cluster state service: ingest ECS events from SQS, serve the v0.3 read API.

The v0.3 flags (`--queue`, `--bind`, `--etcd-endpoint`, `--version`) keep their meaning; blox-ecs
adds a default bind address (127.0.0.1:3000), `--store`, an embedded default store in
`--data-dir`, `--region`, `--endpoint-url` and the ingest knobs. It prints one JSON line when
serving and `{"stopped": true}` after Ctrl-C or SIGTERM (exit 0). Bad values are one line on
stderr (exit 1, rendered by `cli/main.py`), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import typer

from blox import __version__
from blox.css import service


def _version(value: bool) -> None:
    if value:
        typer.echo(f"blox-ecs {__version__}")
        raise typer.Exit


def css(
    queue: str = typer.Option(
        ..., "--queue", help="sqs://name, a bare SQS queue name, or a queue URL."
    ),
    bind: str = typer.Option(service.DEFAULT_BIND, "--bind", help="Listen address, host:port."),
    etcd_endpoint: list[str] = typer.Option(
        [], "--etcd-endpoint", help="etcd host:port (repeatable; v0.3). Same as --store etcd://."
    ),
    store: str = typer.Option(
        "", "--store", envvar="BLOX_STORE", help="Store URL (default: sqlite in --data-dir)."
    ),
    data_dir: Path = typer.Option(Path(".blox"), "--data-dir", help="Where state is kept."),
    region: str = typer.Option(
        "", "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)."
    ),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="SQS endpoint, e.g. moto's or LocalStack's."
    ),
    pollers: int = typer.Option(2, "--pollers", help="Concurrent SQS long polls."),
    wait_time: int = typer.Option(
        service.DEFAULT_WAIT_TIME_S, "--wait-time", help="SQS long poll, seconds (0-20)."
    ),
    dead_letter_queue: str | None = typer.Option(
        None, "--dead-letter-queue", help="Where poison messages go (name or URL)."
    ),
    account: list[str] = typer.Option(
        [], "--account", help="Only apply events of this AWS account (repeatable)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run the cluster state service until Ctrl-C or SIGTERM; prints one JSON line when ready."""
    host, port = service.parse_bind(bind)
    url = service.store_url(store or None, etcd_endpoint, data_dir)
    settings = service.CssSettings(
        queue=queue,
        store_url=url,
        host=host,
        port=port,
        dead_letter_queue=dead_letter_queue,
        region=region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
        endpoint_url=endpoint_url,
        pollers=pollers,
        wait_time_s=wait_time,
        accounts=frozenset(a.strip() for a in account) if account else None,
    )
    if not store and not etcd_endpoint:
        data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(settings))


async def _serve(settings: service.CssSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager's stop
        loop.add_signal_handler(signum, stop.set)

    def ready(summary: dict[str, Any]) -> None:
        typer.echo(json.dumps(summary), nl=True)

    await service.run(settings, stop=stop, ready=ready)
    typer.echo(json.dumps({"stopped": True}))
