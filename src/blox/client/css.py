"""`CssClient` and `AsyncCssClient`: the cluster state service's REST API, typed.

Lists (`tasks`, `instances`) return every match: they follow `nextToken` pages of `page_size`
(`maxResults`), and fall back to one unpaged request, remembered for the client's life, when
the server refuses `maxResults` as v0.3 did. `task` / `instance` get one entity. `watch_tasks` /
`watch_instances` return a `watch.Watch` / `watch.AsyncWatch` of `(entityVersion, item)`.
Results are the `blox.contract.css` models; `entity_version(item)` reads their version.
Requests are retried with `backoff` while they fail temporarily (connection, timeout, 5xx);
errors are `blox.client.errors`. Callers: the daemon scheduler's informer, the `blox` CLI.

Time: `AsyncCssClient` sleeps on an injected `Clock`; `CssClient` on an injected `sleep`.
`auth` (e.g. `sigv4.SigV4Auth` for an API Gateway in front) signs every request, watches
included; `transport` replaces the network (tests). Sending and retrying is `http`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Self, TypeVar
from urllib.parse import quote

import httpx

from blox.client import backoff as backoff_
from blox.client.cursor import M, PageCursor, StreamCursor
from blox.client.errors import HttpInvalid
from blox.client.http import AsyncHttp, Http, parse
from blox.client.http import base_url as base_url_
from blox.client.watch import AsyncWatch, Watch
from blox.clock import Clock
from blox.contract import css

__all__ = [
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "STREAM_READ_TIMEOUT_S",
    "TIMEOUT_S",
    "AsyncCssClient",
    "CssClient",
    "task_filters",
]

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0  # v0.3's read timeout
# The CSS sends a heartbeat every 15 s on an idle stream: four missed ones mean a dead link.
STREAM_READ_TIMEOUT_S = 60.0
PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000  # the most the CSS serves a page (`blox.css.queries.MAX_RESULTS`)
WATCH_BACKOFF = backoff_.Backoff(max_attempts=None)  # a watch outlives any outage

T = TypeVar("T")
_Page = tuple[list[T], str | None]


def task_filters(
    *,
    cluster: str | None = None,
    status: str | None = None,
    started_by: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    group: str | None = None,
) -> dict[str, str]:
    """The query of `GET /v1/tasks` for the filters given (None: not filtered)."""
    given = {
        "cluster": cluster,
        "status": status,
        "startedBy": started_by,
        "containerInstance": container_instance,
        "family": family,
        "group": group,
    }
    return {name: value for name, value in given.items() if value is not None}


def _entity_path(route: str, cluster: str, arn: str) -> str:
    """`/v1/<route>/<cluster>/<arn>`; ':' and '/' stay as they are (the server takes ARNs raw)."""
    return f"/v1/{route}/{quote(cluster, safe=':/')}/{quote(arn, safe=':/')}"


def _tasks_page(response: httpx.Response) -> _Page[css.TaskPublic]:
    page = parse(css.TasksPage, response)
    return page.items, page.next_token


def _instances_page(response: httpx.Response) -> _Page[css.ContainerInstancePublic]:
    page = parse(css.ContainerInstancesPage, response)
    return page.items, page.next_token


def _timeouts(
    timeout_s: float, stream_read_timeout_s: float, page_size: int
) -> tuple[httpx.Timeout, httpx.Timeout]:
    """The request and stream timeouts, once the settings are checked."""
    if timeout_s <= 0 or stream_read_timeout_s <= 0:
        raise ValueError("timeouts must be positive")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, not {page_size}")
    return httpx.Timeout(timeout_s), httpx.Timeout(timeout_s, read=stream_read_timeout_s)


class CssClient:
    """The CSS API over blocking HTTP; use it as a context manager, or `close()` it."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S,
        stream_read_timeout_s: float = STREAM_READ_TIMEOUT_S,
        page_size: int = PAGE_SIZE,
        backoff: backoff_.Backoff | None = None,
        watch_backoff: backoff_.Backoff = WATCH_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        timeout, self._stream_timeout = _timeouts(timeout_s, stream_read_timeout_s, page_size)
        self._http = Http(
            base_url_(base_url, what="CSS"),
            timeout=timeout,
            backoff=backoff or backoff_.Backoff(),
            sleep=sleep,
            transport=transport,
            auth=auth,
        )
        self._page_size, self._unpaged = page_size, False
        self._watch_backoff = watch_backoff

    def ping(self) -> None:
        """Return when the CSS answers `/healthz` (a blox-ecs addition; v0.3 had no ping)."""
        self._get("/healthz", {})

    def tasks(
        self,
        *,
        cluster: str | None = None,
        status: str | None = None,
        started_by: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        group: str | None = None,
    ) -> list[css.TaskPublic]:
        """Every task passing the filters (cluster by name or ARN; status case-insensitive)."""
        filters = task_filters(
            cluster=cluster,
            status=status,
            started_by=started_by,
            container_instance=container_instance,
            family=family,
            group=group,
        )
        return self._list("/v1/tasks", filters, _tasks_page)

    def instances(
        self, *, cluster: str | None = None, status: str | None = None
    ) -> list[css.ContainerInstancePublic]:
        """Every container instance passing the filters."""
        filters = {k: v for k, v in (("cluster", cluster), ("status", status)) if v is not None}
        return self._list("/v1/instances", filters, _instances_page)

    def task(self, cluster: str, arn: str) -> css.TaskPublic:
        """The task `arn` of `cluster` (name or ARN); HttpNotFound when there is none."""
        return parse(css.TaskPublic, self._get(_entity_path("tasks", cluster, arn), {}))

    def instance(self, cluster: str, arn: str) -> css.ContainerInstancePublic:
        """The container instance `arn` of `cluster`; HttpNotFound when there is none."""
        path = _entity_path("instances", cluster, arn)
        return parse(css.ContainerInstancePublic, self._get(path, {}))

    def watch_tasks(self, from_version: int | None = None) -> Watch[css.TaskPublic]:
        """Every task change from `from_version` on (N included; None: live only)."""
        return self._watch("/v1/stream/tasks", StreamCursor(css.TaskPublic, from_version))

    def watch_instances(
        self, from_version: int | None = None
    ) -> Watch[css.ContainerInstancePublic]:
        """Every container instance change from `from_version` on (see `watch_tasks`)."""
        cursor = StreamCursor(css.ContainerInstancePublic, from_version)
        return self._watch("/v1/stream/instances", cursor)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _watch(self, path: str, cursor: StreamCursor[M]) -> Watch[M]:
        return Watch(
            http=self._http.client,
            path=path,
            cursor=cursor,
            backoff=self._watch_backoff,
            sleep=self._http.sleep,
            timeout=self._stream_timeout,
        )

    def _list(
        self, path: str, filters: Mapping[str, str], page: Callable[[httpx.Response], _Page[T]]
    ) -> list[T]:
        cursor: PageCursor | None = PageCursor(filters, None if self._unpaged else self._page_size)
        items: list[T] = []
        while cursor is not None:
            try:
                found, token = page(self._get(path, cursor.params()))
            except HttpInvalid as exc:
                if (cursor := cursor.unpaged(exc)) is None:
                    raise
                logger.info("GET %s refused maxResults (a v0.3 server): listing unpaged", path)
                self._unpaged = True
                continue
            items += found
            cursor = cursor.following(token)
        return items

    def _get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        return self._http.get(path, params)


