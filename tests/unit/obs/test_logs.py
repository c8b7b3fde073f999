"""setup_logging: JSON lines with the standard fields and extras, text for terminals, bad flags."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from blox.errors import Invalid
from blox.obs import setup_logging
from blox.obs.errors import LogSettingInvalid

LOGGER = "blox.test.obs"


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    """Leave the root logger as the test found it (pytest's own handlers included)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_extra_fields() -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream=stream)

    log = logging.getLogger(LOGGER)
    log.info("applied %d events", 3, extra={"cluster": "fleet-a", "lag_s": 1.5, "tags": {1, 2}})
    log.debug("not shown at info")

    (record,) = lines(stream)
    assert {k: record[k] for k in ("level", "logger", "message", "cluster", "lag_s")} == {
        "level": "info",
        "logger": LOGGER,
        "message": "applied 3 events",
        "cluster": "fleet-a",
        "lag_s": 1.5,
    }
    assert record["tags"] == "{1, 2}"  # not JSON: logged as its str, never dropped
    stamp = datetime.fromisoformat(str(record["time"]))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_an_exception_is_one_json_line_with_its_traceback_in_exc() -> None:
    stream = io.StringIO()
    setup_logging("json", "error", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger(LOGGER).exception("failed", extra={"message_id": "m-1"})

    assert len(stream.getvalue().splitlines()) == 1
    (record,) = lines(stream)
    assert record["message"] == "failed" and record["message_id"] == "m-1"
    assert "Traceback" in str(record["exc"]) and "RuntimeError: boom" in str(record["exc"])


def test_an_extra_named_like_a_standard_field_never_hides_it() -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream=stream)
    logging.getLogger(LOGGER).info("real", extra={"level": "fake", "time": "fake"})
    (record,) = lines(stream)
    assert record["level"] == "info" and record["time"] != "fake"


def test_text_lines_carry_the_same_facts_for_a_terminal() -> None:
    stream = io.StringIO()
    setup_logging("text", "DEBUG", stream=stream)
    logging.getLogger(LOGGER).debug("polling", extra={"queue": "ecs events", "pollers": 2})

    line = stream.getvalue().rstrip("\n")
    assert f"DEBUG {LOGGER}: polling" in line
    assert line.endswith('queue="ecs events" pollers=2')


def test_calling_setup_again_replaces_its_handler_and_keeps_the_others() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    first, second = io.StringIO(), io.StringIO()
    setup_logging("json", "info", stream=first)
    handler = setup_logging("text", "warning", stream=second)

    assert root.handlers == [*before, handler]
    logging.getLogger(LOGGER).warning("once")
    assert first.getvalue() == "" and "once" in second.getvalue()
    assert root.level == logging.WARNING


@pytest.mark.parametrize(
    ("log_format", "level", "message"),
    [
        ("xml", "info", "--log-format must be json or text, not 'xml'"),
        ("json", "loud", "--log-level must be one of debug, info, warning, error, critical"),
    ],
)
def test_an_unknown_format_or_level_is_an_invalid_setting(
    log_format: str, level: str, message: str
) -> None:
    with pytest.raises(LogSettingInvalid, match=message) as raised:
        setup_logging(log_format, level, stream=io.StringIO())
    assert isinstance(raised.value, Invalid)
