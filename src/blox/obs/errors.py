"""Errors of the observability box: only its settings can be wrong.

    ObsError
     └── LogSettingInvalid(Invalid)   `--log-format` / `--log-level` names no format or level

Checks that fail are not errors here: `health.Readiness` reports them as values.
"""

from __future__ import annotations

from blox import errors

__all__ = ["LogSettingInvalid", "ObsError"]


class ObsError(errors.BloxError):
    """Root of the observability box's errors."""


class LogSettingInvalid(ObsError, errors.Invalid):
    """Raised by `logs.setup_logging` for an unknown log format or level."""
