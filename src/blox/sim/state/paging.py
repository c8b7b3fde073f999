"""Ordered indexes of entity sequence numbers and the nextToken that pages through them.

Every task and container instance gets a sequence number when it is created. An index keeps
the numbers of its members sorted, so a page is a bisect plus at most `limit` live entries
(O(page)), and `nextToken` is the last number returned, base64-wrapped so it is opaque.
Removed members are deleted lazily and the list is compacted once the dead outnumber the live.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable

from blox.sim import errors

COMPACT_MIN_DEAD = 256


class SeqIndex:
    """A sorted set of sequence numbers with lazy removal and O(page) reads."""

    __slots__ = ("_dead", "_live", "_seqs")

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._live: set[int] = set()
        self._dead = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, seq: int) -> bool:
        return seq in self._live

    def add(self, seq: int) -> None:
        """Insert `seq`; appending is the common case because numbers only grow."""
        if seq in self._live:
            return
        self._live.add(seq)
        if not self._seqs or seq > self._seqs[-1]:
            self._seqs.append(seq)
        else:
            position = bisect.bisect_left(self._seqs, seq)
            if position < len(self._seqs) and self._seqs[position] == seq:
                self._dead -= 1  # a dead entry comes back to life
            else:
                self._seqs.insert(position, seq)

    def discard(self, seq: int) -> None:
        """Remove `seq` if present; compaction is amortised over removals."""
        if seq not in self._live:
            return
        self._live.remove(seq)
        self._dead += 1
        if self._dead > COMPACT_MIN_DEAD and self._dead > len(self._live):
            self._seqs = [s for s in self._seqs if s in self._live]
            self._dead = 0

    def page(
        self, *, after: int, limit: int, accept: Callable[[int], bool] | None = None
    ) -> tuple[list[int], bool]:
        """Up to `limit` live numbers greater than `after` that `accept`; and whether to go on.

        The second value is True when the page is full and the index holds later entries; like
        ECS, the next page may then turn out empty.
        """
        found: list[int] = []
        position = bisect.bisect_right(self._seqs, after)
        seqs, live = self._seqs, self._live
        while position < len(seqs) and len(found) < limit:
            seq = seqs[position]
            position += 1
            if seq in live and (accept is None or accept(seq)):
                found.append(seq)
        return found, len(found) == limit and position < len(seqs)


def encode_token(seq: int) -> str:
    """The opaque nextToken that resumes after `seq`."""
    return base64.urlsafe_b64encode(f"blox-sim:{seq}".encode()).decode()


def decode_token(token: str | None) -> int:
    """The sequence number a nextToken resumes after; 0 for the first page."""
    if token is None:
        return 0
    try:
        prefix, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "blox-sim":
            raise ValueError(prefix)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.InvalidParameter("Invalid nextToken.") from exc


def page_size(max_results: int | None, *, default: int, limit: int = 100) -> int:
    """Validate maxResults against ECS's 1..100 range."""
    if max_results is None:
        return default
    if not 1 <= max_results <= limit:
        raise errors.InvalidParameter(f"maxResults must be between 1 and {limit}.")
    return max_results
