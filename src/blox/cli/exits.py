"""Exit statuses of `blox` and the errors of its client commands; `main.main` renders them.

Every error is one line on stderr (`error: …`), never a traceback, and exits with:

    0    success (a rollout followed to completion, a list printed, …)
    1    a server answered an error (`error: HTTP 404 from scheduler: <its message>`), or
         an operation failed in another way (any BloxError without a status of its own)
    2    usage or configuration: an unknown flag or a bad value, a malformed config file, an
         unknown key or profile in it, a bad endpoint URL
    3    a server cannot be reached (refused, reset, timed out); the line names the endpoint
         and how to start one (`blox up`)
    4    the rollout followed failed: its deployment failed or was rolled back
    130  interrupted (Ctrl-C) while following a stream or a rollout

    CliError (BloxError)
     ├── UsageInvalid   Invalid       exit 2: a flag, an environment variable or the config file
     ├── ServerError                  exit 1: a server refused or failed a request
     ├── ServerDown     Unavailable   exit 3: a server cannot be reached
     └── RolloutFailed                exit 4: the deployment followed failed or was rolled back
"""

from __future__ import annotations

from blox import errors
from blox.client import errors as client_errors

__all__ = [
    "FAILED",
    "INTERRUPTED",
    "OK",
    "ROLLOUT_FAILED",
    "UNREACHABLE",
    "USAGE",
    "CliError",
    "RolloutFailed",
    "ServerDown",
    "ServerError",
    "UsageInvalid",
    "code_of",
]

OK = 0
FAILED = 1
USAGE = 2  # click's own status for a usage error, so every bad input exits alike
UNREACHABLE = 3
ROLLOUT_FAILED = 4
INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class CliError(errors.BloxError):
    """Root of the client commands' errors; `exit_code` is the status `blox` exits with."""

    exit_code = FAILED


class UsageInvalid(CliError, errors.Invalid):
    """A flag, an environment variable or the config file holds something unusable."""

    exit_code = USAGE


class ServerError(CliError):
    """A server answered an error status, or something that is not its API."""

    exit_code = FAILED


class ServerDown(CliError, errors.Unavailable):
    """A server could not be connected to, or did not answer in time."""

    exit_code = UNREACHABLE


class RolloutFailed(CliError):
    """The deployment followed ended failed or rolled back."""

    exit_code = ROLLOUT_FAILED


def code_of(error: errors.BloxError) -> int:
    """The exit status for `error` (the table in the module docstring)."""
    if isinstance(error, CliError):
        return error.exit_code
    if isinstance(error, client_errors.ServerUnreachable):
        return UNREACHABLE
    return FAILED
