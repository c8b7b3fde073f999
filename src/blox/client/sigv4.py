"""`SigV4Auth`: an `httpx.Auth` signing every request with AWS Signature Version 4, for our APIs
behind an API Gateway with IAM authorization (service `execute-api`), as the AWS install has.

botocore does the cryptography (its `SigV4Auth`: canonical request, credential scope, HMAC
chain); `sign` only hands it the request and copies back `Authorization`, `X-Amz-Date` and,
with temporary credentials, `X-Amz-Security-Token`. The signature covers the method, the path
(an API Gateway stage prefix included), the query, the `host` and `content-type` headers and
the SHA-256 of the body; a proxy may change any other header without breaking it. Streams
(watches) are signed when they connect, and again on every reconnect and retry.

Credentials come from botocore's default chain (environment, `profile` in the shared files,
container, instance role) on the first request, not when the auth is built, and botocore
refreshes temporary ones before they expire; none found, or a refresh failing, raises
`NoCredentials`. The time signed is `clock.now()`. Callers: whoever builds a client, e.g.
`CssClient(url, auth=SigV4Auth(region="us-east-1"))`; the `blox` CLI.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime

import botocore.auth
import botocore.session
import httpx
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from blox.client.errors import NoCredentials
from blox.clock import Clock, SystemClock

__all__ = ["SERVICE", "SIGNED_HEADERS", "SigV4Auth", "sign"]

SERVICE = "execute-api"  # API Gateway's signing name
SIGNED_HEADERS = ("host", "content-type")  # besides x-amz-date and x-amz-security-token
_ALGORITHM = "AWS4-HMAC-SHA256"
_MISSING = (
    "no AWS credentials found to sign requests with: set AWS_PROFILE (or aws_profile in a "
    "blox profile), or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance or task role"
)


def sign(
    request: httpx.Request,
    *,
    credentials: ReadOnlyCredentials,
    region: str,
    service: str = SERVICE,
    now: datetime,
) -> None:
    """Add the SigV4 headers to `request` (its body read), signed at `now` with `credentials`."""
    stamp = now.astimezone(UTC).strftime(botocore.auth.SIGV4_TIMESTAMP)
    aws = AWSRequest(
        method=request.method,
        url=str(request.url.copy_with(query=None)),
        headers={name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers},
        data=request.content,
        # Decoded pairs: botocore encodes them the AWS way, as the receiving side will.
        params=list(request.url.params.multi_items()),  # type: ignore[arg-type]
    )
    aws.context["timestamp"] = stamp
    aws.headers["X-Amz-Date"] = stamp
    if credentials.token:
        aws.headers["X-Amz-Security-Token"] = credentials.token
    # botocore's add_auth would read the wall clock itself: its steps, at the time we give.
    signer = botocore.auth.SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(aws)
    signature = signer.signature(signer.string_to_sign(aws, canonical), aws)
    signed = signer.signed_headers(signer.headers_to_sign(aws))
    request.headers["Authorization"] = (
        f"{_ALGORITHM} Credential={signer.scope(aws)}, SignedHeaders={signed}, "
        f"Signature={signature}"
    )
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token


def _chain(profile: str | None) -> Credentials:
    """The credentials botocore's default chain finds (for `profile`, when given)."""
    try:
        found = botocore.session.Session(profile=profile).get_credentials()
    except BotoCoreError as exc:  # an unknown profile, a malformed config file …
        raise NoCredentials(f"no AWS credentials to sign requests with: {exc}") from exc
    if found is None:
        raise NoCredentials(_MISSING)
    return found


class SigV4Auth(httpx.Auth):
    """Signs each request for `service` in `region` (see the module docstring).

    `credentials`: these (static or botocore `RefreshableCredentials`) instead of the chain;
    `profile`: the shared-file profile the chain reads (default: AWS_PROFILE, else "default").
    """

    requires_request_body = True  # the body's hash is signed: httpx reads it first

    def __init__(
        self,
        *,
        region: str,
        service: str = SERVICE,
        profile: str | None = None,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not region or not service:
            raise ValueError("SigV4 signing needs a region and a service name")
        self.region, self.service, self.profile = region, service, profile
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()

    def frozen_credentials(self) -> ReadOnlyCredentials:
        """The credentials to sign with now; looks them up on first use, refreshes them when
        botocore says they are about to expire (may block: reads files or the instance role)."""
        with self._lock:
            if self._credentials is None:
                self._credentials = _chain(self.profile)
            credentials = self._credentials
        try:
            frozen = credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise NoCredentials(f"the AWS credentials could not be refreshed: {exc}") from exc
        if not frozen.access_key or not frozen.secret_key:
            raise NoCredentials(_MISSING)
        return frozen

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._sign(request, self.frozen_credentials())
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()  # what httpx's own async flow does first for requires_request_body
        # Looking credentials up or refreshing them may block on files or HTTP: not on the loop.
        self._sign(request, await asyncio.to_thread(self.frozen_credentials))
        yield request

    def _sign(self, request: httpx.Request, credentials: ReadOnlyCredentials) -> None:
        sign(
            request,
            credentials=credentials,
            region=self.region,
            service=self.service,
            now=self._clock.now(),
        )
