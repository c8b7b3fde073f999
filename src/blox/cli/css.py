"""`blox css`: the cluster state service: ingest ECS events from SQS, serve the v0.3 read API.

The v0.3 flags (`--queue`, `--bind`, `--etcd-endpoint`, `--version`) keep their meaning; blox-ecs
adds a default bind address (127.0.0.1:3000), `--store`, an embedded default store in
`--data-dir`, `--region`, `--endpoint-url` and the ingest knobs. It prints one JSON line when
serving and `{"stopped": true}` after Ctrl-C or SIGTERM (exit 0). Bad values are one line on
stderr (exit 1, rendered by `cli/main.py`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

from blox.cli import serving
from blox.css import service
from blox.obs import listen, setup_logging


def css(
    queue: str = typer.Option(
        ..., "--queue", help="sqs://name, a queue name or URL, kinesis://stream or a stream ARN."
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
        None, "--endpoint-url", help="ECS and SQS endpoint, e.g. LocalStack's."
    ),
    ecs_endpoint_url: str | None = typer.Option(
        None, "--ecs-endpoint-url", help="ECS endpoint (overrides --endpoint-url), e.g. blox sim."
    ),
    sqs_endpoint_url: str | None = typer.Option(
        None, "--sqs-endpoint-url", help="SQS endpoint (overrides --endpoint-url), e.g. moto."
    ),
    reconcile_interval: str = typer.Option(
        "5m", "--reconcile-interval", help="Time between reconciles (e.g. 30s, 5m, 1h; 0: never)."
    ),
    tombstone_ttl: str = typer.Option(
        "3h", "--tombstone-ttl", help="How long a vanished task or instance is remembered."
    ),
    pollers: int = typer.Option(2, "--pollers", help="Concurrent SQS long polls."),
    wait_time: int = typer.Option(
        service.DEFAULT_WAIT_TIME_S, "--wait-time", help="SQS long poll, seconds (0-20)."
    ),
    visibility_timeout: int = typer.Option(
        30, "--visibility-timeout", help="Seconds a received message stays hidden (1-43200)."
    ),
    dead_letter_queue: str | None = typer.Option(
        None, "--dead-letter-queue", help="Where poison messages go (name or URL)."
    ),
    account: list[str] = typer.Option(
        [], "--account", help="Only apply events of this AWS account (repeatable)."
    ),
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
    """Run the cluster state service until Ctrl-C or SIGTERM; prints one JSON line when ready."""
    setup_logging(log_format, log_level)  # logs go to stderr; stdout keeps the JSON lines
    host, port = service.parse_bind(bind)
    url = service.store_url(store or None, etcd_endpoint, data_dir)
    settings = service.CssSettings(
        queue=queue,
        store_url=url,
        host=host,
        port=port,
        dead_letter_queue=dead_letter_queue,
        region=listen.region(region),
        sqs_endpoint_url=sqs_endpoint_url or endpoint_url,
        ecs_endpoint_url=ecs_endpoint_url or endpoint_url,
        reconcile_interval_s=service.parse_duration("--reconcile-interval", reconcile_interval),
        tombstone_ttl_s=service.parse_duration("--tombstone-ttl", tombstone_ttl),
        pollers=pollers,
        wait_time_s=wait_time,
        visibility_s=visibility_timeout,
        accounts=frozenset(a.strip() for a in account) if account else None,
    )
    if not store and not etcd_endpoint:
        data_dir.mkdir(parents=True, exist_ok=True)
    serving.serve(service.run, settings)
