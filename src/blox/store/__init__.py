"""blox.store: a versioned key-value store with etcd v3 semantics, on memory, SQLite or etcd.

The surface is `Store` and its values, `open_store(url)`, the errors, and `keys` (the layout).
Services depend on this surface only, never on a backend module (import-linter keeps it so).
"""

from __future__ import annotations

from blox.clock import Clock, SystemClock
from blox.store import compaction, errors, keys, url
from blox.store.base import Change, Compare, Delete, Entry, Lease, Op, Page, Put, Store
from blox.store.election import Election, Leadership, while_leading

__all__ = [
    "Change",
    "Compare",
    "Delete",
    "Election",
    "Entry",
    "Leadership",
    "Lease",
    "Op",
    "Page",
    "Put",
    "Store",
    "compaction",
    "errors",
    "keys",
    "open_store",
    "url",
    "while_leading",
]


async def open_store(store_url: str, *, clock: Clock | None = None) -> Store:
    """Open the store `store_url` names (see `blox.store.url`); raise a StoreError if it cannot."""
    parsed = url.parse(store_url)
    if parsed.scheme == "etcd":
        from blox.store import etcd

        timeout_s = float(parsed.options.get("timeout", etcd.DEFAULT_TIMEOUT_S))
        return await etcd.open_etcd(store_url, parsed.endpoints, timeout_s=timeout_s)
    from blox.store import local

    engine: local.Engine
    if parsed.scheme == "sqlite":
        from blox.store import sqlite

        assert parsed.path is not None
        engine = sqlite.SqliteEngine(parsed.path, synchronous=parsed.options["synchronous"])
    else:
        from blox.store import memory

        engine = memory.MemoryEngine()
    return local.LocalStore(store_url, engine, clock or SystemClock())
