"""The SQLite backend's own promises: it persists, it is one writer's, it refuses bad files."""

from __future__ import annotations

import asyncio
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from blox.clock import ManualClock
from blox.store import Put, errors, open_store

HOLD_OPEN = """
import asyncio, sys
from blox.store import open_store
async def main():
    store = await open_store(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    await store.close()
asyncio.run(main())
"""


async def test_records_revisions_history_and_leases_survive_a_reopen(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'blox.db'}"
    store = await open_store(url, clock=ManualClock())
    first = await store.put("k", b"1")
    await store.put("k", b"2")
    lease = await store.grant(30)
    await store.put("leased", b"x", lease=lease.id)
    await store.close()

    store = await open_store(url, clock=ManualClock())
    try:
        assert await store.revision() == first + 2
        entry = await store.get("k")
        assert entry is not None and (entry.value, entry.version) == (b"2", 2)
        history = []
        async for change in store.watch("k", start_revision=first):
            history.append(change.entry.value if change.entry else None)
            if len(history) == 2:
                break
        assert history == [b"1", b"2"]
        assert await store.keep_alive(lease.id) == 30
    finally:
        await store.close()


async def test_an_expired_lease_of_a_previous_run_still_expires_after_reopen(
    tmp_path: Path,
) -> None:
    url = f"sqlite:{tmp_path / 'blox.db'}"
    store = await open_store(url, clock=ManualClock())
    lease = await store.grant(2)
    await store.put("leased", b"x", lease=lease.id)
    await store.close()
    clock = ManualClock()
    store = await open_store(url, clock=clock)
    try:
        await clock.advance(3)
        assert await store.get("leased") is None
    finally:
        await store.close()


async def test_a_second_process_is_refused_with_the_owner_pid(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'blox.db'}"
    store = await open_store(url)
    await store.put("k", b"kept")
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-c",
                "import asyncio, sys; from blox.store import open_store;"
                " asyncio.run(open_store(sys.argv[1]))",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert f"is locked by pid {os.getpid()}" in result.stderr
        entry = await store.get("k")
        assert entry is not None and entry.value == b"kept"
    finally:
        await store.close()


def test_the_lock_passes_on_when_its_holder_exits(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'blox.db'}"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
            with pytest.raises(errors.StoreLocked, match=f"pid {holder.pid}"):
                asyncio.run(open_store(url))
        finally:
            holder.kill()
    asyncio.run(_write(url))


async def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "blox.db"
    content = b"this is somebody's notes, not a database\n" * 100
    path.write_bytes(content)
    with pytest.raises(errors.StoreCorrupt, match=str(path)):
        await open_store(f"sqlite:{path}")
    assert path.read_bytes() == content


async def test_a_database_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER)")
        db.execute("INSERT INTO meta VALUES ('schema', 99)")
    with pytest.raises(errors.StoreCorrupt, match="schema 99"):
        await open_store(f"sqlite:{path}")


async def test_a_damaged_database_is_refused_and_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blox.db"
    store = await open_store(f"sqlite:{path}")
    for i in range(200):
        await store.put(f"k{i:03d}", b"x" * 200)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    data[4096:12288] = b"\xff" * 8192  # garbage over the pages after the first
    path.write_bytes(bytes(data))
    with pytest.raises(errors.StoreCorrupt, match="damaged"):
        await open_store(f"sqlite:{path}")
    assert path.read_bytes() == bytes(data)


def read_only(folder: Path, command: list[str]) -> list[str]:
    """`command` run where `folder` is read-only: a read-only bind mount for root, who may
    write any file whatever its mode, or the plain command once the modes forbid writing."""
    if os.geteuid() != 0:
        return command
    quoted = " ".join(shlex.quote(part) for part in command)
    script = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec {quoted}"
    return ["unshare", "--mount", "sh", "-c", script]


def test_a_read_only_store_gives_one_clear_error_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "blox.db"
    asyncio.run(_write(f"sqlite:{path}"))
    before = path.read_bytes()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        result = subprocess.run(
            read_only(
                tmp_path,
                [sys.executable, "-m", "blox", "store", "get", "k", "--store", f"sqlite:{path}"],
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        tmp_path.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "not writable" in result.stderr or "read-only" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == before


async def _write(url: str) -> None:
    store = await open_store(url)
    await store.put("k", b"v")
    await store.close()


async def test_a_commit_that_fails_inside_sqlite_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "blox.db"
    store = await open_store(f"sqlite:{path}")
    try:
        kept = await store.put("k", b"kept")
        # A trigger stands in for a failure half way through the commit (disk full, I/O error).
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER fail AFTER INSERT ON log WHEN NEW.key = CAST('boom' AS BLOB)"
                " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        with pytest.raises(errors.StoreError, match="disk I/O error"):
            await store.txn(compares=[], ops=[Put("k", b"lost"), Put("boom", b"x")])
        assert await store.revision() == kept
        entry = await store.get("k")
        assert entry is not None and entry.value == b"kept"
        assert await store.put("after", b"ok") == kept + 1
    finally:
        await store.close()
