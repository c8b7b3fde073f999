"""The batch contract of the pollers: one call per batch, one outcome per message, never a raise."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from blox.css.ingest import batches
from blox.css.ingest.disposition import Outcome
from blox.errors import Invalid, Temporary, Unavailable


class StoreDown(Unavailable, Temporary):
    pass


class BadEvent(Invalid):
    pass


class OneAtATime:
    """A per-message `process` that fails the bodies named in `failures`."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        self.failures = failures
        self.seen: list[str] = []

    async def __call__(self, body: str) -> str:
        self.seen.append(body)
        if body in self.failures:
            raise self.failures[body]
        return body


async def test_one_by_one_stops_after_the_first_failure_that_may_pass() -> None:
    down = StoreDown("away")
    process = OneAtATime({"b": BadEvent("poison"), "c": down})
    process_many = batches.one_by_one(process)

    results = await process_many(["a", "b", "c", "d"])

    assert results[0] == "a" and isinstance(results[1], BadEvent) and results[2] is down
    assert len(results) == 3 and process.seen == ["a", "b", "c"]  # d was not processed
    outcomes = await batches.attempt(process_many, ["a", "b", "c", "d"])
    assert [outcome for outcome, _ in outcomes] == [
        Outcome.APPLIED,
        Outcome.POISON,
        Outcome.TEMPORARY,
    ]


async def test_attempt_fails_every_body_with_what_the_call_raised() -> None:
    async def broken(bodies: Sequence[str]) -> list[object]:
        raise RuntimeError("a bug")

    outcomes = await batches.attempt(broken, ["a", "b"])

    assert [outcome for outcome, _ in outcomes] == [Outcome.UNEXPECTED] * 2
    assert all(isinstance(error, RuntimeError) for _, error in outcomes)


async def test_attempt_decodes_bytes_and_keeps_bodies_that_are_not_utf8_from_the_call() -> None:
    calls: list[list[str]] = []

    async def process_many(bodies: Sequence[str]) -> list[object]:
        calls.append(list(bodies))
        return [None, StoreDown("away")]

    outcomes = await batches.attempt(process_many, [b"a", b"\xff", "c"])

    assert calls == [["a", "c"]]
    assert [outcome for outcome, _ in outcomes] == [
        Outcome.APPLIED,
        Outcome.POISON,
        Outcome.TEMPORARY,
    ]
    assert isinstance(outcomes[1][1], UnicodeDecodeError)


async def test_attempt_never_lets_a_call_that_answers_nothing_skip_the_batch() -> None:
    async def silent(bodies: Sequence[str]) -> list[object]:
        return []

    outcomes = await batches.attempt(silent, ["a", "b"])

    assert [outcome for outcome, _ in outcomes] == [Outcome.UNEXPECTED]  # the first: retried
    assert await batches.attempt(silent, []) == []


def test_a_poller_is_given_exactly_one_way_to_process() -> None:
    process = OneAtATime({})
    with pytest.raises(Invalid):
        batches.chosen(None, None)
    with pytest.raises(Invalid):
        batches.chosen(process, batches.one_by_one(process))
    process_many = batches.one_by_one(process)
    assert batches.chosen(None, process_many) is process_many


@pytest.mark.parametrize(
    ("outcome", "level", "with_traceback", "counted"),
    [
        (Outcome.TEMPORARY, logging.WARNING, False, True),
        (Outcome.UNEXPECTED, logging.ERROR, True, True),
        (Outcome.APPLIED, None, False, False),
    ],
)
def test_log_failure_logs_and_counts_only_failures_that_may_pass(
    caplog: pytest.LogCaptureFixture,
    outcome: Outcome,
    level: int | None,
    with_traceback: bool,
    counted: bool,
) -> None:
    try:
        raise StoreDown("away")
    except StoreDown as exc:
        error = exc
    log = logging.getLogger("test.batches")
    with caplog.at_level(logging.DEBUG, logger="test.batches"):
        assert batches.log_failure(log, outcome, error, "message m-1") is counted
    assert [r.levelno for r in caplog.records] == ([] if level is None else [level])
    assert all(("m-1" in r.getMessage()) for r in caplog.records)
    assert [r.exc_info is not None for r in caplog.records] == [with_traceback] * len(
        caplog.records
    )
