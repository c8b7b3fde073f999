"""`/v1/environments`: v0.3's create, list (cluster filter), get and delete; blox-ecs's update
(PATCH: a new revision), `?force=true` delete, revisions, rollback, pause and resume.

Thin: parse, call `blox.scheduler.environments`, convert with `blox.contract.scheduler`.
Errors are raised, and rendered by `errors.py`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from blox.contract import scheduler, texts
from blox.scheduler import environments
from blox.scheduler.api import wire
from blox.scheduler.api.wire import ERRORS, catalog_of, json_response, now, store_of
from blox.scheduler.errors import RequestInvalid

router = APIRouter(prefix="/v1/environments", tags=["environments"])

_FILTERS = ("cluster",)


@router.post("", response_model=scheduler.EnvironmentPublic, responses=ERRORS)
async def create_environment(request: Request, body: scheduler.EnvironmentCreate) -> Response:
    """Create a new environment."""
    group = body.instance_group
    environment = await environments.create_environment(
        store_of(request),
        catalog_of(request),
        name=body.name,
        cluster=group.cluster,
        task_definition=body.task_definition,
        constraints=wire.constraints(group.constraints) or (),
        rollout=wire.rollout_change(body.rollout),
        history_limit=body.history_limit or environments.DEFAULT_HISTORY_LIMIT,
        now=now(request),
    )
    return json_response(scheduler.environment_public(environment))


@router.get(
    "",
    response_model=scheduler.EnvironmentsPage,
    responses=ERRORS,
    openapi_extra=wire.query_parameters(*_FILTERS),
)
async def list_environments(request: Request) -> Response:
    """Gets all the environments after applying filters, if any (v0.3: `cluster` only)."""
    query = request.query_params
    if any(name not in _FILTERS for name in query):
        raise RequestInvalid(texts.SCHEDULER_FILTERS_UNSUPPORTED)
    cluster = wire.single(request, "cluster", repeated=texts.FILTERS_REPEATED)
    ref = environments.parse_cluster(cluster) if cluster else None  # v0.3: empty = none
    views = await environments.list_environments(store_of(request), cluster=ref)
    return json_response(
        scheduler.EnvironmentsPage(items=[wire.environment_public(v) for v in views])
    )


@router.get("/{name}", response_model=scheduler.EnvironmentPublic, responses=ERRORS)
async def get_environment(request: Request, name: str) -> Response:
    """Get an environment by name."""
    view = await environments.get_environment(store_of(request), name)
    return json_response(wire.environment_public(view))


@router.patch("/{name}", response_model=scheduler.EnvironmentPublic, responses=ERRORS)
async def update_environment(
    request: Request, name: str, body: scheduler.EnvironmentUpdate
) -> Response:
    """Change an environment: a new revision with a new deploymentToken (blox-ecs)."""
    group = body.instance_group
    environment = await environments.update_environment(
        store_of(request),
        catalog_of(request),
        name=name,
        task_definition=body.task_definition,
        cluster=group.cluster if group is not None else None,
        constraints=wire.constraints(group.constraints) if group is not None else None,
        rollout=wire.rollout_change(body.rollout) if body.rollout is not None else None,
        history_limit=body.history_limit,
        now=now(request),
    )
    return await get_environment(request, environment.name)


@router.delete(
    "/{name}",
    response_class=Response,
    responses={200: {"description": "deleted, or there was none"}, **ERRORS},
    openapi_extra=wire.query_parameters("force"),
)
async def delete_environment(request: Request, name: str) -> Response:
    """Delete an environment by name: its tasks are stopped; `force=true` forgets it at once."""
    force = wire.single(request, "force", repeated=texts.FILTERS_REPEATED)
    if force is not None and force.lower() not in ("true", "false"):
        raise RequestInvalid(texts.INVALID_FORCE.format(value=force))
    await environments.delete_environment(
        store_of(request),
        name,
        force=force is not None and force.lower() == "true",
        now=now(request),
    )
    return Response(status_code=200)


@router.get(
    "/{name}/revisions",
    response_model=scheduler.RevisionsPage,
    responses=ERRORS,
)
async def list_revisions(request: Request, name: str) -> Response:
    """The kept revisions of an environment, newest first (blox-ecs)."""
    revisions = await environments.list_revisions(store_of(request), name)
    return json_response(
        scheduler.RevisionsPage(items=[scheduler.revision_public(r) for r in revisions])
    )


@router.get(
    "/{name}/revisions/{number}",
    response_model=scheduler.RevisionPublic,
    responses=ERRORS,
)
async def get_revision(request: Request, name: str, number: str) -> Response:
    """One kept revision of an environment (blox-ecs)."""
    if not number.isascii() or not number.isdigit() or len(number) > 9 or int(number) < 1:
        raise RequestInvalid(texts.INVALID_REVISION.format(value=number))
    revision = await environments.get_revision(store_of(request), name, number=int(number))
    return json_response(scheduler.revision_public(revision))


@router.post("/{name}/rollback", response_model=scheduler.DeploymentPublic, responses=ERRORS)
async def rollback(
    request: Request, name: str, body: scheduler.RollbackRequest | None = None
) -> Response:
    """Deploy a copy of an earlier revision (default: the one before the current) (blox-ecs)."""
    deployment = await environments.rollback(
        store_of(request),
        name,
        to=body.revision if body is not None else None,
        now=now(request),
    )
    return json_response(scheduler.deployment_public(deployment))


@router.post("/{name}/pause", response_model=scheduler.EnvironmentPublic, responses=ERRORS)
async def pause(request: Request, name: str) -> Response:
    """Stop moving instances to the target revision until resumed (blox-ecs)."""
    await environments.set_paused(store_of(request), name, paused=True, now=now(request))
    return await get_environment(request, name)


@router.post("/{name}/resume", response_model=scheduler.EnvironmentPublic, responses=ERRORS)
async def resume(request: Request, name: str) -> Response:
    """Resume a paused environment's rollout (blox-ecs)."""
    await environments.set_paused(store_of(request), name, paused=False, now=now(request))
    return await get_environment(request, name)
