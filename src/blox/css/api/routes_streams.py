"""`GET /v1/stream/tasks` and `GET /v1/stream/instances`: v0.3's change streams.

Each change to a live record is sent as the JSON `GET` returns for it
(`{"metadata": {"entityVersion": "<mod_revision>"}, "entity": ...}`) and a newline, flushed at
once, in store revision order. `entityVersion=N` (N > 0) first replays every change from N on,
N included, then follows live; without it, empty, or 0, the stream follows live from the
revision current when the request was accepted (fixed before any byte is sent, so a change made
after the headers arrived is never missed). A client that resumes with `entityVersion` = the
last version it saw + 1 gets exactly the rest: nothing lost, nothing repeated.

Choices (blox-ecs):
- Validation happens before any byte is sent: `entityVersion` not a non-negative integer gives
  400 `Invalid entity version`; N below the compaction point or above the current revision + 1
  gives 400 `Entity version is out of range`. Unknown query parameters are ignored, as in v0.3.
  A repeated parameter counts by its first value (Go's `Query().Get`).
- Deletions: v0.3 sent none, and a v0.3 client would take any object as live. So tombstones
  (records with `deletedAt`) and deleted keys are skipped by default. `deletes=true` opts in:
  each is then sent as `{"metadata": {"entityVersion": "<revision>", "deleted": true},
  "entity": <the last known entity>}`; a key deleted without a known previous value is skipped.
- Headers are sent at once; an idle stream gets a bare newline every `heartbeat_s` seconds
  (`create_app(heartbeat_s=...)`, 15 by default), which v0.3 clients skip as an empty line.
- Streams are served by a `hub.Hub` per kind (built by `hubs`, one set per app): one store watch
  from the live edge renders each change once for every stream; a stream that asks for an older
  version, or whose client falls behind, replays from the store with its own watch and then
  joins the shared one without a gap or a repeat (see `hub`). "Flushed at once" holds for a
  quiet store; while changes come faster than one per `feed.FLUSH_S` (10 ms), each stream
  sends what came in that interval as one chunk: a send per change to every stream would cost
  more than the changes themselves.
- If a replay's watch raises Compacted after the headers were sent (compaction raced it), the
  stream ends and the event is logged; the client resumes and gets 400 out of range.
- A client disconnect ends the stream's reads and closes its watch: no task outlives it (the
  shared watch stops with the kind's last stream).
- A stored record that does not decode is logged and left out, as lists do.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from blox.clock import Clock
from blox.contract import css, texts
from blox.css.api import feed, hub
from blox.css.api.errors import render
from blox.css.api.responses import START_HEADER, query_parameters, store_of
from blox.model import ecs
from blox.model.errors import RecordInvalid
from blox.store import Change, Store, keys

__all__ = ["CONTENT_TYPE", "HEARTBEAT", "HEARTBEAT_S", "hubs", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/stream", tags=["streams"])

CONTENT_TYPE = "application/octet-stream"
HEARTBEAT = hub.HEARTBEAT
HEARTBEAT_S = 15.0
_MAX_DIGITS = 19  # an int64, as v0.3 parsed it

_STREAM: dict[int | str, dict[str, object]] = {
    200: {
        "description": "one JSON object per line, bare newlines as heartbeats",
        "content": {CONTENT_TYPE: {}},
    },
    400: {"description": "bad or out-of-range entityVersion (plain text)"},
}
# Out of /openapi.json for now: test_css_api pins the documented paths to the four GET routes.
# To publish the streams, set True and add both paths to that test's set.
_IN_SCHEMA = False
_Public = Callable[[ecs.Record, int], BaseModel]
_KINDS: dict[ecs.Kind, tuple[str, _Public]] = {
    "task": (keys.TASKS, css.task_public),
    "instance": (keys.INSTANCES, css.instance_public),
}


def hubs(
    store: Store, *, clock: Clock, ring_lines: int = feed.RING_LINES
) -> dict[ecs.Kind, hub.Hub]:
    """One stream hub per kind over `store`, for one app (`create_app` keeps them)."""
    return {
        kind: hub.Hub(
            store,
            prefix,
            functools.partial(_line, kind=kind, public=public),
            clock=clock,
            ring_lines=ring_lines,
        )
        for kind, (prefix, public) in _KINDS.items()
    }


@router.get(
    "/tasks",
    response_class=StreamingResponse,
    include_in_schema=_IN_SCHEMA,
    responses=_STREAM,
    openapi_extra=query_parameters("entityVersion", "deletes"),
)
async def stream_tasks(request: Request) -> Response:
    """Every change to a task from `entityVersion` on (N included), then live."""
    return await _stream(request, "task")


@router.get(
    "/instances",
    response_class=StreamingResponse,
    include_in_schema=_IN_SCHEMA,
    responses=_STREAM,
    openapi_extra=query_parameters("entityVersion", "deletes"),
)
async def stream_instances(request: Request) -> Response:
    """Every change to a container instance from `entityVersion` on (N included), then live."""
    return await _stream(request, "instance")


async def _stream(request: Request, kind: ecs.Kind) -> Response:
    store = store_of(request)
    params = request.query_params
    asked = params.getlist("entityVersion")
    version = _parse_version(asked[0] if asked else "")
    if version is None:
        return render(400, texts.INVALID_ENTITY_VERSION)
    current = await store.revision()
    if version > 0 and (version < await store.compacted_revision() or version > current + 1):
        return render(400, texts.ENTITY_VERSION_OUT_OF_RANGE)
    start = version if version > 0 else current + 1
    flags = params.getlist("deletes")
    deletes = bool(flags) and flags[0].lower() in {"true", "1"}
    heartbeat_s: float = getattr(request.app.state, "heartbeat_s", HEARTBEAT_S)
    streams: dict[ecs.Kind, hub.Hub] = request.app.state.hubs
    lines = streams[kind].stream(
        first=start, current=current, deletes=deletes, heartbeat_s=heartbeat_s
    )
    headers = {"Connection": "Keep-Alive", START_HEADER: str(start)}
    return StreamingResponse(lines, media_type=CONTENT_TYPE, headers=headers)


def _parse_version(text: str) -> int | None:
    """`entityVersion` as an int (0 when absent or empty), None when it is not one."""
    if not text:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        return None
    return int(text)


def _line(change: Change, *, kind: ecs.Kind, public: _Public) -> feed.Rendered | None:
    """The line sent for `change` and whether it reports a deletion (sent only with
    `deletes=true`), or None when it is never sent (see the module docstring)."""
    entry = change.entry if change.kind == "put" else change.prev
    if entry is None:
        return None
    try:
        record = ecs.decode(entry.value)
    except RecordInvalid as exc:
        logger.warning("leaving the unreadable record at %s out of a stream: %s", entry.key, exc)
        return None
    if record.kind != kind:
        return None
    if change.kind == "put" and not record.is_tombstone:
        return css.dump(public(record, change.revision)) + b"\n", False
    return _deleted(public(record, change.revision)), True


def _deleted(model: BaseModel) -> bytes:
    document = json.loads(css.dump(model))
    document["metadata"]["deleted"] = True
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"
