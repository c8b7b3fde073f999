"""Everything `blox css` can be told, validated: `CssSettings` and the parsers of its flags.

Pure (no I/O): `blox.cli.css` builds a `CssSettings` from flags; `blox.css.service.run` uses it.
A malformed or contradictory value raises `SettingsInvalid`, one line naming the flag.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blox import errors
from blox.css.errors import CssError
from blox.css.ingest.disposition import parse_queue
from blox.css.ingest.sqs import MAX_WAIT_TIME_S
from blox.obs import listen
from blox.obs.errors import BindFailed
from blox.obs.listen import parse_duration
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


def parse_bind(text: str) -> tuple[str, int]:
    """`--bind` as (host, port); see `blox.obs.listen.parse_bind`."""
    return listen.parse_bind(text, example=DEFAULT_BIND)


def store_url(store: str | None, etcd_endpoints: Sequence[str], data_dir: Path) -> str:
    """The CSS's store URL (`css.db` in the data folder by default)."""
    return url.from_flags(store, etcd_endpoints, data_dir, file_name="css.db")


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
