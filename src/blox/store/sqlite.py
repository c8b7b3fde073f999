"""The SQLite engine: the embedded default store, one file, no server.

WAL mode; `synchronous=NORMAL` by default (a commit survives a crash of the process; a power
cut may lose the last commits), `?synchronous=full` for an fsync per commit. One process may
open a file at a time: an exclusive lock on `<file>.lock` holding the owner's pid makes a
second one fail with `StoreLocked` instead of writing beside it. Every sqlite3 error is
translated here, in `translated()`, and nowhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from blox.store import errors
from blox.store.base import Change, Entry, prefix_end
from blox.store.local import FIRST_REVISION

SCHEMA_VERSION = 1
# Keys per `IN (...)` query: under SQLite's oldest variable limit (999), so one query per page.
GET_MANY_CHUNK = 900
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER NOT NULL, sub INTEGER NOT NULL, key BLOB NOT NULL,
    value BLOB, create_revision INTEGER, version INTEGER, lease INTEGER,
    prev_value BLOB, prev_create INTEGER, prev_mod INTEGER, prev_version INTEGER,
    prev_lease INTEGER,
    PRIMARY KEY (revision, sub)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
"""
_KV_COLUMNS = "key, value, create_revision, mod_revision, version, lease"
_LOG_COLUMNS = (
    "revision, key, value, create_revision, version, lease,"
    " prev_value, prev_create, prev_mod, prev_version, prev_lease"
)


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Map sqlite3's exceptions to the store's, naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            raise errors.StoreReadOnly(f"store file {path} cannot be written: {text}") from exc
        if "locked" in text or "busy" in text:
            raise errors.StoreLocked(f"store file {path} is locked by another writer") from exc
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            raise errors.StoreCorrupt(f"store file {path} is damaged: {text}") from exc
        raise errors.StoreError(f"store file {path}: {text}") from exc


