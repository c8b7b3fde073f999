"""blox.client: the SDK over HTTP, the only code that calls blox-ecs's own REST APIs.

css.py      CssClient / AsyncCssClient: lists (all pages), gets, watches of the CSS
watch.py    Watch / AsyncWatch: a change stream that reconnects and resumes by itself
cursor.py   pure: list pages and stream positions; `entity_version(item)`
backoff.py  Backoff: retries of temporary failures, sleeping on what the caller injects
errors.py   ClientError tree and translated(), the httpx edge
"""

from __future__ import annotations

from blox.client import errors
from blox.client.backoff import Backoff
from blox.client.css import AsyncCssClient, CssClient
from blox.client.cursor import entity_version
from blox.client.errors import (
    ClientError,
    HttpError,
    HttpInvalid,
    HttpNotFound,
    HttpRefused,
    HttpUnauthorized,
    HttpUnavailable,
    ResponseInvalid,
    ServerUnreachable,
    StreamCompacted,
)
from blox.client.watch import AsyncWatch, Watch

__all__ = [
    "AsyncCssClient",
    "AsyncWatch",
    "Backoff",
    "ClientError",
    "CssClient",
    "HttpError",
    "HttpInvalid",
    "HttpNotFound",
    "HttpRefused",
    "HttpUnauthorized",
    "HttpUnavailable",
    "ResponseInvalid",
    "ServerUnreachable",
    "StreamCompacted",
    "Watch",
    "entity_version",
    "errors",
]
