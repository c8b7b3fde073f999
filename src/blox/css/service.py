"""Composition root for `blox css`: store, processor, SQS ingest and the read API on one loop.

`run(settings, stop=…, ready=…)` opens the store, builds the `Processor`, a boto3 SQS client,
resolves the queue (and the dead-letter queue), binds the listen socket, starts the pollers and
uvicorn, and calls `ready` with what a user needs to reach it. When `stop` is set (or uvicorn
exits on a signal, or the pollers end) it shuts down in order: the HTTP server, the pollers
(which finish and ack the batch in hand), the SQS client, the store. Caller: `blox.cli.css`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import uvicorn

from blox import errors
from blox.clock import Clock, SystemClock
from blox.css.api.app import create_app
from blox.css.errors import CssError
from blox.css.ingest.disposition import parse_queue
from blox.css.ingest.sqs import MAX_WAIT_TIME_S, SqsPoller, resolve_queue
from blox.css.processor import Processor
from blox.store import Store, open_store, url

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["CssSettings", "SettingsInvalid", "BindFailed", "parse_bind", "store_url", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_BIND = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_WAIT_TIME_S = 10  # v0.3's long poll
DUMMY_CREDENTIALS = "testing"  # what moto accepts; used only with an endpoint URL


class SettingsInvalid(CssError, errors.Invalid):
    """A `blox css` setting is malformed or contradicts another one."""


class BindFailed(CssError, errors.Unavailable):
    """The listen address cannot be bound (in use, not local, or not resolvable)."""


def parse_bind(text: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`, or `:port` for all addresses) as (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise SettingsInvalid(
            f"--bind must look like host:port (e.g. {DEFAULT_BIND}), got {text!r}"
        )
    port = int(port_text)
    if not 0 < port <= 65535:
        raise SettingsInvalid(f"--bind port must be between 1 and 65535, got {port}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, port


def store_url(store: str | None, etcd_endpoints: Sequence[str], data_dir: Path) -> str:
    """The store URL from `--store`, `--etcd-endpoint`s (v0.3), or sqlite in the data folder.

    Both given is fine only when they name the same etcd endpoints.
    """
    from_etcd = f"etcd://{','.join(e.strip() for e in etcd_endpoints)}" if etcd_endpoints else ""
    if from_etcd:
        try:
            etcd = url.parse(from_etcd)
        except errors.BloxError as exc:
            raise SettingsInvalid(f"--etcd-endpoint must be host:port: {exc}") from exc
    if store and from_etcd:
        given = url.parse(store)
        if given.scheme != "etcd" or sorted(given.endpoints) != sorted(etcd.endpoints):
            raise SettingsInvalid(
                f"--store {store} and --etcd-endpoint {', '.join(etcd_endpoints)} disagree; "
                "give one of them"
            )
    if store:
        url.parse(store)  # a malformed URL fails here, as one line
        return store
    if from_etcd:
        return from_etcd
    return f"sqlite:{data_dir.resolve() / 'css.db'}"


@dataclass(frozen=True)
class CssSettings:
    """Everything `blox css` can be told; validated when built."""

    queue: str
    store_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    dead_letter_queue: str | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None  # SQS endpoint, e.g. moto's or LocalStack's
    pollers: int = 2
    wait_time_s: int = DEFAULT_WAIT_TIME_S
    accounts: frozenset[str] | None = None  # None: events of every account

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.port <= 65535, f"--bind port must be within 0..65535, got {self.port}"),
            (self.pollers >= 1, f"--pollers must be >= 1, got {self.pollers}"),
            (
                0 <= self.wait_time_s <= MAX_WAIT_TIME_S,
                f"--wait-time must be within 0..{MAX_WAIT_TIME_S}, got {self.wait_time_s}",
            ),
            (bool(self.queue.strip()), "--queue must not be empty"),
            (self.accounts is None or bool(self.accounts), "--account must not be empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsInvalid(message)
        for spec in (self.queue, self.dead_letter_queue):
            if spec is not None:
                parse_queue(spec)  # kinesis:// or a malformed name fails before anything opens


@contextlib.contextmanager
def _sqs_client(settings: CssSettings) -> Iterator[SQSClient]:
    dummy = settings.endpoint_url is not None and "AWS_ACCESS_KEY_ID" not in os.environ
    session = boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=DUMMY_CREDENTIALS if dummy else None,
        aws_secret_access_key=DUMMY_CREDENTIALS if dummy else None,
    )
    client = session.client("sqs", endpoint_url=settings.endpoint_url)
    try:
        yield client
    finally:
        client.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or BindFailed saying why."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise BindFailed(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BindFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _api_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def run(
    settings: CssSettings,
    *,
    stop: asyncio.Event,
    ready: Callable[[dict[str, Any]], None] | None = None,
    clock: Clock | None = None,
) -> None:
    """Ingest and serve until `stop` is set (or uvicorn exits); then stop in order."""
    clock = clock or SystemClock()
    store = await open_store(settings.store_url, clock=clock)
    try:
        with _sqs_client(settings) as sqs:
            queue_url = await asyncio.to_thread(resolve_queue, sqs, settings.queue)
            dead_letter_url = None
            if settings.dead_letter_queue:
                dead_letter_url = await asyncio.to_thread(
                    resolve_queue, sqs, settings.dead_letter_queue
                )
            processor = Processor(store, clock=clock, accounts=settings.accounts)
            poller = SqsPoller(
                sqs,
                queue_url,
                process=processor.process,
                clock=clock,
                pollers=settings.pollers,
                wait_time_s=settings.wait_time_s,
                dead_letter_url=dead_letter_url,
            )
            sock = _bind(settings.host, settings.port)
            try:
                summary = {"api": _api_url(sock), "store": store.url, "queue": queue_url}
                await _serve(store, sock, poller, stop=stop, ready=lambda: _call(ready, summary))
            finally:
                sock.close()
    finally:
        await store.close()


def _call(ready: Callable[[dict[str, Any]], None] | None, summary: dict[str, Any]) -> None:
    if ready is not None:
        ready(summary)


async def _serve(
    store: Store,
    sock: socket.socket,
    poller: SqsPoller,
    *,
    stop: asyncio.Event,
    ready: Callable[[], None],
) -> None:
    config = uvicorn.Config(create_app(store=store), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    polling = asyncio.create_task(poller.run(), name="blox.css.poller")
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="blox.css.api")
    stopped = asyncio.create_task(stop.wait(), name="blox.css.stop")
    ready()
    try:
        await asyncio.wait({polling, serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        server.should_exit = True
        await asyncio.wait({serving})
        await poller.stop()  # finishes and acks the batch in hand
        await asyncio.wait({polling})
    for task in (serving, polling):  # a crash of either is reported, not swallowed
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
