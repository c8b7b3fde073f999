"""SigV4Auth signs as botocore signs, finds credentials in the AWS chain lazily, refreshes them,
and a loopback server recomputing each signature with botocore accepts what both clients send.

Credentials come from the environment (monkeypatched; the machine's files, profiles and
instance role are masked), time from a ManualClock, and botocore's own `add_auth` at the same
fixed time is the reference. The last tests (marked integration) run a tiny Starlette app
under uvicorn on 127.0.0.1 behind an ASGI check that answers 403 to a wrong signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import botocore.auth
import httpx
import pytest
import uvicorn
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from blox.client import (
    AsyncCssClient,
    AsyncSchedulerClient,
    CssClient,
    HttpUnauthorized,
    NoCredentials,
    SchedulerClient,
    SigV4Auth,
)
from blox.client.sigv4 import SERVICE
from blox.clock import ManualClock
from blox.contract.scheduler import EnvironmentCreate, InstanceGroupCreate
from blox.testing.ports import free_port

REGION = "eu-west-1"
KEY, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token/x+y="
AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
GATEWAY = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
CHAIN_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
ENVIRONMENT = {
    "name": "web",
    "instanceGroup": {"cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/a"},
    "taskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
    "deploymentToken": "2f1c9c0e-7a3b-4c55-9f7e-0d5e4b2a1c3d",
    "health": "healthy",
}
CREATE = EnvironmentCreate(
    name="web", instance_group=InstanceGroupCreate(cluster="a b"), task_definition="web:1"
)


@pytest.fixture
def no_chain(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An AWS chain with nothing in it: no variables, no files, no instance role."""
    for name in CHAIN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def env_keys(no_chain: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Long-term keys in the environment (the chain's first source)."""
    no_chain.setenv("AWS_ACCESS_KEY_ID", KEY)
    no_chain.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return no_chain


def signed(request: httpx.Request, auth: SigV4Auth) -> httpx.Request:
    """`request` as the auth sends it."""
    return next(auth.sync_auth_flow(request))


def as_received(request: httpx.Request) -> AWSRequest:
    """What an API Gateway rebuilds from `request`: decoded query, host and content type."""
    return AWSRequest(
        method=request.method,
        url=str(request.url.copy_with(query=None)),
        headers={h: request.headers[h] for h in ("host", "content-type") if h in request.headers},
        data=request.content,
        params=list(request.url.params.multi_items()),  # type: ignore[arg-type]
    )


def botocores_own(
    request: httpx.Request, credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> AWSRequest:
    """`request` signed by botocore's own SigV4Auth.add_auth at AT (naive UTC, as botocore)."""
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *_, **__: AT.replace(tzinfo=None)
    )
    reference = as_received(request)
    botocore.auth.SigV4Auth(credentials, SERVICE, REGION).add_auth(reference)
    return reference


def test_a_get_with_a_query_is_signed_exactly_as_botocore_signs_it(
    env_keys: pytest.MonkeyPatch,
) -> None:
    auth = SigV4Auth(region=REGION, clock=ManualClock(AT))
    url = f"{GATEWAY}/v1/tasks?cluster=a%20b&startedBy=x%2Ay~&status=running"
    request = signed(httpx.Request("GET", url), auth)
    reference = botocores_own(request, Credentials(KEY, SECRET), env_keys)
    assert request.headers["authorization"] == reference.headers["Authorization"]
    assert request.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY}/20150830/{REGION}/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature="
    )
    assert request.headers["x-amz-date"] == "20150830T123600Z"
    assert "x-amz-security-token" not in request.headers


def test_temporary_credentials_send_and_sign_their_session_token(
    env_keys: pytest.MonkeyPatch,
) -> None:
    env_keys.setenv("AWS_SESSION_TOKEN", TOKEN)
    auth = SigV4Auth(region=REGION, clock=ManualClock(AT))
    request = signed(httpx.Request("DELETE", f"{GATEWAY}/v1/environments/web"), auth)
    reference = botocores_own(request, Credentials(KEY, SECRET, TOKEN), env_keys)
    assert request.headers["x-amz-security-token"] == TOKEN
    assert request.headers["authorization"] == reference.headers["Authorization"]
    assert (
        "SignedHeaders=host;x-amz-date;x-amz-security-token," in reference.headers["Authorization"]
    )


