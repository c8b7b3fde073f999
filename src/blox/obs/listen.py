"""What every blox server does to listen, to read its common flags and to stop.

`parse_bind("host:port")`, `bind(host, port)` (a listening socket, or `BindFailed` saying why),
`api_url(sock)`, `parse_duration(flag, "5m")`, `region(flag)` (AWS's usual fallbacks),
`unless_stopped(stop, work)` (start-up work that a signal may cut short) and `server(app)` (the
uvicorn server both APIs run on the sockets `bind` made). Used by the composition roots of
`blox css`, `blox scheduler` and `blox up` (the store flags are `blox.store.url.from_flags`);
every error is one line naming the flag.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import socket
from collections.abc import Awaitable
from typing import Any

import uvicorn

from blox.obs.errors import BindFailed, FlagInvalid

__all__ = [
    "GRACEFUL_SHUTDOWN_S",
    "api_url",
    "bind",
    "parse_bind",
    "parse_duration",
    "region",
    "server",
    "settle_heap",
    "unless_stopped",
]

# How long a stopping server lets open requests finish; streams (blox watch, an informer)
# never end on their own.
GRACEFUL_SHUTDOWN_S = 5

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?", re.ASCII)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_bind(text: str, *, example: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`, or `:port` for all addresses) as (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise FlagInvalid(f"--bind must look like host:port (e.g. {example}), got {text!r}")
    port = int(port_text)
    if not 0 < port <= 65535:
        raise FlagInvalid(f"--bind port must be between 1 and 65535, got {port}")
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, port


def parse_duration(flag: str, text: str) -> float:
    """Seconds in `text`: a number with an optional unit ms, s (default), m or h."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise FlagInvalid(f"{flag} must be a duration such as 30s, 5m or 1h, got {text!r}")
    return float(match[1]) * _UNIT_S[match[2] or "s"]


def bind(host: str, port: int) -> socket.socket:
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


def api_url(sock: socket.socket) -> str:
    """The http URL a listening socket answers on."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def region(flag: str) -> str:
    """The AWS region: the flag's, else AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1."""
    return (
        flag or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )


async def unless_stopped(stop: asyncio.Event, work: Awaitable[object]) -> bool:
    """Run `work` to its end (True), or cancel it when `stop` is set first (False); a failure
    of `work` is raised, not swallowed."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
        await asyncio.wait({task})
    if task.cancelled():
        return False
    task.result()
    return True


def server(app: Any) -> uvicorn.Server:
    """A uvicorn server for `app`: our logging (not uvicorn's), no lifespan, and a stop that
    cuts open streams after GRACEFUL_SHUTDOWN_S."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return uvicorn.Server(config)


def settle_heap() -> None:
    """Hide what start-up allocated (imports, AWS service models, the app) from the garbage
    collector's full passes (`gc.freeze`), so that a pass scans only what serving allocates:
    on a 100k-task CSS a full pass over everything stalled a request by 70-100 ms."""
    gc.collect()
    gc.freeze()
