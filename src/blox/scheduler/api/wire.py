"""What the scheduler routes share: request fields as domain values, views as JSON responses.

Shares and constraints are parsed by `blox.model.daemon` (a `DaemonInvalid` says what is
wrong: a 400); query parameters the routes parse themselves, to answer v0.3's texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from blox.clock import Clock
from blox.contract import scheduler, texts
from blox.model import daemon
from blox.scheduler import environments
from blox.scheduler.catalog import EcsCatalog
from blox.scheduler.errors import RequestInvalid
from blox.store import Store

__all__ = [
    "CONTENT_TYPE",
    "ERRORS",
    "catalog_of",
    "constraints",
    "environment_public",
    "json_response",
    "now",
    "query_parameters",
    "rollout_change",
    "single",
    "status_public",
    "store_of",
    "token",
]

CONTENT_TYPE = "application/json; charset=UTF-8"
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad input (plain text)", "content": _TEXT},
    404: {"description": "no such environment, deployment or revision", "content": _TEXT},
    409: {"description": "the environment is being deleted", "content": _TEXT},
    503: {"description": "the store or ECS is unavailable", "content": _TEXT},
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def json_response(model: BaseModel) -> Response:
    """`model` as JSON (`application/json; charset=UTF-8`, as v0.3), empties left out."""
    return Response(scheduler.dump(model), media_type=CONTENT_TYPE)


def store_of(request: Request) -> Store:
    """The store `create_app` was given."""
    store: Store = request.app.state.store
    return store


def catalog_of(request: Request) -> EcsCatalog:
    """The ECS catalog `create_app` was given."""
    catalog: EcsCatalog = request.app.state.catalog
    return catalog


def now(request: Request) -> datetime:
    """The time by the app's clock."""
    clock: Clock = request.app.state.clock
    return clock.now()


def query_parameters(*names: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """OpenAPI text for query parameters the route parses itself (to answer v0.3's texts)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {"type": "string"},
            }
            for name in names
        ]
    }


def single(request: Request, name: str, *, repeated: str) -> str | None:
    """The one value of query parameter `name`, or None; RequestInvalid(`repeated`) if many."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise RequestInvalid(repeated)
    return values[0] if values else None


def constraints(texts_: Sequence[str] | None) -> tuple[daemon.Constraint, ...] | None:
    """Constraint texts as values (None stays None); DaemonInvalid names a bad one."""
    if texts_ is None:
        return None
    return tuple(daemon.parse_constraint(text) for text in texts_)


def rollout_change(settings: scheduler.RolloutSettings | None) -> environments.RolloutChange:
    """Rollout settings as a change of the policy; DaemonInvalid names a bad share."""
    if settings is None:
        return environments.RolloutChange()
    unavailable, surge = settings.max_unavailable, settings.max_surge
    return environments.RolloutChange(
        max_unavailable=(
            None if unavailable is None else daemon.parse_share(unavailable, "maxUnavailable")
        ),
        max_surge=None if surge is None else daemon.parse_share(surge, "maxSurge"),
        min_ready_s=settings.min_ready_seconds,
        progress_deadline_s=settings.progress_deadline_seconds,
        auto_rollback=settings.auto_rollback,
    )


def status_public(status: environments.Status | None) -> scheduler.StatusPublic | None:
    """The wire form of the controller's last status of an environment."""
    if status is None:
        return None
    return scheduler.StatusPublic(
        desired=status.desired,
        current=status.current,
        ready=status.ready,
        updated=status.updated,
        available=status.available,
        unavailable=status.unavailable,
        misscheduled=status.misscheduled,
        current_revision=status.current_revision,
        target_revision=status.target_revision,
        reason=status.reason,
        observed_at=scheduler.timestamp(status.observed_at),
    )


def environment_public(view: environments.EnvironmentView) -> scheduler.EnvironmentPublic:
    """The wire form of an environment as the API shows it."""
    return scheduler.environment_public(
        view.environment,
        target_revision=None if view.target is None else view.target.number,
        status=status_public(view.status),
    )


def token(request: Request) -> str:
    """The `deploymentToken` query parameter: required, once, a lower-case UUID."""
    value = single(request, "deploymentToken", repeated=texts.TOKEN_REPEATED)
    if value is None:
        raise RequestInvalid(texts.TOKEN_MISSING)
    if not UUID.fullmatch(value):
        raise RequestInvalid(texts.TOKEN_INVALID.format(token=value))
    return value
