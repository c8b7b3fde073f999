"""blox.client declares its surface and stays on its side of the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import blox.client

CLIENT = Path(blox.client.__file__).parent
FORBIDDEN = ("blox.css", "blox.store", "blox.ecs", "blox.sim", "blox.scheduler", "blox.cli")


def test_every_declared_name_exists() -> None:
    assert sorted(blox.client.__all__) == sorted(
        [
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
    )
    for name in blox.client.__all__:
        assert hasattr(blox.client, name), name


def test_the_client_imports_no_server_side_package() -> None:
    for module in CLIENT.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN), name
