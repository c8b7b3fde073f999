"""Where a list or a stream of the CSS has got to: pure state, shared by the blocking and the
async clients (`css`, `watch`), which do the I/O and feed these what the server sent.

`PageCursor` walks `GET /v1/tasks|instances` pages by `maxResults` and `nextToken`, and falls
back to one unpaged request when the first page is refused as v0.3 refuses an unknown parameter.
`StreamCursor` turns the lines of `GET /v1/stream/...` into `(entityVersion, item)` and knows
the `entityVersion` to reconnect with.

Assumptions / Invariants (StreamCursor):
- The server sends each change once, in increasing `entityVersion`, one record per version (the
  processor writes one record per transaction); an `entityVersion=N` stream starts at N.
- So after the last version seen, V, reconnecting with `entityVersion=V+1` loses and repeats
  nothing; an item at or below V is never handed out again (logged and dropped).
- Before any item, a stream opened live only has no version to resume from unless the server
  names its start in `X-Blox-Entity-Version`; without it a reconnect is live only again, and
  changes made while disconnected are missed (logged). Give `from_version` to be exact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar, cast

from pydantic import ValidationError

from blox.client.errors import HttpInvalid, ResponseInvalid
from blox.contract import css, texts

__all__ = ["START_HEADER", "PageCursor", "StreamCursor", "entity_version"]

logger = logging.getLogger(__name__)

START_HEADER = "x-blox-entity-version"  # the version a stream starts at (blox-ecs, optional)


M = TypeVar("M", bound=css.TaskPublic | css.ContainerInstancePublic)


def entity_version(item: css.TaskPublic | css.ContainerInstancePublic) -> int:
    """`metadata.entityVersion` of a task or instance, as an int (the store revision)."""
    text = item.metadata.entity_version
    if not (text.isascii() and text.isdigit()):
        raise ResponseInvalid(f"entityVersion {text!r} is not a non-negative integer")
    return int(text)


@dataclass(frozen=True, slots=True)
class PageCursor:
    """The next list request: `filters`, `page_size` items a page (None: unpaged, v0.3), and the
    `token` of the page to ask for (None: the first)."""

    filters: Mapping[str, str]
    page_size: int | None
    token: str | None = None

    def params(self) -> dict[str, str]:
        """The query parameters of the request to send."""
        params = dict(self.filters)
        if self.page_size is not None:
            params["maxResults"] = str(self.page_size)
        if self.token is not None:
            params["nextToken"] = self.token
        return params

    def following(self, next_token: str | None) -> PageCursor | None:
        """The cursor of the page after the one that carried `next_token` (None: that was all)."""
        if self.page_size is None or not next_token:
            return None
        return replace(self, token=next_token)

    def unpaged(self, refused: HttpInvalid) -> PageCursor | None:
        """One unpaged request instead, when `refused` is v0.3 refusing `maxResults` on the first
        page; None when the refusal is about something else (then raise it)."""
        is_first = self.page_size is not None and self.token is None
        if is_first and refused.text == texts.FILTERS_UNSUPPORTED:
            return PageCursor(self.filters, page_size=None)
        return None


@dataclass(slots=True)
class StreamCursor(Generic[M]):
    """Position in one logical stream of `model` items, across reconnects.

    `next_version`: where a new stream starts (None: live only). `last_version`: the version of
    the last item handed out. `heartbeats`: blank lines seen (and skipped) so far.

    Several items share one entityVersion when one store transaction changed several records
    (the CSS applies an SQS batch in one). So a reconnect asks for `last_version` again and
    skips the items of it already handed out, rather than asking for `last_version + 1`.
    """

    model: type[M]
    next_version: int | None = None
    last_version: int | None = None
    heartbeats: int = 0
    _blind: bool = field(default=False, init=False)
    _at_last: int = field(default=0, init=False)  # items handed out at `last_version`
    _skip: int = field(default=0, init=False)  # of those, still to skip on this connection

    def __post_init__(self) -> None:
        if self.next_version is not None and self.next_version < 1:
            raise ValueError("from_version must be at least 1 (None: live only)")

    def params(self) -> dict[str, str]:
        """The query of the next connection: `entityVersion` once one is known."""
        if self.last_version is not None:
            return {"entityVersion": str(self.last_version)}
        if self.next_version is None:
            return {}
        return {"entityVersion": str(self.next_version)}

    def started(self, headers: Mapping[str, str]) -> None:
        """A connection opened; a live-only stream learns its start from the server if it says."""
        self._skip = self._at_last  # the server sends the items of `last_version` again
        if self.next_version is not None:
            return
        start = headers.get(START_HEADER, "")
        if start.isascii() and start.isdigit() and int(start) > 0:
            self.next_version = int(start)
        elif self._blind:
            logger.warning(
                "a live-only stream reconnected before its first change: changes "
                "made while it was disconnected are missed"
            )
        self._blind = True

    def accept(self, line: str) -> tuple[int, M] | None:
        """The item `line` carries, or None for a heartbeat (blank) or an item already seen."""
        if not line.strip():
            self.heartbeats += 1
            return None
        try:
            item = cast(M, self.model.model_validate_json(line))  # mypy: Self of a union bound
        except ValidationError as exc:
            raise ResponseInvalid(f"a stream line is not a v0.3 {self.model.__name__}") from exc
        version = entity_version(item)
        last = self.last_version
        if last is not None and (version < last or (version == last and self._skip > 0)):
            if version == last:
                self._skip -= 1
            else:
                logger.warning(
                    "dropping a repeated stream item at version %d (seen %d)", version, last
                )
            return None
        self._at_last = self._at_last + 1 if version == last else 1
        self.last_version, self.next_version = version, version + 1
        return version, item
