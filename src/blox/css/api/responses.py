"""What the CSS routes share: the v0.3 JSON response and the store the app was built with."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from blox.contract import css
from blox.store import Store

__all__ = [
    "CONTENT_TYPE",
    "REVISION_HEADER",
    "START_HEADER",
    "json_response",
    "query_parameters",
    "store_of",
]

CONTENT_TYPE = "application/json; charset=UTF-8"
# blox-ecs additions that v0.3 clients ignore. A list names the store revision it read at or
# after, so a client that lists and then streams from that revision + 1 misses no change (the
# informer's list-then-watch); a stream names the first entityVersion it delivers.
REVISION_HEADER = "X-Blox-Store-Revision"
START_HEADER = "X-Blox-Entity-Version"


def json_response(model: BaseModel, *, revision: int | None = None) -> Response:
    """`model` as v0.3 JSON (`application/json; charset=UTF-8`, empties left out).

    revision: the store revision read before the answer was, sent as `X-Blox-Store-Revision`.
    """
    headers = None if revision is None else {REVISION_HEADER: str(revision)}
    return Response(css.dump(model), media_type=CONTENT_TYPE, headers=headers)


def store_of(request: Request) -> Store:
    """The store `create_app` was given."""
    store: Store = request.app.state.store
    return store


def query_parameters(*names: str) -> dict[str, Any]:
    """OpenAPI text for query parameters the route parses itself (to see repeats and unknowns)."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in names
        ]
    }
