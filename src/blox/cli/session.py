"""What every client command shares: its common options, the SDK clients, one-line errors.

`client_command` adds `--css-endpoint`, `--scheduler-endpoint`, `--profile`, `--output/-o` and
`--sigv4-region` to a command and hands it a `Session` (the resolved `config.Settings`), so
that the options go anywhere on the command line as kubectl's do. A `Session` builds the
`blox.client` clients (signed with SigV4 when a region is set) inside `talking_to`, which turns
the SDK's errors into the CLI's (`exits`): `HTTP 404 from scheduler: <server text>`, or the
endpoint that cannot be reached and how to start it. Callers: `envs`, `rollout`, `queries`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx
import typer

from blox.cli import config
from blox.cli.config import Flags, Output, Settings
from blox.cli.exits import INTERRUPTED, ServerDown, ServerError, UsageInvalid
from blox.client import AsyncSchedulerClient, Backoff, CssClient, SchedulerClient, SigV4Auth
from blox.client import errors as client_errors
from blox.clock import Clock

__all__ = [
    "BACKOFF",
    "CSS",
    "SCHEDULER",
    "Session",
    "client_command",
    "interruptible",
    "talking_to",
]

P = ParamSpec("P")
C = TypeVar("C")

# A person waits for the answer: three quick tries, then the error (a script can loop itself).
BACKOFF = Backoff(base_s=0.2, cap_s=1.0, max_attempts=3)
SCHEDULER = "scheduler"
CSS = "CSS"
_WHERE = {
    SCHEDULER: ("--scheduler-endpoint", "BLOX_SCHEDULER_ENDPOINT", "blox scheduler"),
    CSS: ("--css-endpoint", "BLOX_CSS_ENDPOINT", "blox css"),
}


class Session:
    """The settings of one command, and the clients they make."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def output(self) -> Output:
        """How to print results: table, json or yaml."""
        return self.settings.output

    @contextmanager
    def scheduler(self) -> Iterator[SchedulerClient]:
        """A scheduler client; the SDK's errors inside become one-line CLI errors."""
        endpoint = self.settings.scheduler_endpoint
        client = _built(
            SCHEDULER, lambda: SchedulerClient(endpoint, backoff=BACKOFF, auth=self._auth())
        )
        with talking_to(SCHEDULER, endpoint), client:
            yield client

    def async_scheduler(self, clock: Clock) -> AsyncSchedulerClient:
        """An asyncio scheduler client sleeping on `clock` (wrap its use in `talking_to`)."""
        endpoint = self.settings.scheduler_endpoint
        return _built(
            SCHEDULER,
            lambda: AsyncSchedulerClient(endpoint, backoff=BACKOFF, clock=clock, auth=self._auth()),
        )

    @contextmanager
    def css(self) -> Iterator[CssClient]:
        """A CSS client whose watches resume forever; errors inside as `scheduler`'s."""
        endpoint = self.settings.css_endpoint
        client = _built(CSS, lambda: CssClient(endpoint, backoff=BACKOFF, auth=self._auth()))
        with talking_to(CSS, endpoint), client:
            yield client

    def _auth(self) -> httpx.Auth | None:
        """SigV4 signing for API Gateway when a region is set (credentials: the AWS chain)."""
        region = self.settings.sigv4_region
        if region is None:
            return None
        return SigV4Auth(region=region, profile=self.settings.aws_profile)


@contextmanager
def talking_to(server: str, endpoint: str) -> Iterator[None]:
    """Turn the SDK's errors raised inside into the CLI's, naming `server` and `endpoint`."""
    flag, variable, command = _WHERE.get(server, ("", "", "blox up"))
    try:
        yield
    except client_errors.ServerUnreachable as exc:
        raise ServerDown(
            f"cannot reach the {server} at {endpoint} ({exc}): start it with `blox up` "
            f"(or `{command}`), or point {flag} or {variable} at a running one"
        ) from exc
    except client_errors.HttpError as exc:
        hint = ""
        if isinstance(exc, client_errors.HttpUnauthorized):
            hint = " (check --sigv4-region and the AWS credentials)"
        raise ServerError(f"HTTP {exc.status} from {server}: {exc.text}{hint}") from exc
    except client_errors.NoCredentials as exc:
        raise ServerError(f"cannot sign requests to the {server}: {exc}") from exc
    except client_errors.ResponseInvalid as exc:
        raise ServerError(
            f"the {server} at {endpoint} answered something that is not its API ({exc}); "
            f"is {flag} right?"
        ) from exc


def _built(server: str, build: Callable[[], C]) -> C:
    """`build()`, a client; the SDK's own check of a URL config.py let through → UsageInvalid."""
    try:
        return build()
    except ValueError as exc:
        raise UsageInvalid(f"{_WHERE[server][0]}: {exc}") from exc


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C inside ends the command quietly with exit status 130 (click would say 1)."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("", err=True)  # end the line ^C was drawn on
        raise typer.Exit(INTERRUPTED) from None


# -- the common options --------------------------------------------------------------------

_COMMON = [
    inspect.Parameter(
        "css_endpoint",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None, "--css-endpoint", help="The CSS: URL or host:port (env BLOX_CSS_ENDPOINT)."
        ),
        annotation=str | None,
    ),
    inspect.Parameter(
        "scheduler_endpoint",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            "--scheduler-endpoint",
            help="The scheduler: URL or host:port (env BLOX_SCHEDULER_ENDPOINT).",
        ),
        annotation=str | None,
    ),
    inspect.Parameter(
        "profile",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None, "--profile", help="A profile of the config file (env BLOX_PROFILE)."
        ),
        annotation=str | None,
    ),
    inspect.Parameter(
        "output",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, "--output", "-o", help="table, json or yaml (env BLOX_OUTPUT)."),
        annotation=str | None,
    ),
    inspect.Parameter(
        "sigv4_region",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            "--sigv4-region",
            help="Sign requests with SigV4 for API Gateway in this region (env BLOX_SIGV4_REGION).",
        ),
        annotation=str | None,
    ),
]
_COMMON_NAMES = frozenset(p.name for p in _COMMON)


def client_command(fn: Callable[Concatenate[Session, P], None]) -> Callable[..., None]:
    """`fn(session, ...)` as a typer command taking the common options too (see the module)."""
    signature = inspect.signature(fn, eval_str=True)
    own = list(signature.parameters.values())[1:]  # the first is the session
    clash = _COMMON_NAMES & {p.name for p in own}
    if clash:
        raise TypeError(f"{fn.__name__} takes common options itself: {sorted(clash)}")

    run: Callable[..., None] = fn

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        flags = Flags(**{name: kwargs.pop(name) for name in _COMMON_NAMES})
        run(Session(config.load(flags)), **kwargs)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _COMMON
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    del command.__wrapped__  # typer must read the new signature, not `fn`'s
    return command
