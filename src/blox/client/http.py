"""The HTTP core every SDK client shares: one httpx client; requests sent, retried and parsed.

`Http` (blocking) and `AsyncHttp` (asyncio) send a request and hand back its 200 answer, or
raise `blox.client.errors` (`translated` at the httpx edge, `from_response` for an error status).
A `Call` describes one request and how its answer reads, so that a client's blocking and async
methods share one description per route. Callers: `css`, `scheduler`; watches take `.client`.

Retries (Assumptions / Invariants):
- A GET changes nothing, so it is retried with `backoff` while it fails temporarily (a refused,
  reset or timed-out connection, a 5xx), as v0.3's clients did.
- Any other method (POST, PATCH, DELETE) is retried only after `ConnectFailed`: no connection
  was made, so the server never saw it. After a timeout or a 5xx it may have been applied, and
  sending it again could, say, create twice; the error goes to the caller, who can look first.
- Each attempt is a new request: an `auth` (SigV4) signs every attempt afresh.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from blox.client import backoff as backoff_
from blox.client.errors import ConnectFailed, ResponseInvalid, from_response, translated
from blox.clock import Clock, SystemClock

__all__ = [
    "JSON_TYPE",
    "AsyncHttp",
    "Call",
    "Http",
    "base_url",
    "is_resendable",
    "parse",
    "retry_condition",
]

JSON_TYPE = "application/json"

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


def base_url(url: str, *, what: str) -> str:
    """`url` once it is checked to be http(s)://host[:port][/path]; ValueError naming `what`."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"the {what} URL must be http(s)://host[:port][/path], not {url!r}")
    return url


def parse(model: type[P], response: httpx.Response) -> P:
    """The body of `response` as `model`; ResponseInvalid when it is not that JSON."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ResponseInvalid(
            f"{response.request.method} {response.url.path}: "
            f"the answer is not a v0.3 {model.__name__}"
        ) from exc


def is_resendable(error: BaseException) -> bool:
    """Whether a request that changes something may be sent again: it never left."""
    return isinstance(error, ConnectFailed)


def retry_condition(method: str) -> Callable[[BaseException], bool]:
    """Which failures of a `method` request are retried (see the module docstring)."""
    return backoff_.is_retryable if method.upper() == "GET" else is_resendable


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One request (`method`, `path` under the base URL, query `params`, JSON `body`) and
    `read`, which turns its 200 answer into the result."""

    method: str
    path: str
    read: Callable[[httpx.Response], R]
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


def _headers(body: bytes | None) -> dict[str, str] | None:
    """A request's own headers: the JSON content type when it has a body."""
    return None if body is None else {"content-type": JSON_TYPE}


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise from_response(response.status_code, response.text, response.headers)
    return response


class Http:
    """Blocking requests under one base URL; `close()` when done."""

    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout,
        backoff: backoff_.Backoff,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.client = httpx.Client(base_url=url, timeout=timeout, transport=transport, auth=auth)
        self.sleep = sleep
        self._backoff = backoff

    def call(self, call: Call[R]) -> R:
        """Send `call` (retried per the module docstring); its result."""
        response = self.request(call.method, call.path, params=call.params, body=call.body)
        return call.read(response)

    def get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        """The 200 answer of `GET path?params`, retried while it fails temporarily."""
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        body: bytes | None = None,
    ) -> httpx.Response:
        """The 200 answer of one request, with a JSON `body` when given."""
        retrying = backoff_.retrying(self._backoff, sleep=self.sleep, when=retry_condition(method))
        response: httpx.Response = retrying(self._send, method, path, params, body)
        return response

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def _send(
        self, method: str, path: str, params: Mapping[str, str], body: bytes | None
    ) -> httpx.Response:
        with translated(f"{method} {path}"):
            response = self.client.request(
                method, path, params=params, content=body, headers=_headers(body)
            )
        return _checked(response)


class AsyncHttp:
    """Asyncio requests under one base URL, sleeping on `clock`; `await aclose()` when done."""

    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout,
        backoff: backoff_.Backoff,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=url, timeout=timeout, transport=transport, auth=auth
        )
        self.clock = clock or SystemClock()
        self._backoff = backoff

    async def call(self, call: Call[R]) -> R:
        """Send `call` (retried per the module docstring); its result."""
        response = await self.request(call.method, call.path, params=call.params, body=call.body)
        return call.read(response)

    async def get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        """The 200 answer of `GET path?params`, retried while it fails temporarily."""
        return await self.request("GET", path, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        body: bytes | None = None,
    ) -> httpx.Response:
        """The 200 answer of one request, with a JSON `body` when given."""
        retrying = backoff_.retrying_on_loop(
            self._backoff, clock=self.clock, when=retry_condition(method)
        )
        response: Awaitable[httpx.Response] = retrying(self._send, method, path, params, body)
        return await response

    async def aclose(self) -> None:
        """Close the connections."""
        await self.client.aclose()

    async def _send(
        self, method: str, path: str, params: Mapping[str, str], body: bytes | None
    ) -> httpx.Response:
        with translated(f"{method} {path}"):
            response = await self.client.request(
                method, path, params=params, content=body, headers=_headers(body)
            )
        return _checked(response)
