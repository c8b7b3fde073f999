"""Everything `blox css` can be told, validated: `CssSettings` and the parsers of its flags.

Pure (no I/O): `blox.cli.css` builds a `CssSettings` from flags; `blox.css.service.run` uses it.
A malformed or contradictory value raises `SettingsInvalid`, one line naming the flag.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blox import errors
from blox.css.errors import CssError
from blox.css.ingest.disposition import parse_queue
from blox.css.ingest.sqs import MAX_WAIT_TIME_S
from blox.store import url

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_WAIT_TIME_S",
    "BindFailed",
    "CssSettings",
    "SettingsInvalid",
    "parse_bind",
    "parse_duration",
    "store_url",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_BIND = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_WAIT_TIME_S = 10  # v0.3's long poll
DEFAULT_VISIBILITY_S = 30  # SQS's default; a slow batch is extended while in hand
MAX_VISIBILITY_S = 43_200  # SQS's limit: 12 hours
DEFAULT_RECONCILE_INTERVAL_S = 300.0  # the 5 minutes
DEFAULT_TOMBSTONE_TTL_S = 3 * 3600.0  # ECS forgets a stopped task after about an hour


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


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?", re.ASCII)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(flag: str, text: str) -> float:
    """Seconds in `text`: a number with an optional unit ms, s (default), m or h."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise SettingsInvalid(f"{flag} must be a duration such as 30s, 5m or 1h, got {text!r}")
    return float(match[1]) * _UNIT_S[match[2] or "s"]


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
    sqs_endpoint_url: str | None = None  # SQS or Kinesis, e.g. moto's or LocalStack's

    ecs_endpoint_url: str | None = None  # e.g. the simulator's
    reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S  # 0: never reconcile
    tombstone_ttl_s: float = DEFAULT_TOMBSTONE_TTL_S
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    pollers: int = 2
    visibility_s: int = DEFAULT_VISIBILITY_S
    wait_time_s: int = DEFAULT_WAIT_TIME_S
    accounts: frozenset[str] | None = None  # None: events of every account

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.port <= 65535, f"--bind port must be within 0..65535, got {self.port}"),
            (self.pollers >= 1, f"--pollers must be >= 1, got {self.pollers}"),
            (
                1 <= self.visibility_s <= MAX_VISIBILITY_S,
                f"--visibility-timeout must be within 1..{MAX_VISIBILITY_S}, "
                f"got {self.visibility_s}",
            ),
            (
                0 <= self.wait_time_s <= MAX_WAIT_TIME_S,
                f"--wait-time must be within 0..{MAX_WAIT_TIME_S}, got {self.wait_time_s}",
            ),
            (bool(self.queue.strip()), "--queue must not be empty"),
            (self.accounts is None or bool(self.accounts), "--account must not be empty"),
            (
                self.reconcile_interval_s == 0 or self.reconcile_interval_s >= 1,
                "--reconcile-interval must be 0 (never) or at least 1s, "
                f"got {self.reconcile_interval_s:g}s",
            ),
            (
                self.tombstone_ttl_s >= 0,
                f"--tombstone-ttl must not be negative, got {self.tombstone_ttl_s:g}s",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsInvalid(message)
        for spec in (self.queue, self.dead_letter_queue):
            if spec is not None:
                parse_queue(spec)  # a malformed name or stream fails before anything opens
        if self.dead_letter_queue is not None:
            if parse_queue(self.queue)[0] == "kinesis":
                raise SettingsInvalid(
                    "--dead-letter-queue is for SQS; Kinesis poison is logged and skipped"
                )
            if parse_queue(self.dead_letter_queue)[0] == "kinesis":
                raise SettingsInvalid("--dead-letter-queue must be an SQS queue")
