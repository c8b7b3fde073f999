"""The informer: every task and container instance the CSS shows, kept current by list + watch.

client-go's informer, over the CSS REST API (DESIGN: observed state comes by list + watch, never
from ECS directly). `run()` opens both streams first (live from now), then lists, then applies
the streams; a change made while listing is in the list, the stream, or both, and the higher
`entityVersion` wins, so nothing falls between list and watch. A dropped stream resumes by
itself (`blox.client`); a compacted one (`StreamCompacted`) or every `resync_s` lists again,
which also forgets what the CSS no longer shows. Each change is converted into the planner's
value once, as it arrives (`cache.Kept`); `tasks(cluster)` / `instances(cluster)` hand a pass an
immutable tuple of them. `changed` is set on every change for the controller's loop; `synced`
once the first list is in.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from blox.client import errors as client_errors
from blox.client.css import AsyncCssClient
from blox.client.watch import AsyncWatch
from blox.clock import Clock
from blox.contract import css
from blox.scheduler.control import observed
from blox.scheduler.control.cache import Kept
from blox.scheduler.plan.snapshot import ObservedInstance, ObservedTask

__all__ = ["Informer"]

logger = logging.getLogger(__name__)

RESYNC_S = 600.0  # list again now and then: forget entities the CSS dropped
RETRY_S = 1.0
Item = TypeVar("Item", css.TaskPublic, css.ContainerInstancePublic)
Seen = TypeVar("Seen", ObservedTask, ObservedInstance)


def _version(item: css.TaskPublic | css.ContainerInstancePublic) -> int:
    return int(item.metadata.entity_version)


class Informer:
    """Observed tasks and instances of every cluster, as the CSS shows them."""

    def __init__(self, client: AsyncCssClient, *, clock: Clock, resync_s: float = RESYNC_S) -> None:
        self._client = client
        self._clock = clock
        self._resync_s = resync_s
        self._tasks = Kept[css.TaskPublic, ObservedTask](
            arn=lambda t: t.entity.task_arn,
            cluster=lambda t: t.entity.cluster_arn,
            version=_version,
            convert=observed.task,
        )
        self._instances = Kept[css.ContainerInstancePublic, ObservedInstance](
            arn=lambda i: i.entity.container_instance_arn,
            cluster=lambda i: i.entity.cluster_arn,
            version=_version,
            convert=observed.instance,
        )
        self.changed = asyncio.Event()
        self.synced = asyncio.Event()

    def tasks(self, cluster_arn: str) -> tuple[ObservedTask, ...]:
        """The tasks of one cluster, as last seen (an immutable snapshot)."""
        return self._tasks.view(cluster_arn)

    def instances(self, cluster_arn: str) -> tuple[ObservedInstance, ...]:
        """The container instances of one cluster, as last seen (an immutable snapshot)."""
        return self._instances.view(cluster_arn)

    def task_cluster(self, task_arn: str) -> str | None:
        """The cluster ARN of a task as last seen, or None when it is not known."""
        return self._tasks.cluster_of(task_arn)

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

    async def _follow(self, stream: AsyncWatch[Item], cache: Kept[Item, Seen]) -> None:
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
