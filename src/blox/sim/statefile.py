"""The simulator's state file (`blox sim up --state-file`): read at start, written atomically.

`load` reads the file a previous run wrote and rebuilds its state through the pure
`state/snapshot.py`; a missing file means "start afresh", anything that is not a valid snapshot
raises `StateFileInvalid` naming the file and the fault, and the file is never touched.
`write` replaces the file atomically (temp file in the same folder, fsync, rename, fsync of the
folder), so a crash leaves the old snapshot or the new one, never half of one. `Saver` writes
every `every_s` of clock time while serving; `sim/service.py` (the one caller) also saves once
at start and once after the event pump flushed at a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from blox.clock import Clock
from blox.errors import Invalid, Unavailable
from blox.sim.state.lifecycle import LifecycleTiming
from blox.sim.state.snapshot import Restored, SnapshotInvalid
from blox.sim.state.snapshot import load as load_snapshot

__all__ = ["Saver", "StateFileInvalid", "StateFileUnwritable", "load", "read", "write"]

logger = logging.getLogger(__name__)

LEAVE_IT = "the file is left as it is: fix it, or move it away to start afresh"


class StateFileInvalid(Invalid):
    """The state file exists but cannot be read or is not a simulator snapshot (left untouched)."""


class StateFileUnwritable(Unavailable):
    """The state file (or its temp file in the same folder) cannot be written."""


def read(path: Path) -> Any | None:
    """The JSON document in `path`; None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileInvalid(f"state file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        return json.loads(data, parse_constant=_no_constant)
    except ValueError as exc:
        raise StateFileInvalid(f"state file {path} is not JSON ({exc}); {LEAVE_IT}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load(path: Path, *, clock: Clock, timing: LifecycleTiming) -> Restored | None:
    """The state saved in `path` on `clock`; None when there is no such file."""
    document = read(path)
    if document is None:
        return None
    try:
        return load_snapshot(document, clock=clock, timing=timing)
    except SnapshotInvalid as exc:
        raise StateFileInvalid(
            f"state file {path} is not a valid simulator snapshot: {exc}; {LEAVE_IT}"
        ) from exc


def write(path: Path, document: Mapping[str, Any]) -> None:
    """Replace `path` with `document` as JSON, atomically and durably."""
    data = json.dumps(document, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    folder = path.parent
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise StateFileUnwritable(
            f"cannot write state file {path}: {exc.strerror or exc} (in {folder})"
        ) from exc
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StateFileUnwritable(f"cannot write state file {path}: {exc.strerror or exc}") from exc
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk; some filesystems refuse
    # to fsync a directory, and then the rename is as durable as they make it.
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


class Saver:
    """Saves `capture()` to `path` on demand and every `every_s` of clock time in between.

    `capture` runs on the event loop (the one thread that touches the state) and must return
    a document that nothing mutates afterwards; the JSON encoding and the disk writes run in
    a worker thread. Saves never overlap, and `stop` lets a save in progress finish, so an
    older snapshot can never replace a newer one.
    """

    def __init__(
        self,
        path: Path,
        *,
        capture: Callable[[], Mapping[str, Any]],
        clock: Clock,
        every_s: float,
    ) -> None:
        self.path = path
        self.saves = 0
        self._capture = capture
        self._clock = clock
        self._every_s = every_s
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def save(self) -> None:
        """Write the state as it is now; StateFileUnwritable when the file cannot be written."""
        async with self._lock:
            document = self._capture()
            await asyncio.to_thread(write, self.path, document)
            self.saves += 1

    def start(self) -> None:
        """Begin the periodic saves on the running loop."""
        self._task = asyncio.create_task(self._run(), name="blox.sim.saver")

    async def stop(self) -> None:
        """End the periodic saves, after the one in progress (if any) is written."""
        self._closing.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._closing.is_set():
            sleeping = asyncio.ensure_future(self._clock.sleep(self._every_s))
            closing = asyncio.ensure_future(self._closing.wait())
            await asyncio.wait({sleeping, closing}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (sleeping, closing):
                waiter.cancel()
            await asyncio.wait({sleeping, closing})
            if self._closing.is_set():
                return
            try:
                await self.save()
            except StateFileUnwritable as exc:
                # A full disk must not stop the simulator; the next save tries again.
                logger.warning("%s (trying again in %g s)", exc, self._every_s)
