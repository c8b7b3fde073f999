"""Errors of the SDK, and `translated()`, the one place httpx's exceptions become them.

Everything `blox.client` raises on purpose is a `ClientError`; httpx's exceptions never leave
the package. Retrying code (ours: `backoff`, and callers') reads the `Temporary` / `Permanent`
mixins and `delay_s`, never a message.

    ClientError (BloxError)
     ├── ServerUnreachable  Unavailable, Temporary   refused, reset or dropped connection, timeout
     │    └── ConnectFailed                          no connection made: the request was not sent
     ├── ResponseInvalid    Permanent                a 2xx body that is not the v0.3 JSON
     ├── NoCredentials      Unauthorized, Permanent  SigV4: no AWS credentials found or refreshed
     └── HttpError                                   the server answered an error status
          ├── HttpNotFound     NotFound, Permanent        404 (`Task not found`, bad path …)
          ├── HttpInvalid      Invalid, Permanent         400 (bad filter, status, version …)
          ├── StreamCompacted  Compacted, Permanent       400 `Entity version is out of range`
          ├── HttpUnauthorized Unauthorized, Permanent    401, 403
          ├── HttpUnavailable  Unavailable, Temporary     5xx (503 included); Retry-After → delay_s
          └── HttpRefused      Permanent                  any other status (3xx, 405 …)
               └── HttpConflict  Conflict                 409 (a name still being deleted …)

`ConnectFailed` is the one failure after which a request that changes something (POST, PATCH,
DELETE) may be sent again: it surely did not reach the server (`http` reads it so).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from blox import errors
from blox.contract import texts

__all__ = [
    "ClientError",
    "ConnectFailed",
    "HttpConflict",
    "HttpError",
    "HttpInvalid",
    "HttpNotFound",
    "HttpRefused",
    "HttpUnauthorized",
    "HttpUnavailable",
    "NoCredentials",
    "ResponseInvalid",
    "ServerUnreachable",
    "StreamCompacted",
    "from_response",
    "translated",
]

MAX_TEXT_CHARS = 200  # a proxy may answer a whole HTML page: keep the first line, this long


class ClientError(errors.BloxError):
    """Root of the SDK's errors."""


class ServerUnreachable(ClientError, errors.Unavailable, errors.Temporary):
    """The server could not be connected to, dropped the connection or did not answer in time."""


class ConnectFailed(ServerUnreachable):
    """No connection could be made (refused, DNS, TLS, connect or pool timeout): not sent."""


class ResponseInvalid(ClientError, errors.Permanent):
    """The server answered success with a body that is not the v0.3 JSON expected."""


class NoCredentials(ClientError, errors.Unauthorized, errors.Permanent):
    """Requests are to be SigV4-signed but no AWS credentials were found, or none refreshed."""


class HttpError(ClientError):
    """The server answered an error status; `status` and its one-line `text` say which."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"the server answered {status}: {text}")
        self.status = status
        self.text = text


class HttpNotFound(HttpError, errors.NotFound, errors.Permanent):
    """404: no such task or instance, or a path the server does not route."""


class HttpInvalid(HttpError, errors.Invalid, errors.Permanent):
    """400: the server refused a filter, a status, a cluster, a page size or a version."""


class StreamCompacted(HttpError, errors.Compacted, errors.Permanent):
    """A stream cannot resume from the version asked for (compacted away): list again."""


class HttpUnauthorized(HttpError, errors.Unauthorized, errors.Permanent):
    """401 or 403: credentials missing or refused (e.g. by a SigV4 proxy in front)."""


class HttpUnavailable(HttpError, errors.Unavailable, errors.Temporary):
    """5xx: the server failed or is not ready; `delay_s` is its Retry-After, when it sent one."""

    def __init__(self, status: int, text: str, *, delay_s: float | None = None) -> None:
        super().__init__(status, text)
        self.delay_s = delay_s


class HttpRefused(HttpError, errors.Permanent):
    """Any other error status (a redirect, 405 …): the request will not succeed as is."""


class HttpConflict(HttpRefused, errors.Conflict):
    """409: the request conflicts with the state (e.g. an environment still being deleted)."""


def from_response(status: int, body: str, headers: Mapping[str, str] | None = None) -> HttpError:
    """The error for an answer with `status` (>= 300) and plain-text `body`."""
    text = one_line(body)
    if status == 404:
        return HttpNotFound(status, text)
    if status == 400:
        if text == texts.ENTITY_VERSION_OUT_OF_RANGE:
            return StreamCompacted(status, text)
        return HttpInvalid(status, text)
    if status in (401, 403):
        return HttpUnauthorized(status, text)
    if status == 409:
        return HttpConflict(status, text)
    if status >= 500:
        return HttpUnavailable(status, text, delay_s=_retry_after(headers or {}))
    return HttpRefused(status, text)


def one_line(body: str) -> str:
    """The first non-empty line of `body`, at most MAX_TEXT_CHARS long ("" when none)."""
    for line in body.splitlines():
        if line.strip():
            return line.strip()[:MAX_TEXT_CHARS]
    return ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds; None when absent or an HTTP date (we do not read the clock)."""
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Map httpx's transport and decoding exceptions raised inside to ours, naming `url`."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ConnectFailed(f"{url}: could not connect ({type(exc).__name__}: {exc})") from exc
    except httpx.TimeoutException as exc:
        raise ServerUnreachable(f"{url}: no answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ServerUnreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:  # decoding (bad gzip, charset) and stream misuse
        raise ResponseInvalid(f"{url}: {type(exc).__name__}: {exc}") from exc
