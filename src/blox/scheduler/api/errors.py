"""The one place that renders the daemon scheduler's errors (STYLE B6).

Every error the scheduler raises on purpose carries its exact text (`blox.contract.texts`) as
its message; here it only gets its status: v0.3's 400 for a taken name, an outdated or used
token and a deployment in progress, 404 for what does not exist, 400 for any other request
error (the scheduler's and the domain model's), 409 for a name still being deleted and for a
forbidden status change, 503 `Server Error` when the store or ECS is unavailable, 500 `Server
Error` for anything else, its traceback logged and never shown. FastAPI's validation errors
become a 400 saying which field is wrong; Starlette's 404 / 405 v0.3's plain texts. Every body
is `text/plain; charset=utf-8`: the text and a newline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from blox import errors
from blox.contract import texts
from blox.model.errors import DaemonInvalid
from blox.obs.routes import CatchUnexpected
from blox.scheduler import errors as scheduler_errors

__all__ = ["CONTENT_TYPE", "STATUSES", "describe", "install", "render", "status_and_text"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; charset=utf-8"
_NOT_JSON = "the body is not valid JSON"

# Errors whose status v0.3 fixed, or that no category says.
STATUSES: dict[type[errors.BloxError], int] = {
    scheduler_errors.EnvironmentExists: 400,
    scheduler_errors.TokenOutdated: 400,
    scheduler_errors.DeploymentExists: 400,
    scheduler_errors.DeploymentInProgress: 400,
    scheduler_errors.EnvironmentDeleting: 409,
    scheduler_errors.TransitionInvalid: 409,
}
# Categories of the errors the scheduler raises about a request: their message is for the client.
_CATEGORIES: tuple[tuple[type[errors.BloxError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Invalid, 400),
)


def status_and_text(exc: errors.BloxError) -> tuple[int, str]:
    """The HTTP status and text for `exc`."""
    ours = isinstance(exc, scheduler_errors.SchedulerError | DaemonInvalid)
    for cls in type(exc).__mro__:
        if ours and cls in STATUSES:
            return STATUSES[cls], str(exc)
    for category, status in _CATEGORIES:
        if ours and isinstance(exc, category):
            return status, str(exc)
    if isinstance(exc, errors.Unavailable | errors.Temporary):
        return 503, texts.SERVER_ERROR
    return 500, texts.SERVER_ERROR


def describe(problems: Sequence[Any]) -> str:
    """What is wrong with a request, from FastAPI's validation errors (the first one)."""
    if not problems:
        return "the request does not match the API"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    kind = first.get("type")
    if kind == "json_invalid":
        return _NOT_JSON
    if kind == "missing" and not where:
        return "a JSON body is required"
    if kind == "extra_forbidden":
        return f"{where}: unknown field"
    return f"{where or 'body'}: {first.get('msg', 'invalid')}"


def render(status: int, text: str, *, headers: Mapping[str, str] | None = None) -> Response:
    """A plain-text error response: `text` and a newline."""
    return Response(f"{text}\n", status_code=status, media_type=CONTENT_TYPE, headers=headers)


async def _blox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.BloxError)
    status, text = status_and_text(exc)
    if status >= 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return render(status, text)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return render(404, texts.PAGE_NOT_FOUND)
    if exc.status_code == 405:
        return render(405, texts.METHOD_NOT_ALLOWED, headers={"Allow": _allowed(request)})
    if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8, not JSON)
        return render(400, texts.INVALID_REQUEST.format(detail=_NOT_JSON))
    if exc.status_code >= 500:
        return render(exc.status_code, texts.SERVER_ERROR)
    return render(exc.status_code, f"{exc.status_code} {HTTPStatus(exc.status_code).phrase}")


def _allowed(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    routes: list[BaseRoute] = request.app.state.api_routes
    for route in routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and isinstance(route, APIRoute):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return render(400, texts.INVALID_REQUEST.format(detail=describe(exc.errors())))


def install(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Register every error handler of the scheduler API on `app` (after adding middleware);
    `routes` are the API's, of which a 405 names every method at the path in `Allow`."""
    app.state.api_routes = list(routes)
    app.add_exception_handler(errors.BloxError, _blox_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CatchUnexpected, answer=lambda: render(500, texts.SERVER_ERROR))