class AsyncCssClient:
    """The CSS API over asyncio HTTP; use it with `async with`, or `await aclose()`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S,
        stream_read_timeout_s: float = STREAM_READ_TIMEOUT_S,
        page_size: int = PAGE_SIZE,
        backoff: backoff_.Backoff | None = None,
        watch_backoff: backoff_.Backoff = WATCH_BACKOFF,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        timeout, self._stream_timeout = _timeouts(timeout_s, stream_read_timeout_s, page_size)
        self._http = AsyncHttp(
            base_url_(base_url, what="CSS"),
            timeout=timeout,
            backoff=backoff or backoff_.Backoff(),
            clock=clock,
            transport=transport,
            auth=auth,
        )
        self._page_size, self._unpaged = page_size, False
        self._watch_backoff = watch_backoff

    async def ping(self) -> None:
        """Return when the CSS answers `/healthz` (see `CssClient.ping`)."""
        await self._get("/healthz", {})

    async def tasks(
        self,
        *,
        cluster: str | None = None,
        status: str | None = None,
        started_by: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        group: str | None = None,
    ) -> list[css.TaskPublic]:
        """Every task passing the filters (see `CssClient.tasks`)."""
        filters = task_filters(
            cluster=cluster,
            status=status,
            started_by=started_by,
            container_instance=container_instance,
            family=family,
            group=group,
        )
        return await self._list("/v1/tasks", filters, _tasks_page)

    async def instances(
        self, *, cluster: str | None = None, status: str | None = None
    ) -> list[css.ContainerInstancePublic]:
        """Every container instance passing the filters."""
        filters = {k: v for k, v in (("cluster", cluster), ("status", status)) if v is not None}
        return await self._list("/v1/instances", filters, _instances_page)

    async def task(self, cluster: str, arn: str) -> css.TaskPublic:
        """The task `arn` of `cluster` (name or ARN); HttpNotFound when there is none."""
        return parse(css.TaskPublic, await self._get(_entity_path("tasks", cluster, arn), {}))

    async def instance(self, cluster: str, arn: str) -> css.ContainerInstancePublic:
        """The container instance `arn` of `cluster`; HttpNotFound when there is none."""
        path = _entity_path("instances", cluster, arn)
        return parse(css.ContainerInstancePublic, await self._get(path, {}))

    def watch_tasks(self, from_version: int | None = None) -> AsyncWatch[css.TaskPublic]:
        """Every task change from `from_version` on (N included; None: live only)."""
        return self._watch("/v1/stream/tasks", StreamCursor(css.TaskPublic, from_version))

    def watch_instances(
        self, from_version: int | None = None
    ) -> AsyncWatch[css.ContainerInstancePublic]:
        """Every container instance change from `from_version` on (see `watch_tasks`)."""
        cursor = StreamCursor(css.ContainerInstancePublic, from_version)
        return self._watch("/v1/stream/instances", cursor)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _watch(self, path: str, cursor: StreamCursor[M]) -> AsyncWatch[M]:
        return AsyncWatch(
            http=self._http.client,
            path=path,
            cursor=cursor,
            backoff=self._watch_backoff,
            clock=self._http.clock,
            timeout=self._stream_timeout,
        )

    async def _list(
        self, path: str, filters: Mapping[str, str], page: Callable[[httpx.Response], _Page[T]]
    ) -> list[T]:
        cursor: PageCursor | None = PageCursor(filters, None if self._unpaged else self._page_size)
        items: list[T] = []
        while cursor is not None:
            try:
                found, token = page(await self._get(path, cursor.params()))
            except HttpInvalid as exc:
                if (cursor := cursor.unpaged(exc)) is None:
                    raise
                logger.info("GET %s refused maxResults (a v0.3 server): listing unpaged", path)
                self._unpaged = True
                continue
            items += found
            cursor = cursor.following(token)
        return items

    async def _get(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        return await self._http.get(path, params)