def test_a_json_body_is_covered_by_its_hash_and_its_content_type(
    env_keys: pytest.MonkeyPatch,
) -> None:
    auth = SigV4Auth(region=REGION, clock=ManualClock(AT))
    body = b'{"name":"web","taskDefinition":"web:1"}'
    headers = {"content-type": "application/json"}
    url = f"{GATEWAY}/v1/environments"
    request = signed(httpx.Request("POST", url, content=body, headers=headers), auth)
    reference = botocores_own(request, Credentials(KEY, SECRET), env_keys)
    assert request.headers["authorization"] == reference.headers["Authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date," in request.headers["authorization"]
    signer = botocore.auth.SigV4Auth(Credentials(KEY, SECRET), SERVICE, REGION)
    canonical = signer.canonical_request(reference)
    assert canonical.splitlines()[-1] == hashlib.sha256(body).hexdigest()
    other = signed(httpx.Request("POST", url, content=body[:-1] + b" }", headers=headers), auth)
    assert other.headers["authorization"] != request.headers["authorization"]


def test_credentials_are_looked_up_on_the_first_request_not_when_built(
    no_chain: pytest.MonkeyPatch,
) -> None:
    auth = SigV4Auth(region=REGION, clock=ManualClock(AT))  # nothing to find yet: no error
    with pytest.raises(NoCredentials, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        signed(httpx.Request("GET", f"{GATEWAY}/v1/ping"), auth)
    no_chain.setenv("AWS_ACCESS_KEY_ID", KEY)
    no_chain.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    request = signed(httpx.Request("GET", f"{GATEWAY}/v1/ping"), auth)
    assert f"Credential={KEY}/" in request.headers["authorization"]


def test_an_unknown_profile_is_a_clear_no_credentials(no_chain: pytest.MonkeyPatch) -> None:
    auth = SigV4Auth(region=REGION, profile="nosuch")
    with pytest.raises(NoCredentials, match="nosuch"):
        auth.frozen_credentials()


def test_expired_credentials_are_refreshed_before_signing() -> None:
    refreshed: list[int] = []

    def refresh() -> dict[str, str]:
        refreshed.append(1)
        later = datetime.now(UTC) + timedelta(hours=1)
        return {
            "access_key": "AKIDNEW",
            "secret_key": SECRET,
            "token": TOKEN,
            "expiry_time": later.isoformat(),
        }

    expired = {
        "access_key": "AKIDOLD",
        "secret_key": SECRET,
        "token": "old",
        "expiry_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    credentials = RefreshableCredentials.create_from_metadata(expired, refresh, "test")
    auth = SigV4Auth(region=REGION, credentials=credentials, clock=ManualClock(AT))
    for _ in range(2):
        request = signed(httpx.Request("GET", f"{GATEWAY}/v1/ping"), auth)
        assert "Credential=AKIDNEW/" in request.headers["authorization"]
        assert request.headers["x-amz-security-token"] == TOKEN
    assert refreshed == [1]  # once: the new ones are good for an hour


async def test_the_async_flow_signs_as_the_blocking_one(env_keys: pytest.MonkeyPatch) -> None:
    auth = SigV4Auth(region=REGION, clock=ManualClock(AT))
    url, body = f"{GATEWAY}/v1/environments/web/rollback", b"{}"
    blocking = signed(httpx.Request("POST", url, content=body), auth)
    flow = auth.async_auth_flow(httpx.Request("POST", url, content=body))
    asynchronous = await anext(flow)
    await flow.aclose()
    assert asynchronous.headers["authorization"] == blocking.headers["authorization"]


# -- a loopback server that checks every signature --------------------------------------------


def verified(scope: Scope, body: bytes, credentials: ReadOnlyCredentials) -> bool:
    """Whether the request's SigV4 signature is right, recomputed with botocore from what came."""
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    algorithm, _, fields = headers.get("authorization", "").partition(" ")
    parts = dict(p.strip().split("=", 1) for p in fields.split(",") if "=" in p)
    names = parts.get("SignedHeaders", "").split(";")
    scope_ = f"{credentials.access_key}/{headers.get('x-amz-date', '')[:8]}/{REGION}/{SERVICE}"
    if algorithm != "AWS4-HMAC-SHA256" or parts.get("Credential") != f"{scope_}/aws4_request":
        return False
    if not {"host", "x-amz-date"} <= set(names) or (
        "x-amz-security-token" in headers and "x-amz-security-token" not in names
    ):
        return False
    request = AWSRequest(
        method=scope["method"],
        url=f"http://{headers['host']}{scope['raw_path'].decode()}",
        headers={name: headers[name] for name in names},
        data=body,
        params=parse_qsl(scope["query_string"].decode(), keep_blank_values=True),  # type: ignore[arg-type]
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = botocore.auth.SigV4Auth(credentials, SERVICE, REGION)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return hmac.compare_digest(expected, parts.get("Signature", ""))


class SignatureCheck:
    """ASGI: records `(method, path, verified)` of each request; 403 unless verified."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.seen: list[tuple[str, str, bool]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        ok = verified(scope, body, ReadOnlyCredentials(KEY, SECRET, TOKEN))
        self.seen.append((scope["method"], scope["path"], ok))
        if not ok:
            await PlainTextResponse("signature does not match\n", status_code=403)(
                scope, receive, send
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _tasks(_: Request) -> Response:
    return JSONResponse({"items": []})


async def _create(request: Request) -> Response:
    assert (await request.json())["instanceGroup"] == {"cluster": "a b"}
    return JSONResponse(ENVIRONMENT)


async def _stream(_: Request) -> Response:
    async def lines() -> AsyncIterator[bytes]:
        yield b"\n"  # a heartbeat: the watch is open

    return StreamingResponse(lines(), media_type="application/json")


class Gateway:
    """The checked app under uvicorn on 127.0.0.1, its routes under the stage prefix /prod."""

    def __init__(self) -> None:
        routes = [
            Route("/v1/tasks", _tasks),
            Route("/v1/environments", _create, methods=["POST"]),
            Route("/v1/stream/tasks", _stream),
        ]
        self.check = SignatureCheck(Starlette(routes=[Mount("/prod", routes=routes)]))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/prod"
        config = uvicorn.Config(self.check, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def gateway(env_keys: pytest.MonkeyPatch) -> Iterator[Gateway]:
    env_keys.setenv("AWS_SESSION_TOKEN", TOKEN)
    with Gateway() as served:
        yield served


@pytest.mark.integration
def test_a_checking_server_accepts_what_the_blocking_clients_sign(gateway: Gateway) -> None:
    auth = SigV4Auth(region=REGION)
    with CssClient(gateway.url, auth=auth) as css, SchedulerClient(gateway.url, auth=auth) as sch:
        assert css.tasks(cluster="a b", started_by="x*y~", status="running") == []
        assert sch.create_environment(CREATE).name == "web"
        with css.watch_tasks(7):
            pass
    assert gateway.check.seen == [
        ("GET", "/prod/v1/tasks", True),
        ("POST", "/prod/v1/environments", True),
        ("GET", "/prod/v1/stream/tasks", True),
    ]


@pytest.mark.integration
async def test_a_checking_server_accepts_what_the_async_clients_sign(gateway: Gateway) -> None:
    auth = SigV4Auth(region=REGION)
    async with AsyncCssClient(gateway.url, auth=auth) as css:
        assert await css.tasks(cluster="arn:aws:ecs:eu-west-1:1:cluster/a", family="w") == []
        async with css.watch_tasks(3):
            pass
    async with AsyncSchedulerClient(gateway.url, auth=auth) as sch:
        assert (await sch.create_environment(CREATE)).name == "web"
    assert [ok for *_, ok in gateway.check.seen] == [True, True, True]


@pytest.mark.integration
def test_a_wrong_secret_is_refused_by_the_checking_server(gateway: Gateway) -> None:
    forged = SigV4Auth(region=REGION, credentials=Credentials(KEY, "not-the-secret", TOKEN))
    with SchedulerClient(gateway.url, auth=forged) as client, pytest.raises(HttpUnauthorized) as e:
        client.create_environment(CREATE)
    assert (e.value.status, e.value.text) == (403, "signature does not match")
    assert gateway.check.seen == [("POST", "/prod/v1/environments", False)]
