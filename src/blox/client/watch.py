"""`Watch` / `AsyncWatch`: one CSS change stream as an iterator that survives disconnects.

Each yields `(entityVersion, item)` for every change from its start on, skips heartbeats, and
when the connection drops (server restart, network, read timeout, the server ending the
stream) reconnects by itself with `entityVersion` = the last version seen + 1, so that nothing
is lost or repeated (see `cursor.StreamCursor` for the assumptions). Connecting is retried with
`backoff` while it fails temporarily; a stream that ends before sending anything counts as a
failure too, so a server that accepts and hangs up is not hammered. A 400 `Entity version is
out of range` raises `StreamCompacted`: the caller lists again and watches from there.

Opening (`open()`, or entering the `with` block) connects at once, so every change made after
it returns is delivered; plain iteration connects on the first `next`. Built by `css`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, Self

import httpx

from blox.client import backoff as backoff_
from blox.client.cursor import M, StreamCursor
from blox.client.errors import ServerUnreachable, from_response, translated
from blox.clock import Clock

__all__ = ["AsyncWatch", "Watch"]

logger = logging.getLogger(__name__)


class _WatchState(Generic[M]):
    """What both watches report about where they are, and how a drop is counted."""

    def __init__(self, path: str, cursor: StreamCursor[M], backoff: backoff_.Backoff) -> None:
        self._path = path
        self._cursor = cursor
        self._backoff = backoff
        self._progressed = False
        self._failures = 0  # connections in a row that ended before sending a line
        self._closed = False
        self.drops = 0  # connections lost so far (each followed by a resume)

    @property
    def last_version(self) -> int | None:
        """The entityVersion of the last item handed out (None: none yet)."""
        return self._cursor.last_version

    @property
    def next_version(self) -> int | None:
        """The entityVersion a reconnect asks for (None: live only, nothing seen yet)."""
        return self._cursor.next_version

    @property
    def heartbeats(self) -> int:
        """Heartbeats (blank lines) received and skipped so far."""
        return self._cursor.heartbeats

    def _dropped(self, why: str) -> float:
        """Count a dropped connection; the pause before reconnecting. Raises when it keeps
        ending before sending anything for `backoff.max_attempts` connections in a row."""
        self.drops += 1
        self._failures = 0 if self._progressed else self._failures + 1
        if self._backoff.is_exhausted(self._failures):
            raise ServerUnreachable(f"GET {self._path}: the stream keeps ending at once ({why})")
        logger.info(
            "stream %s dropped (%s); resuming at version %s",
            self._path,
            why,
            self._cursor.next_version,
        )
        return self._backoff.pause_s(self._failures)


class Watch(_WatchState[M]):
    """A blocking stream of `(entityVersion, item)`; see the module docstring."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        path: str,
        cursor: StreamCursor[M],
        backoff: backoff_.Backoff,
        sleep: Callable[[float], None],
        timeout: httpx.Timeout,
    ) -> None:
        super().__init__(path, cursor, backoff)
        self._http = http
        self._sleep = sleep
        self._timeout = timeout
        self._response: httpx.Response | None = None
        self._lines: Iterator[str] | None = None

    def open(self) -> Self:
        """Connect now (retrying per `backoff`) unless connected already."""
        if self._lines is None and not self._closed:
            backoff_.retrying(self._backoff, sleep=self._sleep)(self._connect)
        return self

    def close(self) -> None:
        """Disconnect; the iteration ends."""
        self._closed = True
        self._disconnect()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> tuple[int, M]:
        while not self._closed:
            lines = self.open()._lines
            assert lines is not None
            try:
                with translated(f"GET {self._path}"):
                    line = next(lines, None)
            except ServerUnreachable as exc:
                self._reconnect(str(exc))
                continue
            if line is None:
                self._reconnect("the server ended the stream")
                continue
            self._progressed = True
            if (item := self._cursor.accept(line)) is not None:
                return item
        raise StopIteration

    def _connect(self) -> None:
        request = self._http.build_request(
            "GET", self._path, params=self._cursor.params(), timeout=self._timeout
        )
        with translated(f"GET {self._path}"):
            response = self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                with translated(f"GET {self._path}"):
                    response.read()
                raise from_response(response.status_code, response.text, response.headers)
        except BaseException:
            response.close()
            raise
        self._cursor.started(response.headers)
        self._response, self._lines, self._progressed = response, response.iter_lines(), False

    def _reconnect(self, why: str) -> None:
        self._disconnect()
        if pause := self._dropped(why):
            self._sleep(pause)

    def _disconnect(self) -> None:
        lines, response, self._lines, self._response = self._lines, self._response, None, None
        close: Callable[[], None] | None = getattr(lines, "close", None)
        if close is not None:
            close()
        if response is not None:
            response.close()


class AsyncWatch(_WatchState[M]):
    """An asyncio stream of `(entityVersion, item)`; see the module docstring."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        path: str,
        cursor: StreamCursor[M],
        backoff: backoff_.Backoff,
        clock: Clock,
        timeout: httpx.Timeout,
    ) -> None:
        super().__init__(path, cursor, backoff)
        self._http = http
        self._clock = clock
        self._timeout = timeout
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None

    async def open(self) -> Self:
        """Connect now (retrying per `backoff`) unless connected already."""
        if self._lines is None and not self._closed:
            await backoff_.retrying_on_loop(self._backoff, clock=self._clock)(self._connect)
        return self

    async def aclose(self) -> None:
        """Disconnect; the iteration ends."""
        self._closed = True
        await self._disconnect()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[int, M]:
        while not self._closed:
            lines = (await self.open())._lines
            assert lines is not None
            try:
                with translated(f"GET {self._path}"):
                    line = await anext(lines, None)
            except ServerUnreachable as exc:
                await self._reconnect(str(exc))
                continue
            if line is None:
                await self._reconnect("the server ended the stream")
                continue
            self._progressed = True
            if (item := self._cursor.accept(line)) is not None:
                return item
        raise StopAsyncIteration

    async def _connect(self) -> None:
        request = self._http.build_request(
            "GET", self._path, params=self._cursor.params(), timeout=self._timeout
        )
        with translated(f"GET {self._path}"):
            response = await self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                with translated(f"GET {self._path}"):
                    await response.aread()
                raise from_response(response.status_code, response.text, response.headers)
        except BaseException:
            await response.aclose()
            raise
        self._cursor.started(response.headers)
        self._response, self._lines, self._progressed = response, response.aiter_lines(), False

    async def _reconnect(self, why: str) -> None:
        await self._disconnect()
        if pause := self._dropped(why):
            await self._clock.sleep(pause)

    async def _disconnect(self) -> None:
        lines, response, self._lines, self._response = self._lines, self._response, None, None
        close: Callable[[], Awaitable[None]] | None = getattr(lines, "aclose", None)
        if close is not None:
            await close()
        if response is not None:
            await response.aclose()
