"""`GET /v1/instances` (filters: status, cluster) and `GET /v1/instances/{cluster}/{arn}`.

Thin: parse with `blox.css.queries`, read, convert with `blox.contract.css`. Errors are raised
as `blox.css.errors` and rendered by `errors.py`. The path is taken whole (`{path:path}`)
because container-instance ARNs in the long format, and cluster ARNs, contain '/'.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from blox.contract import css
from blox.css import queries
from blox.css.api.responses import json_response, query_parameters, store_of

router = APIRouter(prefix="/v1/instances", tags=["instances"])

_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "bad filters (plain text)"},
    404: {"description": "Instance not found (plain text)"},
}


@router.get(
    "",
    response_model=css.ContainerInstancesPage,
    responses=_ERRORS,
    openapi_extra=query_parameters("status", "cluster", "maxResults", "nextToken"),
)
async def list_instances(request: Request) -> Response:
    """Lists all container instances, after applying filters if any."""
    filters, paging = queries.instance_query(request.query_params.multi_items())
    store = store_of(request)
    revision = await store.revision()  # every change after it has a higher entityVersion
    listing = await queries.list_records(store, filters, paging)
    return json_response(
        css.ContainerInstancesPage(
            items=[css.instance_public(f.record, f.mod_revision) for f in listing.items],
            next_token=listing.next_token,
        ),
        revision=revision,
    )


@router.get("/{path:path}", response_model=css.ContainerInstancePublic, responses=_ERRORS)
async def get_instance(request: Request) -> Response:
    """Get a task by cluster (name or ARN) and task ARN: `/v1/instances/{cluster}/{arn}`."""
    found = await queries.get_record(store_of(request), "instance", request.path_params["path"])
    return json_response(css.instance_public(found.record, found.mod_revision))
