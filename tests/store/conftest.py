"""The conformance fixture: one `backend` per store implementation, etcd on a real server.

Tests address keys under `backend.ns`, a prefix unique to the test, since the etcd server is
shared by the whole session. Revisions are compared relative to each other, never absolute.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from blox.clock import Clock, ManualClock, SystemClock
from blox.store import Store, open_store

if TYPE_CHECKING:
    from blox.testing.etcd import EtcdServer

BACKENDS = ["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)]
_namespaces = itertools.count()


@dataclass
class Backend:
    """A store under test, its clock, and a key prefix of its own."""

    name: str
    store: Store
    clock: Clock
    ns: str
    url: str

    async def let_time_pass(self, seconds: float) -> None:
        """Let `seconds` pass for the store's leases: fake time locally, real time on etcd."""
        if isinstance(self.clock, ManualClock):
            await self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    async def open_another(self) -> Store:
        """A second client of the same store (a new connection; the same object locally)."""
        if self.name == "etcd":
            return await open_store(self.url)
        return self.store


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each store implementation in turn, freshly opened, with a unique key namespace."""
    name: str = request.param
    clock: Clock
    if name == "etcd":
        server: EtcdServer = request.getfixturevalue("etcd_server")
        url, clock = server.url, SystemClock()
    else:
        url = "memory://" if name == "memory" else f"sqlite:{tmp_path / 'store.db'}"
        clock = ManualClock()
    store = await open_store(url, clock=clock)
    try:
        yield Backend(name, store, clock, f"t{next(_namespaces)}/", url)
    finally:
        await store.close()
