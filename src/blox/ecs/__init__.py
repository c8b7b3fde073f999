"""The only code that talks to the ECS API: `EcsClient` and the errors it raises.

client.py   EcsClient: typed async calls, pagination, StartTask ≤ 10 / Describe* ≤ 100
retry.py    jittered exponential backoff on an injected clock; only Temporary errors
errors.py   EcsError tree and translated(), the boto edge
convert.py  pure: ECS responses → Described / Failure / JSON-safe details
"""

from __future__ import annotations

from blox.ecs.client import DESCRIBE_BATCH, START_TASK_BATCH, EcsClient, Started
from blox.ecs.convert import Described, Failure, detail
from blox.ecs.errors import (
    AccessDenied,
    ClientRefused,
    ClusterNotFound,
    EcsError,
    EndpointUnreachable,
    InvalidParameter,
    ServerError,
    Throttled,
    translated,
)
from blox.ecs.retry import RetryPolicy, delays, retrying

__all__ = [
    "DESCRIBE_BATCH",
    "START_TASK_BATCH",
    "AccessDenied",
    "ClientRefused",
    "ClusterNotFound",
    "Described",
    "EcsClient",
    "EcsError",
    "EndpointUnreachable",
    "Failure",
    "InvalidParameter",
    "RetryPolicy",
    "ServerError",
    "Started",
    "Throttled",
    "delays",
    "detail",
    "retrying",
    "translated",
]
