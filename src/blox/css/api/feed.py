"""The shared half of the change streams: one store watch, each change rendered once into a ring.

Callers: `hub.Hub` runs one `Feed` per kind while streams of that kind are open, and its
streams read the feed's ring; a stream's own replay numbers its changes with `Numbering`.

Assumptions / Invariants:
- A change's *position* is (revision, its index among the prefix's changes at that revision),
  packed in one int (`position`). Two watches of one prefix see the same changes in the same
  order (the store contract), so a position names the same change to the feed and a replay.
- The feed watches from revision `first` (the live edge when it starts) and appends every
  rendered line to `lines`, in position order, each line with a sequence number that never
  changes (`base` + its index). It keeps at least `ring_lines` lines; dropping the oldest
  moves `floor`: from `floor` on, `lines` and what the feed appends later hold every line.
- The feed never waits for a reader. Readers are woken through `wake`, at most once per
  `flush_s` while changes keep coming (each wake costs every stream one send, so a busy feed
  makes streams send one chunk per interval, not one per change), and at once at the end.
- `ended` is set once, when the watch fails, ends or is stopped; the lines stay readable.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from blox.clock import Clock
from blox.store import Change, Store

__all__ = [
    "CHUNK_BYTES",
    "FLUSH_S",
    "RING_LINES",
    "Feed",
    "Line",
    "Numbering",
    "Render",
    "Rendered",
    "close_watch",
    "position",
    "revision_of",
]

logger = logging.getLogger(__name__)

RING_LINES = 4096  # about 4 s at 1,000 changes/s before a slow stream falls back to a replay
CHUNK_BYTES = 256 * 1024  # the most one write to one client carries
FLUSH_S = 0.01  # a busy feed wakes its streams at most this often
_INDEX_BITS = 32  # a transaction may change up to 2**32 keys of one prefix

Rendered = tuple[bytes, bool]  # a line (newline included), and whether it reports a deletion
Render = Callable[[Change], Rendered | None]  # None: the change is sent to no stream


def position(revision: int, index: int) -> int:
    """The position of the `index`-th change (from 0) under a prefix at `revision`."""
    return revision << _INDEX_BITS | index


def revision_of(at: int) -> int:
    """The revision of position `at`."""
    return at >> _INDEX_BITS


class Numbering:
    """Positions of the changes of one watch, in the order it yields them."""

    __slots__ = ("_index", "_revision")

    def __init__(self) -> None:
        self._revision, self._index = -1, 0

    def of(self, change: Change) -> int:
        """The position of `change`, the watch's next change."""
        if change.revision == self._revision:
            self._index += 1
        else:
            self._revision, self._index = change.revision, 0
        return position(self._revision, self._index)


@dataclass(frozen=True, slots=True)
class Line:
    """A rendered change: its position, its bytes, and whether it reports a deletion."""

    position: int
    data: bytes
    deleted: bool


class Feed:
    """One watch of `prefix` from the live edge, each change rendered once into the ring."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        render: Render,
        *,
        clock: Clock,
        ring_lines: int = RING_LINES,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.lines: list[Line] = []
        self.base = 0  # the sequence number of lines[0]
        self.floor: int | None = None  # None until the feed knows its first revision
        self.ended = False
        self.wake = asyncio.Event()  # set, then replaced, when readers should look again
        self._store, self._prefix, self._render = store, prefix, render
        self._clock, self._ring_lines, self._flush_s = clock, ring_lines, flush_s
        self._appended = asyncio.Event()
        self._chunks: dict[bool, tuple[int, int, bytes, int, int]] = {}  # by `deletes`
        self._watching: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None

    @property
    def end(self) -> int:
        """The sequence number the next line will get."""
        return self.base + len(self.lines)

    def start(self, first: int | None) -> None:
        """Watch from revision `first` (None: the store's revision + 1, read first)."""
        if first is not None:
            self.floor = position(first, 0)
        loop, name = asyncio.get_running_loop(), f"blox.css.feed {self._prefix}"
        self._watching = loop.create_task(self._watch(first), name=name)
        self._flushing = loop.create_task(self._flush(), name=f"{name} wake")

    def stop(self) -> None:
        """Cancel the watch (its task closes it) and end the feed; the lines stay readable."""
        if self._watching is not None:
            self._watching.cancel()
        self._end()

    def seek(self, at: int) -> int:
        """The sequence number of the first line at or after position `at`."""
        return self.base + bisect.bisect_left(self.lines, at, key=_line_position)

    def chunk(self, at: int, deletes: bool) -> tuple[bytes, int, int]:
        """From sequence number `at` (< `end`) on: the bytes of the lines (deletions only with
        `deletes`; CHUNK_BYTES or a little more), the sequence number after them, and the
        position of the last line looked at. Streams at the same place share the bytes."""
        cached = self._chunks.get(deletes)
        if cached is not None and cached[:2] == (at, self.end):
            return cached[2], cached[3], cached[4]
        parts: list[bytes] = []
        size, index, lines = 0, at - self.base, self.lines
        while index < len(lines) and size < CHUNK_BYTES:
            line = lines[index]
            index += 1
            if deletes or not line.deleted:
                parts.append(line.data)
                size += len(line.data)
        data, after, last = b"".join(parts), self.base + index, lines[index - 1].position
        self._chunks[deletes] = (at, self.end, data, after, last)
        return data, after, last

    async def _watch(self, first: int | None) -> None:
        changes: AsyncIterator[Change] | None = None
        try:
            if first is None:
                first = await self._store.revision() + 1
                self.floor = position(first, 0)
            changes = self._store.watch(self._prefix, start_revision=first)
            numbering = Numbering()
            async for change in changes:
                at = numbering.of(change)
                rendered = self._render(change)
                if rendered is not None:
                    self._append(Line(at, *rendered))
            logger.warning("the stream feed of %s ended with its store watch", self._prefix)
        except Exception:
            logger.warning("the stream feed of %s failed", self._prefix, exc_info=True)
        finally:
            self._end()
            await close_watch(changes)

    async def _flush(self) -> None:
        while True:
            await self._appended.wait()
            self._appended.clear()
            self._wake()
            await self._clock.sleep(self._flush_s)

    def _append(self, line: Line) -> None:
        self.lines.append(line)
        ring = self._ring_lines
        if len(self.lines) >= 2 * ring:  # drop the oldest half at once: amortised O(1)
            self.floor = self.lines[ring - 1].position + 1
            del self.lines[:ring]
            self.base += ring
        self._appended.set()

    def _end(self) -> None:
        self.ended = True
        if self._flushing is not None:
            self._flushing.cancel()
        self._wake()

    def _wake(self) -> None:
        self.wake.set()
        self.wake = asyncio.Event()


def _line_position(line: Line) -> int:
    return line.position


async def close_watch(changes: AsyncIterator[Change] | None) -> None:
    """Close a store watch (an async generator) if it can be closed."""
    close: Callable[[], Awaitable[None]] | None = getattr(changes, "aclose", None)
    if close is not None:
        await close()
