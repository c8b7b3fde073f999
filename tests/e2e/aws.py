"""What the e2e tests share: boto3 clients on moto or the simulator, and polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3

T = TypeVar("T")
REGION = "us-east-1"
DEADLINE_S = 30.0
DEFINITION = {
    "family": "web",
    "containerDefinitions": [{"name": "main", "image": "nginx", "cpu": 128, "memory": 256}],
}


def client(service: str, endpoint: str) -> Any:
    """A boto3 client of `service` at `endpoint`, with dummy credentials."""
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def until(check: Callable[[], T], *, what: str, deadline_s: float = DEADLINE_S) -> T:
    """Poll `check` until it returns something truthy; fail after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
