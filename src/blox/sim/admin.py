"""The simulator's admin API under `/_sim/…`: change faults at run time, read their counters.

Routes (JSON in, JSON out; snake_case fields):

    GET    /_sim/healthz                 {"status": "ok"}
    GET    /_sim/faults                  event faults, kill rate, start failures, throttle rates
    PUT    /_sim/faults                  partial update: FaultConfig fields and kill_rate_per_s
    DELETE /_sim/faults                  no event faults, no killer, no start failures, rates reset
    GET    /_sim/counters                {"events": …, "pump": …, "state": …}
    POST   /_sim/instances               {cluster, count, cpu?, memory?, attributes?}
    POST   /_sim/instances/drain         {cluster, instances}
    POST   /_sim/agents/disconnect       {cluster, instances}   (and …/reconnect)
    POST   /_sim/tasks/kill              {cluster?, task?, count?}
    POST   /_sim/start-failures          {cluster, instances, reason?}; DELETE {instances?}
    PUT    /_sim/throttle                {operation, capacity, rate_per_s}; DELETE resets

A bad request is refused whole, before anything changes: 400 (404 for an unknown cluster)
with `{"error": <type>, "message": <one line>}`. Handlers run on the server's event loop, the
one thread that touches the state. Callers: `sim/service.py` mounts these; `blox sim` calls them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from blox import errors
from blox.sim import errors as sim_errors
from blox.sim.chaos import Chaos, check_kill_rate
from blox.sim.faults import EventFaults, FaultConfig, FaultConfigInvalid
from blox.sim.pump import EventPump

logger = logging.getLogger(__name__)

PREFIX = "/_sim"
ADD_INSTANCES_MAX = 1000
Body = dict[str, Any]
KINDS: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    (int, float): "a number",
    list: "a list",
    dict: "a JSON object",
}


class AdminInvalid(errors.Invalid):
    """An admin request body is not a JSON object, misses a field or has one of a wrong type."""


def _error(exc: Exception) -> Response:
    kind = exc.type_name if isinstance(exc, sim_errors.SimError) else type(exc).__name__
    status = 404 if isinstance(exc, errors.NotFound) else 400
    return JSONResponse({"error": kind, "message": str(exc)}, status_code=status)


def _endpoint(handler: Callable[[Body], Body]) -> Callable[[Request], Awaitable[Response]]:
    """Parse the body, run `handler`, render its result or its BloxError."""

    async def endpoint(request: Request) -> Response:
        try:
            raw = await request.body()
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise AdminInvalid("the request body must be a JSON object")
            return JSONResponse(handler(body))
        except ValueError as exc:  # json.JSONDecodeError
            return _error(AdminInvalid(f"the request body is not JSON: {exc}"))
        except errors.BloxError as exc:
            return _error(exc)
        except Exception:
            logger.exception("unexpected error in the simulator's admin API")
            return JSONResponse({"error": "ServerError", "message": "internal error"}, 500)

    return endpoint


def _get(body: Body, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """Field `name` of `body`, checked to be of `kind` (bools are never numbers)."""
    if name not in body:
        if default is ...:
            raise AdminInvalid(f"{name} is required")
        return default
    value = body[name]
    numeric = kind in (int, float) or kind == (int, float)
    if (numeric and isinstance(value, bool)) or not isinstance(value, kind):
        raise AdminInvalid(f"{name} must be {KINDS.get(kind, kind)}, got {value!r}")
    return value


def _names(body: Body, name: str, default: Any = ...) -> Any:
    """A non-empty list of strings (instance or task references)."""
    if name not in body and default is not ...:
        return default
    value = _get(body, name, list)
    if not value or not all(isinstance(v, str) and v for v in value):
        raise AdminInvalid(f"{name} must be a non-empty list of strings")
    return value


def _only(body: Body, *known: str) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise AdminInvalid(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")


class Admin:
    """The admin handlers over one simulator's fault controls."""

    def __init__(self, *, chaos: Chaos, events: EventFaults, pump: EventPump | None) -> None:
        self.chaos = chaos
        self.events = events
        self.pump = pump

    def health(self, body: Body) -> Body:
        return {"status": "ok"}

    def faults(self, body: Body) -> Body:
        return {"events": self.events.config.to_dict(), **self.chaos.describe()}

    def set_faults(self, body: Body) -> Body:
        known = {f.name for f in dataclasses.fields(FaultConfig)} | {"kill_rate_per_s"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise FaultConfigInvalid(
                f"unknown fault setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        settings = dict(body)
        rate = check_kill_rate(settings.pop("kill_rate_per_s", self.chaos.kill_rate_per_s))
        config = FaultConfig.from_dict({**self.events.config.to_dict(), **settings})
        self.events.reconfigure(config)
        self.chaos.kill_rate_per_s = rate
        return self.faults({})

    def clear_faults(self, body: Body) -> Body:
        self.events.reconfigure(FaultConfig())
        self.chaos.kill_rate_per_s = 0.0
        self.chaos.clear_start_failures()
        self.chaos.reset_throttle()
        return self.faults({})

    def counters(self, body: Body) -> Body:
        pump = dataclasses.asdict(self.pump.counters) if self.pump is not None else {}
        return {
            "events": dataclasses.asdict(self.events.counters),
            "pump": pump,
            "state": dataclasses.asdict(self.chaos.counters),
        }

    def add_instances(self, body: Body) -> Body:
        _only(body, "cluster", "count", "cpu", "memory", "attributes")
        count = _get(body, "count", int, 1)
        if not 1 <= count <= ADD_INSTANCES_MAX:
            raise AdminInvalid(f"count must be between 1 and {ADD_INSTANCES_MAX}, got {count}")
        cpu, memory = _get(body, "cpu", int, None), _get(body, "memory", int, None)
        if (cpu is not None and cpu < 0) or (memory is not None and memory < 0):
            raise AdminInvalid("cpu and memory must be >= 0")
        attributes = _get(body, "attributes", dict, {})
        if not all(isinstance(v, str) for v in attributes.values()):
            raise AdminInvalid("attributes must map names to string values")
        arns = self.chaos.add_instances(
            cluster=_get(body, "cluster", str, "default"),
            count=count,
            cpu=cpu,
            memory=memory,
            attributes=attributes,
        )
        return {"containerInstanceArns": arns}

    def drain(self, body: Body) -> Body:
        _only(body, "cluster", "instances")
        cluster, instances = _get(body, "cluster", str, "default"), _names(body, "instances")
        return {"drained": self.chaos.drain(cluster=cluster, instances=instances)}

    def agents(self, *, connected: bool) -> Callable[[Body], Body]:
        def handle(body: Body) -> Body:
            _only(body, "cluster", "instances")
            changed = self.chaos.set_agents(
                cluster=_get(body, "cluster", str, "default"),
                instances=_names(body, "instances"),
                connected=connected,
            )
            return {"changed": changed}

        return handle

    def kill(self, body: Body) -> Body:
        _only(body, "cluster", "task", "count")
        count = _get(body, "count", int, 1)
        if count < 1:
            raise AdminInvalid(f"count must be >= 1, got {count}")
        killed = self.chaos.kill(
            cluster=_get(body, "cluster", str, None),
            task=_get(body, "task", str, None),
            count=count,
        )
        return {"killed": killed}

    def fail_starts(self, body: Body) -> Body:
        _only(body, "cluster", "instances", "reason")
        self.chaos.fail_starts(
            cluster=_get(body, "cluster", str, "default"),
            instances=_names(body, "instances"),
            reason=_get(body, "reason", str, "AGENT"),
        )
        return self.faults({})

    def clear_start_failures(self, body: Body) -> Body:
        _only(body, "instances")
        self.chaos.clear_start_failures(instances=_names(body, "instances", None))
        return self.faults({})

    def set_throttle(self, body: Body) -> Body:
        _only(body, "operation", "capacity", "rate_per_s")
        operation = _get(body, "operation", str)
        if not operation:
            raise AdminInvalid("operation must name an ECS operation, e.g. DescribeTasks")
        self.chaos.set_throttle(
            operation=operation,
            capacity=float(_get(body, "capacity", (int, float))),
            rate_per_s=float(_get(body, "rate_per_s", (int, float))),
        )
        return self.faults({})

    def reset_throttle(self, body: Body) -> Body:
        self.chaos.reset_throttle()
        return self.faults({})


def routes(*, chaos: Chaos, events: EventFaults, pump: EventPump | None = None) -> list[BaseRoute]:
    """The `/_sim` routes over these fault controls, to mount with `create_app(extra_routes=…)`."""
    admin = Admin(chaos=chaos, events=events, pump=pump)
    table: list[tuple[str, str, Callable[[Body], Body]]] = [
        ("/healthz", "GET", admin.health),
        ("/faults", "GET", admin.faults),
        ("/faults", "PUT", admin.set_faults),
        ("/faults", "DELETE", admin.clear_faults),
        ("/counters", "GET", admin.counters),
        ("/instances", "POST", admin.add_instances),
        ("/instances/drain", "POST", admin.drain),
        ("/agents/disconnect", "POST", admin.agents(connected=False)),
        ("/agents/reconnect", "POST", admin.agents(connected=True)),
        ("/tasks/kill", "POST", admin.kill),
        ("/start-failures", "POST", admin.fail_starts),
        ("/start-failures", "DELETE", admin.clear_start_failures),
        ("/throttle", "PUT", admin.set_throttle),
        ("/throttle", "DELETE", admin.reset_throttle),
    ]
    return [
        Route(f"{PREFIX}{path}", _endpoint(handler), methods=[method])
        for path, method, handler in table
    ]
