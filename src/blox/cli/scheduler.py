"""`blox scheduler`: the daemon scheduler: the v0.3 API on every replica, the controller on one.

The v0.3 flags (`--bind`, `--css-endpoint`, `--etcd-endpoint`, `--version`) keep their meaning;
blox-ecs defaults them to loopback (:2000, the CSS at :3000) and adds `--store`, an embedded
default store in `--data-dir`, `--region` and `--ecs-endpoint-url`. It prints one JSON line
when serving and `{"stopped": true}` after Ctrl-C or SIGTERM (exit 0). Bad values are one line
on stderr (exit 1, rendered by `cli/main.py`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

from blox.cli import serving
from blox.obs import listen, setup_logging
from blox.scheduler import service
from blox.store import url


def scheduler(
    bind: str = typer.Option(service.DEFAULT_BIND, "--bind", help="Listen address, host:port."),
    css_endpoint: str = typer.Option(
        service.DEFAULT_CSS, "--css-endpoint", help="The CSS, host:port (v0.3) or a URL."
    ),
    etcd_endpoint: list[str] = typer.Option(
        [], "--etcd-endpoint", help="etcd host:port (repeatable; v0.3). Same as --store etcd://."
    ),
    store: str = typer.Option(
        "", "--store", envvar="BLOX_SCHEDULER_STORE", help="Store URL (default: sqlite)."
    ),
    data_dir: Path = typer.Option(Path(".blox"), "--data-dir", help="Where state is kept."),
    region: str = typer.Option(
        "", "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)."
    ),
    ecs_endpoint_url: str | None = typer.Option(
        None, "--ecs-endpoint-url", "--endpoint-url", help="ECS endpoint, e.g. blox sim's."
    ),
    resync: str = typer.Option("5s", "--resync", help="Longest time between two passes."),
    log_format: str = typer.Option("text", "--log-format", help="Log lines as text or json."),
    log_level: str = typer.Option(
        "info", "--log-level", help="debug, info, warning, error or critical."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=serving.version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Run the daemon scheduler until Ctrl-C or SIGTERM; prints one JSON line when ready."""
    setup_logging(log_format, log_level)
    host, port = listen.parse_bind(bind, example=service.DEFAULT_BIND)
    settings = service.SchedulerSettings(
        store_url=url.from_flags(store or None, etcd_endpoint, data_dir, file_name="scheduler.db"),
        css_url=service.css_url(css_endpoint),
        host=host,
        port=port,
        region=listen.region(region),
        ecs_endpoint_url=ecs_endpoint_url,
        resync_s=listen.parse_duration("--resync", resync),
    )
    if not store and not etcd_endpoint:
        data_dir.mkdir(parents=True, exist_ok=True)
    serving.serve(service.run, settings)
