"""The SDK's error tree: each status maps to its class and category; httpx never leaks out."""

from __future__ import annotations

import httpx
import pytest

from blox import errors as blox_errors
from blox.client import errors
from blox.contract import texts


@pytest.mark.parametrize(
    ("status", "body", "cls", "category"),
    [
        (404, "Task not found\n", errors.HttpNotFound, blox_errors.NotFound),
        (404, "404 page not found\n", errors.HttpNotFound, blox_errors.NotFound),
        (400, "Invalid status\n", errors.HttpInvalid, blox_errors.Invalid),
        (
            400,
            f"{texts.ENTITY_VERSION_OUT_OF_RANGE}\n",
            errors.StreamCompacted,
            blox_errors.Compacted,
        ),
        (401, "", errors.HttpUnauthorized, blox_errors.Unauthorized),
        (403, "denied", errors.HttpUnauthorized, blox_errors.Unauthorized),
        (
            500,
            "Unexpected internal server error\n",
            errors.HttpUnavailable,
            blox_errors.Unavailable,
        ),
        (503, "", errors.HttpUnavailable, blox_errors.Unavailable),
        (405, "405 method not allowed\n", errors.HttpRefused, blox_errors.Permanent),
        (409, "Environment x is being deleted\n", errors.HttpConflict, blox_errors.Conflict),
        (307, "", errors.HttpRefused, blox_errors.Permanent),
    ],
)
def test_each_status_becomes_its_error_with_the_servers_line(
    status: int, body: str, cls: type[errors.HttpError], category: type[Exception]
) -> None:
    error = errors.from_response(status, body)
    assert type(error) is cls and isinstance(error, category)
    assert (error.status, error.text) == (status, body.strip())
    assert str(error) == f"the server answered {status}: {body.strip()}"


def test_temporary_and_permanent_split_as_retrying_code_reads_them() -> None:
    assert isinstance(errors.from_response(502, "bad gateway"), blox_errors.Temporary)
    for status in (400, 401, 404, 405):
        error = errors.from_response(status, "x")
        assert isinstance(error, blox_errors.Permanent)
        assert not isinstance(error, blox_errors.Temporary)
    assert isinstance(errors.ServerUnreachable("down"), blox_errors.Temporary)


def test_retry_after_in_seconds_becomes_the_delay_hint() -> None:
    hinted = errors.from_response(503, "", {"retry-after": "3"})
    assert isinstance(hinted, errors.HttpUnavailable) and hinted.delay_s == 3.0
    dated = errors.from_response(503, "", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(dated, errors.HttpUnavailable) and dated.delay_s is None


def test_a_long_html_answer_is_cut_to_its_first_line() -> None:
    error = errors.from_response(502, "\n  <html>" + "x" * 500 + "\n<body>proxy</body>")
    assert error.text == ("<html>" + "x" * 500)[: errors.MAX_TEXT_CHARS]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), errors.ConnectFailed),
        (httpx.ConnectTimeout("slow"), errors.ConnectFailed),
        (httpx.PoolTimeout("busy"), errors.ConnectFailed),
        (httpx.ReadTimeout("slow"), errors.ServerUnreachable),
        (httpx.RemoteProtocolError("incomplete chunked read"), errors.ServerUnreachable),
        (httpx.ReadError("reset"), errors.ServerUnreachable),
        (httpx.DecodingError("bad gzip"), errors.ResponseInvalid),
    ],
)
def test_httpx_exceptions_are_translated_and_chained(
    raised: Exception, expected: type[errors.ClientError]
) -> None:
    with pytest.raises(expected) as caught, errors.translated("GET /v1/tasks"):
        raise raised
    assert type(caught.value) is expected and caught.value.__cause__ is raised
    assert str(caught.value).startswith("GET /v1/tasks: ")


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), errors.translated("GET /v1/tasks"):
        raise KeyError("ours")
