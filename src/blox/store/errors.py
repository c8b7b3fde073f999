"""Errors of the store; each backend translates its driver's exceptions into these, once.

StoreError
 ├── CompareFailed(Conflict, Temporary)   a compare on mod_revision did not hold
 ├── KeyNotFound(NotFound)                a key that must exist does not
 ├── Compacted(blox Compacted)            a watch asked for history that was compacted
 ├── LeaseNotFound(NotFound)              the lease expired or was revoked
 ├── InvalidStoreUrl(Invalid, Permanent)  open_store got a URL it cannot use
 ├── InvalidOperation(Invalid, Permanent) a call the store refuses (e.g. one key twice in a txn)
 ├── StoreLocked(Unavailable, Permanent)  another process holds the SQLite file
 ├── StoreCorrupt(Invalid, Permanent)     the SQLite file is not a database, or is damaged
 ├── StoreReadOnly(Unavailable, Permanent) the SQLite file or its folder cannot be written
 └── StoreUnavailable(Unavailable, Temporary) the server cannot be reached right now
"""

from __future__ import annotations

from blox import errors


class StoreError(errors.BloxError):
    """Root of the store's errors."""


class CompareFailed(StoreError, errors.Conflict, errors.Temporary):
    """A compare on a key's mod_revision did not hold; `keys` names the ones that failed."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(f"compare failed on {', '.join(keys) or 'the transaction'}")


class KeyNotFound(StoreError, errors.NotFound):
    """A key that the operation needs does not exist."""


class Compacted(StoreError, errors.Compacted):
    """The revision asked for is older than the oldest one kept; list again and watch from there."""

    def __init__(self, requested: int, compacted: int) -> None:
        self.requested = requested
        self.compacted = compacted
        super().__init__(
            f"revision {requested} has been compacted; the oldest revision kept is {compacted}"
        )


class LeaseNotFound(StoreError, errors.NotFound):
    """The lease has expired or was revoked."""


class InvalidStoreUrl(StoreError, errors.Invalid, errors.Permanent):
    """The store URL has an unknown scheme or a malformed host, port or path."""


class InvalidOperation(StoreError, errors.Invalid, errors.Permanent):
    """The store refused a malformed call (a key twice in one transaction, a future revision)."""


class StoreLocked(StoreError, errors.Unavailable, errors.Permanent):
    """Another process holds the SQLite store open for writing."""


class StoreCorrupt(StoreError, errors.Invalid, errors.Permanent):
    """The SQLite file is not a database of ours, or it is damaged."""


class StoreReadOnly(StoreError, errors.Unavailable, errors.Permanent):
    """The SQLite file or its folder is not writable."""


class StoreUnavailable(StoreError, errors.Unavailable, errors.Temporary):
    """The store's server cannot be reached, or did not answer in time."""
