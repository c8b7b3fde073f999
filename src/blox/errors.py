"""The one error tree of blox-ecs; every package's errors subclass these categories.

The HTTP edges map a category to a status; retrying code reads `Temporary` / `Permanent`,
never a message string.

    BloxError
     ├── NotFound        the thing asked for does not exist            (404)
     ├── Conflict        a compare or precondition failed               (409 / 400 per contract)
     ├── Invalid         the input is malformed or out of range         (400)
     ├── Unavailable     a dependency cannot be reached just now        (503)
     ├── Compacted       the history asked for is gone                  (400 per contract)
     └── Unauthorized    credentials missing or refused                 (401 / 403)

    Temporary / Permanent are mixins saying whether trying again may help.
"""

from __future__ import annotations


class BloxError(Exception):
    """Root of every error blox-ecs raises on purpose."""


class Temporary(BloxError):
    """Trying again later may succeed; `delay_s` suggests how much later (None: caller decides)."""

    delay_s: float | None = None


class Permanent(BloxError):
    """Trying again with the same input will fail the same way."""


class NotFound(BloxError):
    """The entity asked for does not exist."""


class Conflict(BloxError):
    """A compare-and-swap or other precondition did not hold."""


class Invalid(BloxError):
    """The input (request, URL, flag, message, file) is malformed or out of range."""


class Unavailable(BloxError):
    """A dependency (store, ECS, queue) cannot be reached or refused for now."""


class Compacted(BloxError):
    """A version or revision asked for has been compacted away."""


class Unauthorized(BloxError):
    """Credentials were missing or refused."""
