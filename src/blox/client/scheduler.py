"""`SchedulerClient` and `AsyncSchedulerClient`: the daemon scheduler's REST API, typed.

One method per route of `blox.scheduler.api` (v0.3's and the blox-ecs additions), taking and
returning the `blox.contract.scheduler` models; `scheduler_routes` describes each request once,
and both clients send those descriptions through `http`. GETs are retried while they fail
temporarily; a POST, PATCH or DELETE only when it could not be sent at all (see `http`), so a
create or a deploy never runs twice. Errors are `blox.client.errors`: an `HttpError` keeps the
status and the server's one-line text (`Environment x does not exist`, a stale token …).
Callers: the `blox` CLI, tests, users' scripts.

Time: `AsyncSchedulerClient` sleeps on an injected `Clock`; `SchedulerClient` on an injected
`sleep`. `auth` (e.g. `sigv4.SigV4Auth`) signs every request; `transport` replaces the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self

import httpx

from blox.client import backoff as backoff_
from blox.client import scheduler_routes as routes
from blox.client.http import AsyncHttp, Http
from blox.client.http import base_url as base_url_
from blox.clock import Clock
from blox.contract import scheduler

__all__ = ["TIMEOUT_S", "AsyncSchedulerClient", "SchedulerClient"]

TIMEOUT_S = 10.0  # v0.3's read and write timeouts


def _timeout(timeout_s: float) -> httpx.Timeout:
    if timeout_s <= 0:
        raise ValueError("timeouts must be positive")
    return httpx.Timeout(timeout_s)


class SchedulerClient:
    """The scheduler API over blocking HTTP; use it as a context manager, or `close()` it."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S,
        backoff: backoff_.Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._http = Http(
            base_url_(base_url, what="scheduler"),
            timeout=_timeout(timeout_s),
            backoff=backoff or backoff_.Backoff(),
            sleep=sleep,
            transport=transport,
            auth=auth,
        )

    def ping(self) -> None:
        """Return when the scheduler answers `GET /v1/ping`; raise otherwise."""
        self._http.call(routes.ping())

    def environments(self, cluster: str | None = None) -> list[scheduler.EnvironmentPublic]:
        """Every environment, or those of `cluster` (name or ARN)."""
        return self._http.call(routes.environments(cluster))

    def environment(self, name: str) -> scheduler.EnvironmentPublic:
        """The environment `name`; HttpNotFound when there is none."""
        return self._http.call(routes.environment(name))

    def create_environment(
        self, request: scheduler.EnvironmentCreate
    ) -> scheduler.EnvironmentPublic:
        """Create an environment at revision 1 (not deployed until `deploy`)."""
        return self._http.call(routes.create_environment(request))

    def update_environment(
        self, name: str, change: scheduler.EnvironmentUpdate
    ) -> scheduler.EnvironmentPublic:
        """Change `name`: a new revision with a new deploymentToken."""
        return self._http.call(routes.update_environment(name, change))

    def delete_environment(self, name: str, *, force: bool = False) -> None:
        """Delete `name` (its tasks are stopped; `force`: forget it at once). None: no-op."""
        self._http.call(routes.delete_environment(name, force=force))

    def revisions(self, name: str) -> list[scheduler.RevisionPublic]:
        """The kept revisions of `name`, newest first."""
        return self._http.call(routes.revisions(name))

    def revision(self, name: str, number: int) -> scheduler.RevisionPublic:
        """Revision `number` of `name`; HttpNotFound when it is not kept."""
        return self._http.call(routes.revision(name, number))

    def rollback(self, name: str, revision: int | None = None) -> scheduler.DeploymentPublic:
        """Deploy a copy of `revision` (default: the one before the current)."""
        return self._http.call(routes.rollback(name, revision))

    def pause(self, name: str) -> scheduler.EnvironmentPublic:
        """Stop moving instances to the target revision until `resume`."""
        return self._http.call(routes.pause(name))

    def resume(self, name: str) -> scheduler.EnvironmentPublic:
        """Resume a paused rollout."""
        return self._http.call(routes.resume(name))

    def deploy(self, name: str, token: str) -> scheduler.DeploymentPublic:
        """Deploy the revision whose `deploymentToken` is `token` (the current one's)."""
        return self._http.call(routes.deploy(name, token))

    def deployments(self, name: str) -> list[scheduler.DeploymentPublic]:
        """The deployments of `name`, newest first."""
        return self._http.call(routes.deployments(name))

    def deployment(self, name: str, deployment_id: str) -> scheduler.DeploymentPublic:
        """One deployment of `name`; HttpNotFound when there is none."""
        return self._http.call(routes.deployment(name, deployment_id))

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncSchedulerClient:
    """The scheduler API over asyncio HTTP; use it with `async with`, or `await aclose()`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = TIMEOUT_S,
        backoff: backoff_.Backoff | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._http = AsyncHttp(
            base_url_(base_url, what="scheduler"),
            timeout=_timeout(timeout_s),
            backoff=backoff or backoff_.Backoff(),
            clock=clock,
            transport=transport,
            auth=auth,
        )

    async def ping(self) -> None:
        """Return when the scheduler answers `GET /v1/ping`; raise otherwise."""
        await self._http.call(routes.ping())

    async def environments(self, cluster: str | None = None) -> list[scheduler.EnvironmentPublic]:
        """Every environment, or those of `cluster` (name or ARN)."""
        return await self._http.call(routes.environments(cluster))

    async def environment(self, name: str) -> scheduler.EnvironmentPublic:
        """The environment `name`; HttpNotFound when there is none."""
        return await self._http.call(routes.environment(name))

    async def create_environment(
        self, request: scheduler.EnvironmentCreate
    ) -> scheduler.EnvironmentPublic:
        """Create an environment at revision 1 (not deployed until `deploy`)."""
        return await self._http.call(routes.create_environment(request))

    async def update_environment(
        self, name: str, change: scheduler.EnvironmentUpdate
    ) -> scheduler.EnvironmentPublic:
        """Change `name`: a new revision with a new deploymentToken."""
        return await self._http.call(routes.update_environment(name, change))

    async def delete_environment(self, name: str, *, force: bool = False) -> None:
        """Delete `name` (its tasks are stopped; `force`: forget it at once). None: no-op."""
        await self._http.call(routes.delete_environment(name, force=force))

    async def revisions(self, name: str) -> list[scheduler.RevisionPublic]:
        """The kept revisions of `name`, newest first."""
        return await self._http.call(routes.revisions(name))

    async def revision(self, name: str, number: int) -> scheduler.RevisionPublic:
        """Revision `number` of `name`; HttpNotFound when it is not kept."""
        return await self._http.call(routes.revision(name, number))

    async def rollback(self, name: str, revision: int | None = None) -> scheduler.DeploymentPublic:
        """Deploy a copy of `revision` (default: the one before the current)."""
        return await self._http.call(routes.rollback(name, revision))

    async def pause(self, name: str) -> scheduler.EnvironmentPublic:
        """Stop moving instances to the target revision until `resume`."""
        return await self._http.call(routes.pause(name))

    async def resume(self, name: str) -> scheduler.EnvironmentPublic:
        """Resume a paused rollout."""
        return await self._http.call(routes.resume(name))

    async def deploy(self, name: str, token: str) -> scheduler.DeploymentPublic:
        """Deploy the revision whose `deploymentToken` is `token` (the current one's)."""
        return await self._http.call(routes.deploy(name, token))

    async def deployments(self, name: str) -> list[scheduler.DeploymentPublic]:
        """The deployments of `name`, newest first."""
        return await self._http.call(routes.deployments(name))

    async def deployment(self, name: str, deployment_id: str) -> scheduler.DeploymentPublic:
        """One deployment of `name`; HttpNotFound when there is none."""
        return await self._http.call(routes.deployment(name, deployment_id))

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
