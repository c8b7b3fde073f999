"""Structured logs: `setup_logging("json" | "text", level)` configures the root logger.

Called once by each command's entry (`blox css --log-format json --log-level info`); library
code only does `logging.getLogger(__name__)` and passes facts as `extra={...}`. JSON lines carry
`time` (UTC, ISO 8601, milliseconds), `level`, `logger`, `message`, every `extra` field, and
`exc` / `stack` when the record has a traceback: one object per line, ready for a log shipper.
Text lines carry the same facts for a terminal. The standard library is enough for this, so
there is no python-json-logger dependency.

Invariants: calling `setup_logging` again replaces the handler it installed before (never adds a
second one) and leaves handlers others installed alone; a value that is not JSON is logged as
its `str`, never dropped and never raising.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from blox.obs.errors import LogSettingInvalid

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "extra_fields",
    "parse_level",
    "setup_logging",
]

FORMATS: Final = ("json", "text")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")
# Attributes every LogRecord has; whatever else a record carries came from `extra=`.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_INSTALLED: Final = "_blox_obs_handler"


def parse_level(level: str | int) -> int:
    """A `logging` level from a name ("info", any case) or a number; LogSettingInvalid if not."""
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    if name not in LEVELS:
        raise LogSettingInvalid(f"--log-level must be one of {', '.join(LEVELS)}, not {level!r}")
    return int(getattr(logging, name.upper()))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added with `extra=`, in the order given."""
    fields = record.__dict__.items()
    return {k: v for k, v in fields if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            document.setdefault(key, value)  # an extra never hides a standard field
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, then the traceback, if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return _iso(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        extras = " ".join(f"{k}={_text(v)}" for k, v in extra_fields(record).items())
        return f"{line} {extras}" if extras else line


def setup_logging(
    format: str = "text",
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (stderr) in `format`."""
    if format not in FORMATS:
        raise LogSettingInvalid(f"--log-format must be json or text, not {format!r}")
    number = parse_level(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    setattr(handler, _INSTALLED, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    return handler


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _text(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text
