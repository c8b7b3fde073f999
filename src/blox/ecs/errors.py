"""ECS errors as blox errors, and `translated()`, the one place botocore's exceptions become them.

Everything `blox.ecs` raises is an `EcsError`; botocore's exceptions never leave the package.
Retrying code reads the `Temporary` / `Permanent` mixins (and `delay_s`), never a message.

    EcsError (BloxError)                         from: error code / HTTP status / exception
     ├── Throttled           Unavailable, Temporary   ThrottlingException, RequestLimitExceeded, 429
     ├── ServerError         Unavailable, Temporary   ServerException, InternalFailure, any 5xx
     ├── EndpointUnreachable Unavailable, Temporary   EndpointConnectionError, ConnectTimeout,
     │                                                ReadTimeout, closed connection
     ├── ClusterNotFound     NotFound, Permanent      ClusterNotFoundException
     ├── InvalidParameter    Invalid, Permanent       InvalidParameterException, Validation…,
     │                                                botocore ParamValidationError
     ├── ClientRefused       Invalid, Permanent       ClientException, any other 4xx, any other
     │                                                botocore error (bad region, config)
     └── AccessDenied        Unauthorized, Permanent  AccessDeniedException, UnrecognizedClient,
                                                      expired tokens, 401 / 403, no credentials
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from blox import errors

__all__ = [
    "AccessDenied",
    "ClientRefused",
    "ClusterNotFound",
    "EcsError",
    "EndpointUnreachable",
    "InvalidParameter",
    "ServerError",
    "Throttled",
    "from_client_error",
    "translated",
]


class EcsError(errors.BloxError):
    """Root of the ECS errors: the operation, ECS's error code and the HTTP status, when known."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.code = code
        self.status = status
        self.request_id = request_id


class _TemporaryEcsError(EcsError, errors.Temporary):
    """An ECS error that may go away; `delay_s` is ECS's hint (Retry-After) or None."""

    def __init__(self, message: str, *, delay_s: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.delay_s = delay_s


class Throttled(_TemporaryEcsError, errors.Unavailable):
    """ECS refused the request for its rate ("Rate exceeded"); back off and try again."""


class ServerError(_TemporaryEcsError, errors.Unavailable):
    """ECS failed on its side (HTTP 5xx)."""


class EndpointUnreachable(_TemporaryEcsError, errors.Unavailable):
    """The endpoint could not be connected to, or did not answer in time."""


class ClusterNotFound(EcsError, errors.NotFound, errors.Permanent):
    """The cluster named does not exist (or is INACTIVE)."""


class InvalidParameter(EcsError, errors.Invalid, errors.Permanent):
    """A parameter is malformed, out of range or names something that does not exist."""


class ClientRefused(EcsError, errors.Invalid, errors.Permanent):
    """ECS's catch-all ClientException, any other 4xx, or botocore refusing the request locally."""


class AccessDenied(EcsError, errors.Unauthorized, errors.Permanent):
    """Credentials are missing, expired or not allowed to do this."""


_BY_CODE: dict[str, type[EcsError]] = {
    "ThrottlingException": Throttled,
    "Throttling": Throttled,
    "ThrottledException": Throttled,
    "RequestLimitExceeded": Throttled,
    "TooManyRequestsException": Throttled,
    "ServerException": ServerError,
    "InternalFailure": ServerError,
    "InternalServerError": ServerError,
    "ServiceUnavailable": ServerError,
    "ServiceUnavailableException": ServerError,
    "ClusterNotFoundException": ClusterNotFound,
    "InvalidParameterException": InvalidParameter,
    "ValidationException": InvalidParameter,
    "InvalidParameterValue": InvalidParameter,
    "ClientException": ClientRefused,
    "AccessDeniedException": AccessDenied,
    "AccessDenied": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "InvalidClientTokenId": AccessDenied,
    "InvalidSignatureException": AccessDenied,
    "SignatureDoesNotMatch": AccessDenied,
    "ExpiredTokenException": AccessDenied,
    "ExpiredToken": AccessDenied,
    "MissingAuthenticationToken": AccessDenied,
}


def _by_status(status: int | None) -> type[EcsError]:
    if status == 429:
        return Throttled
    if status is not None and status >= 500:
        return ServerError
    if status in (401, 403):
        return AccessDenied
    return ClientRefused


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if isinstance(headers, dict) else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def from_client_error(exc: ClientError, operation: str | None = None) -> EcsError:
    """Our error for a botocore ClientError: by ECS's error code, else by HTTP status."""
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = error.get("Code") or None
    status = meta.get("HTTPStatusCode")
    cls = _BY_CODE.get(code or "") or _by_status(status)
    context: dict[str, Any] = {
        "operation": operation or exc.operation_name,
        "code": code,
        "status": status,
        "request_id": meta.get("RequestId"),
    }
    message = error.get("Message") or f"{code or status}"
    if issubclass(cls, _TemporaryEcsError):
        return cls(message, delay_s=_retry_after(meta.get("HTTPHeaders")), **context)
    return cls(message, **context)


@contextmanager
def translated(operation: str | None = None) -> Iterator[None]:
    """Run a boto call and re-raise whatever botocore raises as an EcsError, `from` the cause."""
    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc, operation) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise EndpointUnreachable(str(exc), operation=operation) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AccessDenied(str(exc), operation=operation) from exc
    except ParamValidationError as exc:
        raise InvalidParameter(str(exc), operation=operation) from exc
    except BotoCoreError as exc:
        raise ClientRefused(str(exc), operation=operation) from exc