def _lock(path: Path) -> IO[str]:
    """Hold `<path>.lock` exclusively for this process, or raise StoreLocked naming the owner."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    except PermissionError as exc:
        raise errors.StoreReadOnly(f"cannot create {lock_path}: {exc.strerror}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise errors.StoreLocked(f"store {path} is locked by pid {owner}") from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _check_writable(path: Path) -> None:
    """Refuse a file or folder we could not write, before SQLite half-opens it."""
    folder = path.parent
    if not folder.is_dir():
        raise errors.StoreReadOnly(f"folder {folder} of store {path} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise errors.StoreReadOnly(f"folder {folder} of store {path} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise errors.StoreReadOnly(f"store file {path} is read-only")


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(bytes(row[0]).decode(), bytes(row[1]), row[2], row[3], row[4], row[5])


def _change(row: Sequence[Any]) -> Change:
    revision, raw_key = row[0], row[1]
    key = bytes(raw_key).decode()
    prev = None
    if row[6] is not None:
        prev = Entry(key, bytes(row[6]), row[7], row[8], row[9], row[10])
    if row[2] is None:
        return Change("delete", key, revision, None, prev)
    entry = Entry(key, bytes(row[2]), row[3], revision, row[4], row[5])
    return Change("put", key, revision, entry, prev)


class SqliteEngine:
    """An `Engine` over one SQLite file (see the module docstring)."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        _check_writable(path)
        self._lock = _lock(path)
        try:
            with translated(path):
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL").fetchone()
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._check_integrity()
                self._db.executescript(_SCHEMA)
                self._init_meta()
        except BaseException:
            self._lock.close()
            raise

    def _check_integrity(self) -> None:
        """Refuse a damaged file at open, rather than failing on some later read."""
        problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise errors.StoreCorrupt(f"store file {self.path} is damaged: {problem}")

    def _init_meta(self) -> None:
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if not meta:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema", SCHEMA_VERSION),
                    ("revision", FIRST_REVISION),
                    ("compacted", FIRST_REVISION),
                ],
            )
            meta = {
                "schema": SCHEMA_VERSION,
                "revision": FIRST_REVISION,
                "compacted": FIRST_REVISION,
            }
        if meta.get("schema") != SCHEMA_VERSION:
            raise errors.StoreCorrupt(
                f"store file {self.path} has schema {meta.get('schema')!r}, expected "
                f"{SCHEMA_VERSION}: it was written by another program or version"
            )
        self._revision = int(meta["revision"])
        self._compacted = int(meta["compacted"])

    def get(self, key: str) -> Entry | None:
        with translated(self.path):
            row = self._db.execute(
                f"SELECT {_KV_COLUMNS} FROM kv WHERE key = ?", (key.encode(),)
            ).fetchone()
        return _entry(row) if row else None

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        found: dict[str, Entry] = {}
        wanted = list(dict.fromkeys(keys))
        with translated(self.path):
            for start in range(0, len(wanted), GET_MANY_CHUNK):
                chunk = [key.encode() for key in wanted[start : start + GET_MANY_CHUNK]]
                marks = ", ".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT {_KV_COLUMNS} FROM kv WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update((entry.key, entry) for entry in map(_entry, rows))
        return [found.get(key) for key in keys]

    def range(self, prefix: str, after: str | None, limit: int) -> tuple[list[Entry], bool]:
        low = prefix.encode()
        sql = f"SELECT {_KV_COLUMNS} FROM kv WHERE key >= ?"
        params: list[Any] = [low]
        if after is not None and after.encode() >= low:
            sql = f"SELECT {_KV_COLUMNS} FROM kv WHERE key > ?"
            params = [after.encode()]
        end = prefix_end(low)
        if end is not None:
            sql += " AND key < ?"
            params.append(end)
        sql += " ORDER BY key"
        if limit:
            sql += " LIMIT ?"
            params.append(limit + 1)
        with translated(self.path):
            rows = self._db.execute(sql, params).fetchall()
        more = bool(limit) and len(rows) > limit
        if more:
            rows = rows[:limit]
        return [_entry(r) for r in rows], more

    def history(self, prefix: str, first: int, last: int) -> list[Change]:
        low = prefix.encode()
        sql = f"SELECT {_LOG_COLUMNS} FROM log WHERE revision BETWEEN ? AND ? AND key >= ?"
        params: list[Any] = [first, last, low]
        end = prefix_end(low)
        if end is not None:
            sql += " AND key < ?"
            params.append(end)
        with translated(self.path):
            rows = self._db.execute(sql + " ORDER BY revision, sub", params).fetchall()
        return [_change(r) for r in rows]

    def apply(self, revision: int, changes: Sequence[Change]) -> None:
        with translated(self.path), self._transaction():
            for sub, change in enumerate(changes):
                self._apply_one(revision, sub, change)
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
        self._revision = revision

    def _apply_one(self, revision: int, sub: int, change: Change) -> None:
        key, entry, prev = change.key.encode(), change.entry, change.prev
        if entry is None:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self._db.execute(
                f"INSERT OR REPLACE INTO kv ({_KV_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (key, entry.value, entry.create_revision, revision, entry.version, entry.lease),
            )
        self._db.execute(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                revision,
                sub,
                key,
                entry.value if entry else None,
                entry.create_revision if entry else None,
                entry.version if entry else None,
                entry.lease if entry else None,
                prev.value if prev else None,
                prev.create_revision if prev else None,
                prev.mod_revision if prev else None,
                prev.version if prev else None,
                prev.lease if prev else None,
            ),
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT (disk full, I/O) leaves it open
                self._db.execute("ROLLBACK")
            raise

    def revision(self) -> int:
        return self._revision

    def compacted(self) -> int:
        return self._compacted

    def compact(self, revision: int) -> None:
        with translated(self.path), self._transaction():
            self._db.execute("DELETE FROM log WHERE revision < ?", (revision,))
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))
        self._compacted = revision

    def leases(self) -> dict[int, int]:
        with translated(self.path):
            return dict(self._db.execute("SELECT id, ttl FROM leases").fetchall())

    def leased_keys(self) -> dict[int, set[str]]:
        keys: dict[int, set[str]] = {}
        with translated(self.path):
            for lease, key in self._db.execute("SELECT lease, key FROM kv WHERE lease != 0"):
                keys.setdefault(lease, set()).add(bytes(key).decode())
        return keys

    def add_lease(self, lease_id: int, ttl_s: int) -> None:
        with translated(self.path):
            self._db.execute("INSERT INTO leases VALUES (?, ?)", (lease_id, ttl_s))

    def remove_lease(self, lease_id: int) -> None:
        with translated(self.path):
            self._db.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._lock.close()
