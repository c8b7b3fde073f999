"""Errors of the cluster state service.

CssError
 └── ApplyContended(Conflict, Temporary)   every compare-and-swap attempt lost to a racing writer

Parse failures are `blox.model.errors.EventInvalid` (Permanent: dead-letter the message);
store failures stay `blox.store.errors.StoreError` (do not ack; the queue redelivers).
"""

from __future__ import annotations

from blox import errors


class CssError(errors.BloxError):
    """Root of the cluster state service's errors."""


class ApplyContended(CssError, errors.Conflict, errors.Temporary):
    """Raised by the processor when every CAS attempt on one record failed; retry later."""

    delay_s = 1.0
