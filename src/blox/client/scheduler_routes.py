"""The daemon scheduler's routes as `http.Call`s: path, query, JSON body and how a 200 reads.

Pure: builds request descriptions, sends nothing. Both scheduler clients (`scheduler`) send
these, so each route's path and models are written once. Paths follow `blox.scheduler.api`;
a name or id is quoted as one path segment, so no input can reach another route.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from blox.client.http import Call, parse
from blox.contract import scheduler

__all__ = [
    "create_environment",
    "delete_environment",
    "deploy",
    "deployment",
    "deployments",
    "environment",
    "environments",
    "pause",
    "resume",
    "revision",
    "revisions",
    "rollback",
    "ping",
    "update_environment",
]

_ENVIRONMENTS = "/v1/environments"


def _segment(value: str) -> str:
    """One path segment: a name or id is quoted whole, so it can never reach another route."""
    return quote(value, safe="")


def _environment(name: str, *rest: str) -> str:
    return "/".join([_ENVIRONMENTS, _segment(name), *rest])


def _nothing(_: httpx.Response) -> None:
    return None


def _environment_public(response: httpx.Response) -> scheduler.EnvironmentPublic:
    return parse(scheduler.EnvironmentPublic, response)


def _deployment_public(response: httpx.Response) -> scheduler.DeploymentPublic:
    return parse(scheduler.DeploymentPublic, response)


def ping() -> Call[None]:
    """`GET /v1/ping`: an empty 200."""
    return Call("GET", "/v1/ping", _nothing)


def environments(cluster: str | None) -> Call[list[scheduler.EnvironmentPublic]]:
    """`GET /v1/environments[?cluster=]`: the environments' items."""
    params = {} if cluster is None else {"cluster": cluster}
    return Call(
        "GET",
        _ENVIRONMENTS,
        lambda response: parse(scheduler.EnvironmentsPage, response).items,
        params,
    )


def environment(name: str) -> Call[scheduler.EnvironmentPublic]:
    """`GET /v1/environments/{name}`."""
    return Call("GET", _environment(name), _environment_public)


def create_environment(
    request: scheduler.EnvironmentCreate,
) -> Call[scheduler.EnvironmentPublic]:
    """`POST /v1/environments` with the request as JSON."""
    body = scheduler.dump(request)
    return Call("POST", _ENVIRONMENTS, _environment_public, body=body)


def update_environment(
    name: str, change: scheduler.EnvironmentUpdate
) -> Call[scheduler.EnvironmentPublic]:
    """`PATCH /v1/environments/{name}` with the change as JSON (blox-ecs)."""
    body = scheduler.dump(change)
    return Call("PATCH", _environment(name), _environment_public, body=body)


def delete_environment(name: str, *, force: bool) -> Call[None]:
    """`DELETE /v1/environments/{name}[?force=true]`: an empty 200."""
    params = {"force": "true"} if force else {}  # v0.3 knew no `force`: only sent when asked
    return Call("DELETE", _environment(name), _nothing, params)


def revisions(name: str) -> Call[list[scheduler.RevisionPublic]]:
    """`GET /v1/environments/{name}/revisions` (blox-ecs)."""
    return Call(
        "GET",
        _environment(name, "revisions"),
        lambda response: parse(scheduler.RevisionsPage, response).items,
    )


def revision(name: str, number: int) -> Call[scheduler.RevisionPublic]:
    """`GET /v1/environments/{name}/revisions/{number}` (blox-ecs)."""
    return Call(
        "GET",
        _environment(name, "revisions", str(number)),
        lambda response: parse(scheduler.RevisionPublic, response),
    )


def rollback(name: str, revision: int | None) -> Call[scheduler.DeploymentPublic]:
    """`POST /v1/environments/{name}/rollback` with `{"revision": N}` or `{}` (blox-ecs)."""
    # Not validated here: the server answers a bad revision with its own one-line 400.
    body = scheduler.dump(scheduler.RollbackRequest.model_construct(revision=revision))
    return Call("POST", _environment(name, "rollback"), _deployment_public, body=body)


def pause(name: str) -> Call[scheduler.EnvironmentPublic]:
    """`POST /v1/environments/{name}/pause` (blox-ecs)."""
    return Call("POST", _environment(name, "pause"), _environment_public)


def resume(name: str) -> Call[scheduler.EnvironmentPublic]:
    """`POST /v1/environments/{name}/resume` (blox-ecs)."""
    return Call("POST", _environment(name, "resume"), _environment_public)


def deploy(name: str, token: str) -> Call[scheduler.DeploymentPublic]:
    """`POST /v1/environments/{name}/deployments?deploymentToken=`."""
    path = _environment(name, "deployments")
    return Call("POST", path, _deployment_public, {"deploymentToken": token})


def deployments(name: str) -> Call[list[scheduler.DeploymentPublic]]:
    """`GET /v1/environments/{name}/deployments`, newest first."""
    return Call(
        "GET",
        _environment(name, "deployments"),
        lambda response: parse(scheduler.DeploymentsPage, response).items,
    )


def deployment(name: str, deployment_id: str) -> Call[scheduler.DeploymentPublic]:
    """`GET /v1/environments/{name}/deployments/{id}`."""
    path = _environment(name, "deployments", _segment(deployment_id))
    return Call("GET", path, _deployment_public)
