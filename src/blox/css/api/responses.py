"""What the CSS routes share: the v0.3 JSON response and the store the app was built with."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from blox.contract import css
from blox.store import Store

__all__ = ["CONTENT_TYPE", "json_response", "query_parameters", "store_of"]

CONTENT_TYPE = "application/json; charset=UTF-8"


def json_response(model: BaseModel) -> Response:
    """`model` as v0.3 JSON (`application/json; charset=UTF-8`, empties left out)."""
    return Response(css.dump(model), media_type=CONTENT_TYPE)


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
