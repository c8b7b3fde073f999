"""Errors of the observability box: only its settings can be wrong.

    ObsError
     ├── LogSettingInvalid(Invalid)   `--log-format` / `--log-level` names no format or level
     ├── FlagInvalid(Invalid)         a `--bind`, a duration or a store flag is malformed
     └── BindFailed(Unavailable)      the listen address cannot be bound

Checks that fail are not errors here: `health.Readiness` reports them as values.
"""

from __future__ import annotations

from blox import errors

__all__ = ["BindFailed", "FlagInvalid", "LogSettingInvalid", "ObsError"]


class ObsError(errors.BloxError):
    """Root of the observability box's errors."""


class LogSettingInvalid(ObsError, errors.Invalid):
    """Raised by `logs.setup_logging` for an unknown log format or level."""


class FlagInvalid(ObsError, errors.Invalid):
    """Raised by `listen` for a malformed `--bind`, duration or store flag (one line)."""


class BindFailed(ObsError, errors.Unavailable):
    """The listen address cannot be bound (in use, not local, or not resolvable)."""
