"""API Gateway (REST API, Lambda proxy integration) -> the blox load balancer, over plain HTTP.

The BloxAws stack (deploy/cloudformation/blox-aws.yaml) inlines this file as its Lambda code, so
it is the `index` module there (handler `index.handler`); tests load it from deploy/lambda/.
Standard library only: no layer, no packaging.

Request: method, path, query (multiValueQueryStringParameters), headers and body of the event
are sent to BLOX_ENDPOINT (e.g. http://internal-blox-123.us-east-1.elb.amazonaws.com). The
path is rebuilt from the resource template and pathParameters (`/{proxy+}` + proxy), so neither
the stage (`/blox/...` in requestContext.path) nor a custom domain's base path reaches the
services; without path parameters the event's `path` is used, which never holds the stage.
Hop-by-hop headers, Host and API Gateway's own SigV4 headers are not forwarded.
Response: status, every header value (multiValueHeaders), the body as text, or base64 with
isBase64Encoded when the content type is not textual. Redirects are passed on, not followed,
with a Location on the load balancer rewritten to the caller's base (stage or base path).
Errors: upstream unreachable or broken -> 502, no answer within BLOX_TIMEOUT_S (default 25;
API Gateway gives up at 29) -> 504, a body over Lambda's 6 MB response limit -> 502; each is a
JSON body {"message": ...} as API Gateway's own errors are.
Invariants: never raises out of `handler` for anything the upstream does.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import urllib.parse
from typing import Any

__all__ = ["handler"]

TIMEOUT_S = 25.0
MAX_BODY_BYTES = 5_000_000  # Lambda's response payload is 6 MB, base64 adds a third.
# RFC 9110 7.6.1 hop-by-hop headers, plus what the proxy recomputes or must not pass on.
DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "authorization",
        "x-amz-security-token",
    }
)
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
TEXT_SUFFIXES = ("+json", "+xml")
PARAMETER = re.compile(r"\{([^{}+]+)\+?\}")
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """The Lambda entry point: forward `event` to BLOX_ENDPOINT, return API Gateway's shape."""
    endpoint = os.environ.get("BLOX_ENDPOINT", "").strip().rstrip("/")
    if not endpoint:
        return _error(500, "the proxy has no BLOX_ENDPOINT")
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    try:
        timeout_s = float(os.environ.get("BLOX_TIMEOUT_S") or TIMEOUT_S)
    except ValueError:
        return _error(500, "BLOX_TIMEOUT_S is not a number")
    base = urllib.parse.urlsplit(endpoint)
    kind = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
    path = upstream_path(event)
    target = base.path + urllib.parse.quote(path, safe=PATH_SAFE) + _query(event)
    connection = kind(base.netloc, timeout=timeout_s)
    try:
        # http.client adds Host and Content-Length, and no Content-Type of its own.
        connection.request(
            event.get("httpMethod") or "GET",
            target,
            body=_body(event),
            headers=_request_headers(event),
        )
        response = connection.getresponse()
        body = response.read(MAX_BODY_BYTES + 1)
        return _respond(event, path, endpoint, response.status, response.getheaders(), body)
    except TimeoutError:
        return _error(504, f"blox did not answer within {timeout_s:g} s")
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return _error(502, f"blox is unreachable: {exc}")
    except (http.client.HTTPException, OSError) as exc:
        return _error(502, f"blox broke the connection: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


def upstream_path(event: dict[str, Any]) -> str:
    """The path to ask blox for: the resource with its path parameters, or the event's path."""
    resource = event.get("resource") or ""
    parameters = event.get("pathParameters") or {}
    if parameters and PARAMETER.search(resource):
        path = PARAMETER.sub(lambda m: str(parameters.get(m.group(1), "")), resource)
    else:
        path = event.get("path") or "/"
    return "/" + path.lstrip("/")


def _query(event: dict[str, Any]) -> str:
    multi = event.get("multiValueQueryStringParameters")
    pairs = multi or {k: [v] for k, v in (event.get("queryStringParameters") or {}).items()}
    query = urllib.parse.urlencode([(k, v) for k, vs in pairs.items() for v in vs])
    return "?" + query if query else ""


def _body(event: dict[str, Any]) -> bytes | None:
    body = event.get("body")
    if body is None:
        return None
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode("utf-8")


def _request_headers(event: dict[str, Any]) -> dict[str, str]:
    multi = event.get("multiValueHeaders")
    pairs = multi or {k: [v] for k, v in (event.get("headers") or {}).items()}
    return {k: ", ".join(vs) for k, vs in pairs.items() if k.lower() not in DROPPED and vs}


def _respond(
    event: dict[str, Any],
    path: str,
    endpoint: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        return _error(502, "the answer is larger than API Gateway can carry; page through it")
    multi: dict[str, list[str]] = {}
    content_type = ""
    for name, value in headers:
        if name.lower() == "location":
            value = _public_location(event, path, endpoint, value)
        elif name.lower() == "content-type":
            content_type = value
        if name.lower() not in DROPPED:
            multi.setdefault(name, []).append(value)
    try:
        text = body.decode("utf-8") if _is_text(content_type) else None
    except UnicodeDecodeError:
        text = None
    return {
        "statusCode": status,
        "multiValueHeaders": multi,
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": text is None,
    }


def _public_location(event: dict[str, Any], path: str, endpoint: str, location: str) -> str:
    """A redirect target on the load balancer, as the caller reaches it through API Gateway."""
    if location.startswith(endpoint + "/"):
        location = location[len(endpoint) :]
    if not location.startswith("/") or location.startswith("//"):
        return location
    public = (event.get("requestContext") or {}).get("path") or ""
    quoted = urllib.parse.quote(path, safe=PATH_SAFE)
    for suffix in (path, quoted):
        if public.endswith(suffix) and len(public) > len(suffix):
            return public[: -len(suffix)] + location
    return location


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return not kind or kind.startswith(TEXT_TYPES) or kind.endswith(TEXT_SUFFIXES)


def _error(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }
