"""Fan-out for the change streams: one shared store watch per kind, each change rendered once.

Callers: `routes_streams` serves each `GET /v1/stream/...` with `Hub.stream`; `create_app` keeps
one `Hub` per kind for its app (`routes_streams.hubs`) and closes them when the app stops.

Assumptions / Invariants:
- A stream keeps `next`, a position (`feed.position`): every change before it was sent, or was
  not for this stream. It sends only changes at or after `next` and moves `next` past each, so
  a switch between the shared feed and a replay, either way and at any point, loses and
  repeats nothing.
- A stream reads the feed's ring while the feed's floor is at or before its `next`. Otherwise
  (it asked for an older version, or the feed started after it) it replays from the store with
  a watch of its own from `next`, and joins the ring as soon as the floor is at or before its
  `next`; a replay that is ahead of the feed skips what it already sent.
- Slow clients: the feed never waits for a stream. A stream whose client has not taken its
  lines when the ring drops them (more than `ring_lines` behind) goes back to replaying from
  the store, from `next`, and rejoins the ring once caught up: its client sees one stream
  without a gap, and the other streams are not slowed.
- The feed starts with the kind's first stream and stops with its last (or at `close`). If
  its watch fails, its streams drain the ring and replay from the store, where the same error
  (e.g. Compacted) ends them as before; the next stream to open starts a new feed.
- A stream that waited `heartbeat_s` with nothing to send sends `HEARTBEAT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from blox.clock import Clock
from blox.css.api.feed import (
    CHUNK_BYTES,
    FLUSH_S,
    RING_LINES,
    Feed,
    Numbering,
    Render,
    close_watch,
    position,
    revision_of,
)
from blox.store import Change, Store, errors

__all__ = ["HEARTBEAT", "REPLAY_AHEAD", "Hub", "HubCounters"]

logger = logging.getLogger(__name__)

HEARTBEAT = b"\n"
REPLAY_AHEAD = 256  # changes a replay's watch may read ahead of its client

_Item = Change | BaseException | None  # from a replay's watch: a change, its failure, its end


@dataclass
class HubCounters:
    """What a hub did, for tests and metrics."""

    streams: int = 0  # streams opened
    replays: int = 0  # times a stream read from a watch of its own
    overflows: int = 0  # times a stream fell out of the ring (a slow client)
    feeds: int = 0  # shared watches started


@dataclass
class _Cursor:
    next: int  # see the module docstring
    ended: bool = False


class Hub:
    """The streams of one store prefix: a shared feed, and a replay for each stream behind it.

    `render` turns a change into its line (or None: sent to nobody); `ring_lines` bounds how far
    behind the live edge a stream may read from the shared ring; `flush_s` is the least time
    between two wake-ups of the streams, on `clock` (see `feed`).
    """

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
        if ring_lines < 1 or flush_s < 0:
            raise ValueError(f"need ring_lines >= 1 and flush_s >= 0, not {ring_lines}, {flush_s}")
        self.store, self.prefix, self.render = store, prefix, render
        self.counters = HubCounters()
        self._clock, self._ring_lines, self._flush_s = clock, ring_lines, flush_s
        self._feed: Feed | None = None
        self._streams = 0
        self._closed = False

    async def stream(
        self, *, first: int, current: int, deletes: bool, heartbeat_s: float
    ) -> AsyncGenerator[bytes, None]:
        """Every line from revision `first` on, in order, in chunks; then live, with heartbeats.

        current: the store revision the caller read (a feed started here starts after it).
        deletes: whether lines that report deletions are sent.
        """
        self._streams += 1
        self.counters.streams += 1
        cursor = _Cursor(position(first, 0))
        try:
            self._open_feed(current + 1)
            while not cursor.ended:
                feed = self._covering(cursor.next)
                if feed is not None:
                    source = self._from_ring(feed, cursor, deletes, heartbeat_s)
                else:
                    self.counters.replays += 1
                    source = self._from_store(cursor, deletes, heartbeat_s)
                async with contextlib.aclosing(source):
                    async for chunk in source:
                        yield chunk
        finally:
            self._streams -= 1
            if self._streams == 0 and self._feed is not None:
                self._feed.stop()
                self._feed = None

    def close(self) -> None:
        """Stop the feed; open streams go on from the store, and no feed starts again."""
        self._closed = True
        if self._feed is not None:
            self._feed.stop()
            self._feed = None

    def _open_feed(self, first: int) -> None:
        if self._feed is not None and self._feed.ended:
            self._feed = None
        if self._feed is None and not self._closed:
            self._feed = Feed(
                self.store,
                self.prefix,
                self.render,
                clock=self._clock,
                ring_lines=self._ring_lines,
                flush_s=self._flush_s,
            )
            self._feed.start(first)
            self.counters.feeds += 1

    def _covering(self, at: int) -> Feed | None:
        """The feed, if its ring has (or will have) every line from position `at` on."""
        feed = self._feed
        if feed is not None and feed.ended:  # it failed: the next stream to open starts another
            self._feed = feed = None
        if feed is None or feed.floor is None or feed.floor > at:
            return None
        return feed

    async def _from_ring(
        self, feed: Feed, cursor: _Cursor, deletes: bool, heartbeat_s: float
    ) -> AsyncGenerator[bytes, None]:
        """Lines from the ring, until the stream falls out of it or the feed ends."""
        at = feed.seek(cursor.next)
        while True:
            if at < feed.base:
                self.counters.overflows += 1
                logger.debug("a stream of %s fell behind the shared ring", self.prefix)
                return
            if at < feed.end:
                index, lines = at - feed.base, feed.lines
                while index < len(lines) and lines[index].position < cursor.next:
                    index += 1  # joined ahead of the feed: the replay sent these
                at = feed.base + index
                if at < feed.end:
                    data, at, last = feed.chunk(at, deletes)
                    cursor.next = last + 1
                    if data:
                        yield data
                continue
            if feed.ended:
                return
            wake = feed.wake
            try:
                async with asyncio.timeout(heartbeat_s):
                    await wake.wait()
            except TimeoutError:
                yield HEARTBEAT

    async def _from_store(
        self, cursor: _Cursor, deletes: bool, heartbeat_s: float
    ) -> AsyncGenerator[bytes, None]:
        """Lines from a watch of the stream's own, until the ring covers `cursor.next`."""
        items: asyncio.Queue[_Item] = asyncio.Queue(REPLAY_AHEAD)
        pump = asyncio.get_running_loop().create_task(
            self._pump(revision_of(cursor.next), items), name=f"blox.css.replay {self.prefix}"
        )
        numbering = Numbering()
        try:
            while not cursor.ended:
                try:
                    async with asyncio.timeout(heartbeat_s):
                        item = await items.get()
                except TimeoutError:
                    if self._covering(cursor.next) is not None:
                        return
                    yield HEARTBEAT
                    continue
                parts: list[bytes] = []
                size = 0
                while isinstance(item, Change):
                    at = numbering.of(item)
                    if at >= cursor.next:
                        cursor.next = at + 1
                        rendered = self.render(item)
                        if rendered is not None and (deletes or not rendered[1]):
                            parts.append(rendered[0])
                            size += len(rendered[0])
                    if size >= CHUNK_BYTES or items.empty():
                        break
                    item = items.get_nowait()
                if parts:
                    yield b"".join(parts)
                if not isinstance(item, Change):
                    self._end(cursor, item)
                elif self._covering(cursor.next) is not None:
                    return
        finally:
            pump.cancel()

    def _end(self, cursor: _Cursor, item: BaseException | None) -> None:
        """A replay's watch ended (None) or failed: end the stream, or raise what is not ours."""
        cursor.ended = True
        if isinstance(item, errors.Compacted):
            logger.warning(
                "ending a stream of %s: its history was compacted (%s)", self.prefix, item
            )
        elif item is not None:
            raise item

    async def _pump(self, start_revision: int, into: asyncio.Queue[_Item]) -> None:
        """A replay's watch, read ahead into `into`; its end (None) or failure last."""
        changes = self.store.watch(self.prefix, start_revision=start_revision)
        try:
            async for change in changes:
                await into.put(change)
            await into.put(None)
        except Exception as exc:  # handed to the stream, which decides
            await into.put(exc)
        finally:
            await close_watch(changes)
