"""The simulator's Starlette app: `POST /` speaks the ECS JSON 1.1 protocol.

The one place that renders simulator errors: a `SimError` becomes `{"__type", "message"}`
with its status; anything unexpected becomes a 500 ServerException and a logged traceback.
Other routers (the admin API) join through `extra_routes`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from blox.sim import errors
from blox.sim.api import EcsApi, render
from blox.sim.state import EcsState
from blox.sim.throttle import Throttle

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"


def error_response(error: errors.SimError) -> Response:
    """The ECS error body for `error`."""
    body = render({"__type": error.type_name, "message": error.message})
    return _response(body, status=error.status)


def _response(body: bytes, *, status: int = 200) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    return Response(body, status_code=status, media_type=CONTENT_TYPE, headers=headers)


def create_app(
    state: EcsState,
    *,
    throttle: Throttle | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    api: EcsApi | None = None,
) -> Starlette:
    """An app serving `state` over the ECS API, throttled by `throttle` when given."""
    ecs = api or EcsApi(state)

    async def ecs_endpoint(request: Request) -> Response:
        try:
            operation = ecs.operation(request.headers.get("x-amz-target"))
            if throttle is not None:
                throttle.take(operation)
            body = await request.body()
            return _response(render(ecs.call(operation, body)))
        except errors.SimError as exc:
            return error_response(exc)
        except Exception:
            logger.exception("unexpected error in the ECS simulator")
            return error_response(errors.ServerFault("An internal error occurred."))

    routes: list[BaseRoute] = [Route("/", ecs_endpoint, methods=["POST"]), *extra_routes]
    app = Starlette(routes=routes)
    app.state.ecs_state = state
    app.state.throttle = throttle
    return app
