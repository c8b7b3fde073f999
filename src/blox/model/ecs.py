"""The stored record of one ECS task or container instance, and its byte encoding.

A `Record` is what `blox.css.apply` decides to write and what the API will read: the latest
`detail` seen for the entity, its `version`, and, once the reconciler found the entity gone, a
tombstone time (`deleted_at`). Encoded as compact JSON; `decode` rejects anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from blox.model.errors import RecordInvalid

__all__ = ["KINDS", "Kind", "Record", "RecordInvalid", "decode", "encode"]

Kind = Literal["task", "instance"]
KINDS: tuple[Kind, ...] = ("task", "instance")


@dataclass(frozen=True, slots=True)
class Record:
    """One entity as stored.

    version: `detail.version` of the event written; None when a stored record carries no valid
    version (it must then never block a newer event). observed_at: when this version was
    written. deleted_at: set on a tombstone (the entity vanished from ECS), else None.
    A STOPPED task or an INACTIVE instance is a live record, not a tombstone.
    """

    kind: Kind
    cluster_arn: str
    arn: str
    version: int | None
    detail: dict[str, Any] = field(hash=False)
    observed_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def is_tombstone(self) -> bool:
        """Whether the reconciler found this entity gone from ECS."""
        return self.deleted_at is not None


def encode(record: Record) -> bytes:
    """The bytes stored for `record`."""
    document = {
        "kind": record.kind,
        "clusterArn": record.cluster_arn,
        "arn": record.arn,
        "version": record.version,
        "detail": record.detail,
        "observedAt": _time_text(record.observed_at),
        "deletedAt": _time_text(record.deleted_at),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def decode(data: bytes) -> Record:
    """The record stored as `data`; raise RecordInvalid if it is not one.

    A missing or malformed `version` decodes as None rather than failing: such a record must
    not block updates (v0.3 let a versionless record block every later event).
    """
    try:
        document = json.loads(data)
    except (TypeError, ValueError) as exc:
        raise RecordInvalid(f"the stored value is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RecordInvalid("the stored value is not a JSON object")
    kind = document.get("kind")
    if kind not in KINDS:
        raise RecordInvalid(f"the stored record has an unknown kind {kind!r}")
    cluster_arn, arn, detail = (
        document.get("clusterArn"),
        document.get("arn"),
        document.get("detail"),
    )
    if not isinstance(cluster_arn, str) or not isinstance(arn, str):
        raise RecordInvalid("the stored record lacks its clusterArn or arn")
    if not isinstance(detail, dict):
        raise RecordInvalid("the stored record's detail is not an object")
    version = document.get("version")
    return Record(
        kind=kind,
        cluster_arn=cluster_arn,
        arn=arn,
        version=version if type(version) is int and version >= 0 else None,
        detail=detail,
        observed_at=_time_value(document.get("observedAt")),
        deleted_at=_time_value(document.get("deletedAt")),
    )


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_value(text: object) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise RecordInvalid(f"the stored timestamp {text!r} is not a string")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordInvalid(f"the stored timestamp {text!r} is not ISO-8601") from exc
