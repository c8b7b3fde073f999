"""translated(): every botocore failure becomes our class, chained `from` the original."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from blox import errors
from blox.ecs.errors import (
    AccessDenied,
    ClientRefused,
    ClusterNotFound,
    EcsError,
    EndpointUnreachable,
    InvalidParameter,
    ServerError,
    Throttled,
    translated,
)


def client_error(
    code: str, status: int = 400, headers: dict[str, str] | None = None
) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": "req-1",
                "HostId": "",
                "RetryAttempts": 0,
                "HTTPHeaders": headers or {},
            },
        },
        "DescribeTasks",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, Throttled),
        ("RequestLimitExceeded", 400, Throttled),
        ("TooManyRequestsException", 429, Throttled),
        ("", 429, Throttled),
        ("ServerException", 500, ServerError),
        ("InternalFailure", 500, ServerError),
        ("ServiceUnavailable", 503, ServerError),
        ("SomethingNew", 502, ServerError),
        ("ClusterNotFoundException", 400, ClusterNotFound),
        ("InvalidParameterException", 400, InvalidParameter),
        ("ValidationException", 400, InvalidParameter),
        ("ClientException", 400, ClientRefused),
        ("SomethingElse", 400, ClientRefused),
        ("AccessDeniedException", 400, AccessDenied),
        ("UnrecognizedClientException", 400, AccessDenied),
        ("ExpiredTokenException", 400, AccessDenied),
        ("", 403, AccessDenied),
    ],
)
def test_client_error_codes_map_to_our_classes(
    code: str, status: int, expected: type[EcsError]
) -> None:
    original = client_error(code, status)
    with pytest.raises(EcsError) as excinfo, translated("DescribeTasks"):
        raise original
    assert type(excinfo.value) is expected
    assert excinfo.value.__cause__ is original
    assert excinfo.value.operation == "DescribeTasks"
    assert excinfo.value.status == status
    assert excinfo.value.request_id == "req-1"


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), EndpointUnreachable),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), EndpointUnreachable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), EndpointUnreachable),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), EndpointUnreachable),
        (NoCredentialsError(), AccessDenied),
        (ParamValidationError(report="cluster is required"), InvalidParameter),
        (NoRegionError(), ClientRefused),
    ],
)
def test_botocore_exceptions_map_to_our_classes(
    original: Exception, expected: type[EcsError]
) -> None:
    with pytest.raises(EcsError) as excinfo, translated("ListTasks"):
        raise original
    assert type(excinfo.value) is expected
    assert excinfo.value.__cause__ is original


@pytest.mark.parametrize(
    ("cls", "temporary"),
    [
        (Throttled, True),
        (ServerError, True),
        (EndpointUnreachable, True),
        (ClusterNotFound, False),
        (InvalidParameter, False),
        (ClientRefused, False),
        (AccessDenied, False),
    ],
)
def test_each_class_says_whether_trying_again_may_help(
    cls: type[EcsError], temporary: bool
) -> None:
    assert issubclass(cls, errors.Temporary) is temporary
    assert issubclass(cls, errors.Permanent) is not temporary


def test_categories_follow_the_blox_tree() -> None:
    assert issubclass(Throttled, errors.Unavailable)
    assert issubclass(ClusterNotFound, errors.NotFound)
    assert issubclass(InvalidParameter, errors.Invalid)
    assert issubclass(ClientRefused, errors.Invalid)
    assert issubclass(AccessDenied, errors.Unauthorized)


def test_temporary_errors_carry_the_retry_after_hint() -> None:
    with pytest.raises(Throttled) as excinfo, translated():
        raise client_error("ThrottlingException", 400, {"retry-after": "3"})
    assert excinfo.value.delay_s == 3.0
    with pytest.raises(ServerError) as excinfo2, translated():
        raise client_error("ServerException", 500)
    assert excinfo2.value.delay_s is None


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("ours")
