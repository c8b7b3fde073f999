"""The one place that renders the cluster state service's errors (STYLE B6).

A `BloxError` becomes its v0.3 status and text (`blox.contract.texts`), chosen by its class
where v0.3 had a text of its own and by its category otherwise. Starlette's own 404 / 405 and
FastAPI's request validation become v0.3's plain-text answers (never a 422 JSON body); a request
error (`CssError` and `Invalid`) added without a text here still gets 400 `400 Bad Request`;
anything unexpected becomes 500 `Unexpected internal server error`, its traceback logged and
never shown. Every error body is `text/plain; charset=utf-8`: the text and a newline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from blox import errors
from blox.contract import texts
from blox.css import errors as css_errors
from blox.obs.routes import CatchUnexpected

__all__ = ["BAD_REQUEST", "CONTENT_TYPE", "TEXTS", "install", "render", "status_and_text"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; charset=utf-8"

TEXTS: dict[type[errors.BloxError], tuple[int, str]] = {
    css_errors.TaskNotFound: (404, texts.TASK_NOT_FOUND),
    css_errors.InstanceNotFound: (404, texts.INSTANCE_NOT_FOUND),
    css_errors.RouteNotFound: (404, texts.PAGE_NOT_FOUND),
    css_errors.FilterUnsupported: (400, texts.FILTERS_UNSUPPORTED),
    css_errors.FilterRepeated: (400, texts.FILTERS_REPEATED),
    css_errors.StatusInvalid: (400, texts.INVALID_STATUS),
    css_errors.ClusterInvalid: (400, texts.INVALID_CLUSTER),
    css_errors.ContainerInstanceInvalid: (400, texts.INVALID_CONTAINER_INSTANCE),
    css_errors.FamilyInvalid: (400, texts.INVALID_FAMILY),
    css_errors.GroupInvalid: (400, texts.INVALID_GROUP),
    css_errors.MaxResultsInvalid: (400, texts.INVALID_MAX_RESULTS),
    css_errors.NextTokenInvalid: (400, texts.INVALID_NEXT_TOKEN),
}
# Categories without a text of their own. Invalid stored data (RecordInvalid) is our fault,
# not the client's, so only errors raised about the request (css_errors) map to 400 above.
_CATEGORIES: tuple[tuple[type[errors.BloxError], int, str], ...] = (
    (errors.Compacted, 400, texts.ENTITY_VERSION_OUT_OF_RANGE),
    (errors.Unavailable, 503, texts.UNEXPECTED_INTERNAL),
)
BAD_REQUEST = "400 Bad Request"  # a request error added without a text: still the client's 400


def status_and_text(exc: errors.BloxError) -> tuple[int, str]:
    """The HTTP status and v0.3 text for `exc`."""
    for cls in type(exc).__mro__:
        if cls in TEXTS:
            return TEXTS[cls]
    for category, status, text in _CATEGORIES:
        if isinstance(exc, category):
            return status, text
    if isinstance(exc, css_errors.CssError) and isinstance(exc, errors.Invalid):
        return 400, BAD_REQUEST
    return 500, texts.UNEXPECTED_INTERNAL


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
        return render(405, texts.METHOD_NOT_ALLOWED, headers=exc.headers)
    if exc.status_code >= 500:
        return render(exc.status_code, texts.UNEXPECTED_INTERNAL)
    return render(exc.status_code, f"{exc.status_code} {HTTPStatus(exc.status_code).phrase}")


async def _validation_error(request: Request, exc: Exception) -> Response:
    # No route declares typed parameters, so this is a defence: answer as v0.3 would for input
    # it did not understand, never with FastAPI's 422 JSON.
    return render(400, texts.FILTERS_UNSUPPORTED)


def install(app: FastAPI) -> None:
    """Register every error handler of the CSS API on `app` (call after adding middleware)."""
    app.add_exception_handler(errors.BloxError, _blox_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CatchUnexpected, answer=lambda: render(500, texts.UNEXPECTED_INTERNAL))
