"""`blox store …`: inspect and edit a store directly, as etcdctl does for etcd.

For operators: see what the services wrote, follow changes, compact by hand. Output is JSON
lines with `-o json`, a table otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from blox.store import Change, Entry, Store, open_store

DEFAULT_STORE = "sqlite:.blox/blox.db"
T = TypeVar("T")

app = typer.Typer(
    help="Inspect and edit a store (memory://, sqlite:…, etcd://…).", no_args_is_help=True
)
StoreOption = typer.Option(DEFAULT_STORE, "--store", envvar="BLOX_STORE", help="Store URL.")
OutputOption = typer.Option("table", "--output", "-o", help="table or json.")


def _run(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    async def body() -> T:
        store = await open_store(url)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(body())


def _value(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "value": _value(entry.value),
        "createRevision": entry.create_revision,
        "modRevision": entry.mod_revision,
        "version": entry.version,
        "lease": entry.lease,
    }


def _print_entries(entries: list[Entry], output: str) -> None:
    if output == "json":
        for entry in entries:
            typer.echo(json.dumps(_entry_json(entry)))
        return
    table = Table("KEY", "VALUE", "MOD", "VERSION")
    for e in entries:
        table.add_row(e.key, _value(e.value)[:60], str(e.mod_revision), str(e.version))
    Console().print(table)


@app.command()
def status(store: str = StoreOption) -> None:
    """Print the store's revision and compaction point."""

    async def read(s: Store) -> tuple[int, int]:
        return await s.revision(), await s.compacted_revision()

    revision, compacted = _run(store, read)
    typer.echo(json.dumps({"store": store, "revision": revision, "compacted": compacted}))


@app.command()
def get(key: str, store: str = StoreOption, output: str = OutputOption) -> None:
    """Print one key; exit status 1 if it does not exist."""
    entry = _run(store, lambda s: s.get(key))
    if entry is None:
        typer.echo(f"error: key {key!r} not found", err=True)
        raise typer.Exit(1)
    _print_entries([entry], output)


@app.command("list")
def list_(
    prefix: str = typer.Argument(""),
    limit: int = typer.Option(0, min=0),
    store: str = StoreOption,
    output: str = OutputOption,
) -> None:
    """Print the keys under a prefix, in key order."""
    page = _run(store, lambda s: s.list(prefix, limit=limit))
    _print_entries(page.entries, output)


@app.command()
def put(key: str, value: str, store: str = StoreOption) -> None:
    """Write a key (UTF-8 text) and print the new revision."""
    typer.echo(_run(store, lambda s: s.put(key, value.encode())))


@app.command()
def compact(revision: int = typer.Argument(..., min=1), store: str = StoreOption) -> None:
    """Forget history older than a revision."""
    _run(store, lambda s: s.compact(revision))


@app.command()
def watch(
    prefix: str = typer.Argument(""),
    start_revision: int = typer.Option(0, min=0),
    count: int = typer.Option(0, min=0, help="Stop after this many changes (0: never)."),
    store: str = StoreOption,
) -> None:
    """Print every change under a prefix as JSON lines, from a revision on."""

    async def follow(s: Store) -> None:
        seen = 0
        async for change in s.watch(prefix, start_revision=start_revision):
            typer.echo(json.dumps(_change_json(change)))
            seen += 1
            if count and seen >= count:
                return

    _run(store, follow)


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "type": change.kind,
        "key": change.key,
        "revision": change.revision,
        "value": _value(change.entry.value) if change.entry else None,
        "prevValue": _value(change.prev.value) if change.prev else None,
    }
