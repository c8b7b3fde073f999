"""A JSON document being read: typed field access whose errors name the field's path.

`Fields` wraps one JSON object and where it sits (`tasks[3]`), so a missing or mistyped
field becomes `SnapshotInvalid("tasks[3].created_at: missing")` rather than a KeyError.
Pure; the one caller is `state/snapshot.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from blox.errors import Invalid

__all__ = ["Fields", "SnapshotInvalid"]


class SnapshotInvalid(Invalid):
    """A document is not a simulator snapshot this code can read; the message names the field."""


class Fields:
    """One JSON object being read, and where it is (for error messages)."""

    __slots__ = ("raw", "where")

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise SnapshotInvalid(f"{where or 'the document'}: expected an object, got {raw!r:.60}")
        self.raw: dict[str, Any] = raw
        self.where = where

    def at(self, key: str) -> str:
        """The path of `key` in this object, for messages."""
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, expected: str, ok: Callable[[Any], bool]) -> Any:
        at = self.at(key)
        if key not in self.raw:
            raise SnapshotInvalid(f"{at}: missing")
        value = self.raw[key]
        if not ok(value):
            raise SnapshotInvalid(f"{at}: expected {expected}, got {value!r:.60}")
        return value

    def field(self, key: str) -> Fields:
        """The object under `key`."""
        return Fields(self._get(key, "an object", lambda v: isinstance(v, dict)), self.at(key))

    def text(self, key: str) -> str:
        """The string under `key`."""
        return str(self._get(key, "a string", lambda v: isinstance(v, str)))

    def opt_text(self, key: str) -> str | None:
        """The string (or null) under `key`."""
        value = self._get(key, "a string or null", lambda v: v is None or isinstance(v, str))
        return None if value is None else str(value)

    def integer(self, key: str) -> int:
        """The integer under `key` (not a boolean)."""
        return int(self._get(key, "an integer", _is_int))

    def number(self, key: str) -> float:
        """The finite number under `key`."""
        return float(self._get(key, "a number", _is_number))

    def flag(self, key: str) -> bool:
        """The boolean under `key`."""
        return bool(self._get(key, "true or false", lambda v: isinstance(v, bool)))

    def choice(self, key: str, options: tuple[Any, ...]) -> Any:
        """The value under `key`, which must be one of `options`."""
        return self._get(key, f"one of {', '.join(options)}", lambda v: v in options)

    def time(self, key: str) -> datetime:
        """The timezone-aware ISO-8601 time under `key`."""
        return _parse_time(self._get(key, "an ISO-8601 time with its offset", _is_time))

    def opt_time(self, key: str) -> datetime | None:
        """The timezone-aware ISO-8601 time (or null) under `key`."""
        value = self._get(key, "an ISO-8601 time or null", lambda v: v is None or _is_time(v))
        return None if value is None else _parse_time(value)

    def texts(self, key: str) -> list[str]:
        """The list of strings under `key`."""
        return list(self._get(key, "a list of strings", _strings))

    def text_map(self, key: str) -> dict[str, str]:
        """The object of strings under `key`."""
        return dict(self._get(key, "an object of strings", _string_map))

    def attributes(self, key: str) -> dict[str, str | None]:
        """The object of strings or nulls under `key` (ECS attributes: a null has no value)."""
        return dict(self._get(key, "an object of strings or nulls", _attribute_map))

    def objects(self, key: str) -> list[Fields]:
        """The list of objects under `key`, each with its own path."""
        items = self._get(key, "a list", lambda v: isinstance(v, list))
        return [Fields(item, f"{self.at(key)}[{n}]") for n, item in enumerate(items)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) for s in value)


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(s, str) for s in value.values())


def _attribute_map(value: object) -> bool:
    return isinstance(value, dict) and all(s is None or isinstance(s, str) for s in value.values())


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_time(value: object) -> bool:
    try:
        return isinstance(value, str) and _parse_time(value).utcoffset() is not None
    except ValueError:
        return False


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError(value)
    return parsed
