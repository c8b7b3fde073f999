"""State changes → EventBridge envelopes, exactly as ECS emits them, and the `Publisher` seam.

`EnvelopeFactory.build` is pure apart from the injected, seeded RNG that draws event ids: it
turns one `EntityChange` (from `sim/state`) into the envelope that arrives as an SQS message
body (see shared/fixtures/ecs-events/README.md). It never reads the clock: `time` is the
detail's `updatedAt` truncated to whole seconds. Publishers (`MemoryPublisher` here, SQS and
EventBridge in `sim/publishers.py`) are blocking and are driven by `sim/pump.py`.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from blox.errors import Invalid
from blox.sim.state.changes import EntityChange, EntityKind

Envelope = dict[str, Any]

DETAIL_TYPES: Mapping[EntityKind, str] = {
    "task": "ECS Task State Change",
    "container_instance": "ECS Container Instance State Change",
}
ARN_FIELDS: Mapping[EntityKind, str] = {
    "task": "taskArn",
    "container_instance": "containerInstanceArn",
}
SOURCE = "aws.ecs"


class EnvelopeInvalid(Invalid):
    """An EntityChange cannot become an envelope: naive timestamp or missing ARN."""


def iso_timestamp(value: datetime) -> str:
    """ECS event form of a timestamp: UTC, milliseconds with trailing zeros dropped (`.87Z`)."""
    if value.tzinfo is None:
        raise EnvelopeInvalid(f"timestamp {value.isoformat()} has no timezone; expected UTC")
    utc = value.astimezone(UTC)
    whole = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000  # the ECS API keeps milliseconds: finer digits are noise
    if millis == 0:
        return f"{whole}Z"
    return f"{whole}.{millis:03d}".rstrip("0") + "Z"


def envelope_time(value: datetime) -> str:
    """The envelope's `time`: the instant truncated to whole seconds, ISO-8601 with `Z`."""
    if value.tzinfo is None:
        raise EnvelopeInvalid(f"timestamp {value.isoformat()} has no timezone; expected UTC")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_detail(value: Any) -> Any:
    """A Describe object with every `datetime` rendered by `iso_timestamp`; key order kept."""
    if isinstance(value, datetime):
        return iso_timestamp(value)
    if isinstance(value, Mapping):
        return {key: render_detail(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_detail(item) for item in value]
    return value


def envelope_json(envelope: Envelope) -> str:
    """The SQS message body for an envelope: compact JSON, key order as built."""
    return json.dumps(envelope, separators=(",", ":"))


def version_of(envelope: Envelope) -> int:
    """The entity's own `detail.version` (ordering across entities means nothing)."""
    return int(envelope["detail"]["version"])


class EnvelopeFactory:
    """Builds envelopes; ids come from the injected RNG so a seeded run is reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def event_id(self) -> str:
        """A random (version 4) UUID drawn from this factory's RNG."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def build(self, change: EntityChange) -> Envelope:
        """The envelope ECS would emit for this change (field order as AWS sends it)."""
        detail = change.detail
        arn = detail.get(ARN_FIELDS[change.kind])
        if not isinstance(arn, str) or not arn:
            raise EnvelopeInvalid(f"{change.kind} change has no {ARN_FIELDS[change.kind]}")
        updated_at = detail.get("updatedAt", change.time)
        if not isinstance(updated_at, datetime):
            raise EnvelopeInvalid(f"{arn}: updatedAt must be a datetime, got {updated_at!r}")
        return {
            "version": "0",
            "id": self.event_id(),
            "detail-type": DETAIL_TYPES[change.kind],
            "source": SOURCE,
            "account": change.account,
            "time": envelope_time(updated_at),
            "region": change.region,
            "resources": [arn],
            "detail": render_detail(detail),
        }


@dataclass(frozen=True)
class PublishOutcome:
    """What one `Publisher.publish` call achieved: `failed` were given up on (after retries)."""

    published: int
    failed: tuple[Envelope, ...] = ()


class Publisher(Protocol):
    """A sink for envelopes. Blocking: the pump calls it from a worker thread."""

    def publish(self, envelopes: Sequence[Envelope]) -> PublishOutcome:
        """Deliver every envelope once; report those that could not be delivered."""
        ...


class MemoryPublisher:
    """Keeps every published envelope in order, for tests and in-process consumers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envelopes: list[Envelope] = []

    def publish(self, envelopes: Sequence[Envelope]) -> PublishOutcome:
        with self._lock:
            self._envelopes.extend(envelopes)
        return PublishOutcome(published=len(envelopes))

    @property
    def envelopes(self) -> list[Envelope]:
        """A copy of everything published so far."""
        with self._lock:
            return list(self._envelopes)
