"""Errors of the domain model: input that does not describe a valid ECS value.

ModelError
 ├── ArnInvalid(Invalid)                    a string is not an ECS ARN we understand
 ├── EventInvalid(Invalid, Permanent)       an SQS body is not a usable ECS state-change event
 ├── RecordInvalid(Invalid, Permanent)      stored bytes are not a record this code wrote
 └── DaemonInvalid(Invalid, Permanent)      an environment, revision or rollout setting is invalid
"""

from __future__ import annotations

from blox import errors


class ModelError(errors.BloxError):
    """Root of the model's errors."""


class ArnInvalid(ModelError, errors.Invalid):
    """Raised by `arn.parse` when the text is not an ECS ARN of a known resource type."""


class EventInvalid(ModelError, errors.Invalid, errors.Permanent):
    """Raised by `events.parse` for a body that can never be applied (poison: dead-letter it)."""


class RecordInvalid(ModelError, errors.Invalid, errors.Permanent):
    """Raised by `ecs.decode` when stored bytes are not an encoded record."""


class DaemonInvalid(ModelError, errors.Invalid, errors.Permanent):
    """Raised by `blox.model.daemon` for a name, share, constraint or policy out of its rules."""
