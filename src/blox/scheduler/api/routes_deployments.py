"""`/v1/environments/{name}/deployments`: v0.3's create (quoting `deploymentToken`), list
(newest first) and get.

v0.3 answered a missing or malformed token with its router's `404 page not found`; blox-ecs
says what is wrong with a 400. Thin, as `routes_environments`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from blox.contract import scheduler
from blox.scheduler import environments
from blox.scheduler.api import wire
from blox.scheduler.api.wire import ERRORS, json_response, now, store_of

router = APIRouter(prefix="/v1/environments/{name}/deployments", tags=["deployments"])


@router.post(
    "",
    response_model=scheduler.DeploymentPublic,
    responses=ERRORS,
    openapi_extra=wire.query_parameters("deploymentToken", required=["deploymentToken"]),
)
async def create_deployment(request: Request, name: str) -> Response:
    """Create a deployment of the environment's current revision, quoting its token."""
    deployment = await environments.create_deployment(
        store_of(request), name, token=wire.token(request), now=now(request)
    )
    return json_response(scheduler.deployment_public(deployment))


@router.get("", response_model=scheduler.DeploymentsPage, responses=ERRORS)
async def list_deployments(request: Request, name: str) -> Response:
    """The deployments of an environment, newest first."""
    deployments = await environments.list_deployments(store_of(request), name)
    return json_response(
        scheduler.DeploymentsPage(items=[scheduler.deployment_public(d) for d in deployments])
    )


@router.get("/{deployment_id}", response_model=scheduler.DeploymentPublic, responses=ERRORS)
async def get_deployment(request: Request, name: str, deployment_id: str) -> Response:
    """One deployment of an environment."""
    deployment = await environments.get_deployment(
        store_of(request), name, deployment_id=deployment_id
    )
    return json_response(scheduler.deployment_public(deployment))
