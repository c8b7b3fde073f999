"""Errors of the local installation's CloudFormation step, in the `blox.errors` tree.

`blox.local.stack` raises only these; botocore's exceptions are translated there and never
leave it. `blox up` prints the message as one line, so each says what happened and what to do.

    LocalStackError (BloxError)
     ├── StackRejected        Invalid, Permanent       CloudFormation refused the template or
     │                                                 its parameters (ValidationError, 4xx)
     ├── StackFailed          Permanent                CREATE_FAILED / ROLLBACK_* / DELETE_*:
     │                                                 names the failed resource and its reason
     ├── StackMismatch        Conflict, Permanent      a stack of that name exists but is not a
     │                                                 BloxLocal stack with these parameters
     ├── StackTimedOut        Unavailable, Temporary   not complete within the wait bound
     ├── StackDenied          Unauthorized, Permanent  no credentials, or refused
     └── CloudFormationUnavailable  Unavailable, Temporary   endpoint unreachable, 5xx, throttled
"""

from __future__ import annotations

from blox import errors

__all__ = [
    "CloudFormationUnavailable",
    "LocalStackError",
    "StackDenied",
    "StackFailed",
    "StackMismatch",
    "StackRejected",
    "StackTimedOut",
]


class LocalStackError(errors.BloxError):
    """Root of the local stack's errors; `stack_name` says which stack."""

    def __init__(self, message: str, *, stack_name: str) -> None:
        super().__init__(message)
        self.stack_name = stack_name


class StackRejected(LocalStackError, errors.Invalid, errors.Permanent):
    """CloudFormation refused the template or its parameters before creating anything."""


class StackFailed(LocalStackError, errors.Permanent):
    """The stack ended in a failed state; `resource` and `reason` come from its events."""

    def __init__(
        self,
        message: str,
        *,
        stack_name: str,
        status: str,
        resource: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, stack_name=stack_name)
        self.status = status
        self.resource = resource
        self.reason = reason


class StackMismatch(LocalStackError, errors.Conflict, errors.Permanent):
    """A complete stack of that name exists, but lacks our outputs or has other parameters."""


class StackTimedOut(LocalStackError, errors.Unavailable, errors.Temporary):
    """The stack was still in progress when the bounded wait ended."""


class StackDenied(LocalStackError, errors.Unauthorized, errors.Permanent):
    """Credentials were missing or CloudFormation refused them."""


class CloudFormationUnavailable(LocalStackError, errors.Unavailable, errors.Temporary):
    """The CloudFormation endpoint could not be reached, failed (5xx) or throttled."""
