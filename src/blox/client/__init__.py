"""blox.client: the SDK over HTTP, the only code that calls blox-ecs's own REST APIs.

css.py        CssClient / AsyncCssClient: lists (all pages), gets, watches of the CSS
scheduler.py  SchedulerClient / AsyncSchedulerClient: environments, revisions, deployments
scheduler_routes.py  pure: each scheduler route as an `http.Call`
watch.py      Watch / AsyncWatch: a change stream that reconnects and resumes by itself
cursor.py     pure: list pages and stream positions; `entity_version(item)`
http.py       the send / retry / parse core both clients share (GETs retried, changes not)
sigv4.py      SigV4Auth: signs requests for an API Gateway with IAM auth (botocore, AWS chain)
backoff.py    Backoff: retries of temporary failures, sleeping on what the caller injects
errors.py     ClientError tree and translated(), the httpx edge
"""

from __future__ import annotations

from blox.client import errors
from blox.client.backoff import Backoff
from blox.client.css import AsyncCssClient, CssClient
from blox.client.cursor import entity_version
from blox.client.errors import (
    ClientError,
    ConnectFailed,
    HttpConflict,
    HttpError,
    HttpInvalid,
    HttpNotFound,
    HttpRefused,
    HttpUnauthorized,
    HttpUnavailable,
    NoCredentials,
    ResponseInvalid,
    ServerUnreachable,
    StreamCompacted,
)
from blox.client.scheduler import AsyncSchedulerClient, SchedulerClient
from blox.client.sigv4 import SigV4Auth
from blox.client.watch import AsyncWatch, Watch

__all__ = [
    "AsyncCssClient",
    "AsyncSchedulerClient",
    "AsyncWatch",
    "Backoff",
    "ClientError",
    "ConnectFailed",
    "CssClient",
    "HttpConflict",
    "HttpError",
    "HttpInvalid",
    "HttpNotFound",
    "HttpRefused",
    "HttpUnauthorized",
    "HttpUnavailable",
    "NoCredentials",
    "ResponseInvalid",
    "SchedulerClient",
    "ServerUnreachable",
    "SigV4Auth",
    "StreamCompacted",
    "Watch",
    "entity_version",
    "errors",
]
