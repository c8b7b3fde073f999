"""The informer: every task and container instance the CSS shows, kept current by list + watch.

client-go's informer, over the CSS REST API (DESIGN: observed state comes by list + watch, never
from ECS directly). `run()` opens both streams first (live from now), then lists, then applies
the streams; a change made while listing is in the list, the stream, or both, and the higher
`entityVersion` wins, so nothing falls between list and watch. A dropped stream resumes by
itself (`blox.client`); a compacted one (`StreamCompacted`) or every `resync_s` lists again,
which also forgets what the CSS no longer shows. `changed` is set on every change for the
controller's loop; `synced` once the first list is in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from blox.client import errors as client_errors
from blox.client.css import AsyncCssClient
from blox.client.watch import AsyncWatch
from blox.clock import Clock
from blox.contract import css

__all__ = ["Informer"]

logger = logging.getLogger(__name__)

RESYNC_S = 600.0  # list again now and then: forget entities the CSS dropped
RETRY_S = 1.0
Item = TypeVar("Item", css.TaskPublic, css.ContainerInstancePublic)


class _Cache(Generic[Item]):
    """ARN → (entityVersion, item) of one kind; only a higher version replaces an entry."""

    def __init__(self, arn: Callable[[Item], str]) -> None:
        self._arn: Callable[[Item], str] = arn
        self.items: dict[str, tuple[int, Item]] = {}

    def replace(self, listed: Iterable[Item]) -> None:
        fresh: dict[str, tuple[int, Item]] = {}
        for item in listed:
            version = int(item.metadata.entity_version)
            known = self.items.get(self._arn(item))
            fresh[self._arn(item)] = known if known and known[0] > version else (version, item)
        self.items = fresh

    def apply(self, version: int, item: Item) -> bool:
        arn = self._arn(item)
        known = self.items.get(arn)
        if known is not None and known[0] >= version:
            return False
        self.items[arn] = (version, item)
        return True


class Informer:
    """Observed tasks and instances of every cluster, as the CSS shows them."""

    def __init__(self, client: AsyncCssClient, *, clock: Clock, resync_s: float = RESYNC_S) -> None:
        self._client = client
        self._clock = clock
        self._resync_s = resync_s
        self._tasks = _Cache[css.TaskPublic](lambda t: t.entity.task_arn)
        self._instances = _Cache[css.ContainerInstancePublic](
            lambda i: i.entity.container_instance_arn
        )
        self.changed = asyncio.Event()
        self.synced = asyncio.Event()

    def tasks(self, cluster_arn: str) -> list[css.TaskPublic]:
        """The tasks of one cluster, as last seen."""
        return [t for _, t in self._tasks.items.values() if t.entity.cluster_arn == cluster_arn]

    def instances(self, cluster_arn: str) -> list[css.ContainerInstancePublic]:
        """The container instances of one cluster, as last seen."""
        return [i for _, i in self._instances.items.values() if i.entity.cluster_arn == cluster_arn]

    def task_cluster(self, task_arn: str) -> str | None:
        """The cluster ARN of a task as last seen, or None when it is not known."""
        known = self._tasks.items.get(task_arn)
        return None if known is None else known[1].entity.cluster_arn

    async def run(self) -> None:
        """List and watch until cancelled; errors are logged and retried, never raised."""
        while True:
            try:
                await self._list_and_watch()
            except client_errors.StreamCompacted:
                logger.info("the CSS compacted past our stream: listing again")
            except client_errors.ClientError as exc:
                logger.warning("the CSS is not answering (%s); retrying", exc)
                await self._clock.sleep(RETRY_S)

    async def _list_and_watch(self) -> None:
        async with (
            self._client.watch_tasks() as task_stream,
            self._client.watch_instances() as instance_stream,
        ):
            self._tasks.replace(await self._client.tasks())
            self._instances.replace(await self._client.instances())
            self.synced.set()
            self.changed.set()
            following = [
                asyncio.ensure_future(self._follow(task_stream, self._tasks)),
                asyncio.ensure_future(self._follow(instance_stream, self._instances)),
                asyncio.ensure_future(self._clock.sleep(self._resync_s)),
            ]
            try:
                done, _ = await asyncio.wait(following, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in following:
                    task.cancel()
                await asyncio.wait(following)
            for task in done:  # a stream that ended raised: StreamCompacted or a ClientError
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    async def _follow(self, stream: AsyncWatch[Item], cache: _Cache[Item]) -> None:
        async for version, item in stream:
            if cache.apply(version, item):
                self.changed.set()

    async def wait_changed(self, timeout_s: float) -> None:
        """Until something changed or `timeout_s` passed; then clears `changed`."""
        waiting = asyncio.ensure_future(self.changed.wait())
        pause = asyncio.ensure_future(self._clock.sleep(timeout_s))
        try:
            await asyncio.wait({waiting, pause}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            pause.cancel()
        self.changed.clear()
