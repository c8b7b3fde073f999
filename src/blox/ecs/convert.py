"""Pure conversions of botocore's ECS responses into the values `EcsClient` returns.

Entities stay the dicts ECS sent, typed by boto3-stubs (`TaskTypeDef`, …): the CSS stores an
ECS detail as-is. `detail()` turns one into the JSON-safe shape of an event's `detail`
(botocore parses timestamps into datetimes; events carry ISO-8601 text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # the stubs are a dev dependency: annotations only
    from mypy_boto3_ecs.type_defs import FailureTypeDef

__all__ = ["Described", "Failure", "detail", "failure", "failures"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Failure:
    """One id ECS could not describe or start on, and why (MISSING, RESOURCE:CPU, AGENT …)."""

    arn: str | None
    reason: str | None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Described(Generic[T]):
    """Entities found (as ECS sent them) and per-id failures, merged over every batch."""

    items: list[T] = field(default_factory=list, hash=False)
    failures: list[Failure] = field(default_factory=list, hash=False)

    def details(self) -> list[dict[str, Any]]:
        """Each item as a JSON-safe dict, the shape the CSS stores."""
        return [detail(item) for item in self.items]  # type: ignore[arg-type]


def failure(raw: FailureTypeDef) -> Failure:
    """Our value for one entry of an ECS `failures` list."""
    return Failure(arn=raw.get("arn"), reason=raw.get("reason"), detail=raw.get("detail"))


def failures(raw: Sequence[FailureTypeDef]) -> list[Failure]:
    """Our values for an ECS `failures` list."""
    return [failure(f) for f in raw]


def detail(item: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `item` with every datetime as ISO-8601 UTC text with milliseconds."""
    return {key: _json_value(value) for key, value in item.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return detail(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value
