"""The batch contract between the ingest pollers and what applies their messages.

A poller hands each batch it received to ONE `ProcessMany` call (`Processor.process_many`: one
store read and one transaction per chunk) and gets back, per message in order, a result or the
exception raised for it. `attempt` is the one boundary around that call (STYLE B6): it turns
every result into a `disposition.Outcome`, and never raises. `one_by_one` adapts a per-message
`process(body)` to the contract, stopping at the first failure that may pass, as the pollers
did before batches: its result is then shorter than the batch, and the messages past its end
were not processed (SQS redelivers them; Kinesis reads them again).
Callers: `sqs.SqsPoller`, `kinesis.KinesisPoller`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from blox.css.ingest.disposition import Outcome, classify
from blox.errors import Invalid

__all__ = ["ProcessMany", "ProcessOne", "attempt", "chosen", "log_failure", "one_by_one"]

ProcessOne = Callable[[str], Awaitable[object]]
# Per body, in order: anything (applied) or the exception it failed with; maybe fewer results.
ProcessMany = Callable[[Sequence[str]], Awaitable[Sequence[object]]]
_PASSING = frozenset({Outcome.TEMPORARY, Outcome.UNEXPECTED})  # failures that may pass


def chosen(process: ProcessOne | None, process_many: ProcessMany | None) -> ProcessMany:
    """The batch call of a poller given exactly one of `process` and `process_many`."""
    if process_many is not None and process is None:
        return process_many
    if process is not None and process_many is None:
        return one_by_one(process)
    raise Invalid("a poller takes exactly one of process and process_many")


def one_by_one(process: ProcessOne) -> ProcessMany:
    """A batch call that applies bodies one at a time, in order, and stops after the first
    that fails Temporary or unexpectedly (the store is likely away for the rest)."""

    async def process_many(bodies: Sequence[str]) -> list[object]:
        results: list[object] = []
        for body in bodies:
            try:
                results.append(await process(body))
            except Exception as exc:
                results.append(exc)
                if classify(exc) in _PASSING:
                    break
        return results

    return process_many


async def attempt(
    process_many: ProcessMany, bodies: Sequence[str | bytes]
) -> list[tuple[Outcome, BaseException | None]]:
    """How each body fared, in order, as far as `process_many` went; a call that raises fails
    every body with its exception. Bytes are decoded first: one that is not UTF-8 is poison."""
    texts: list[str | UnicodeDecodeError] = []
    for body in bodies:
        try:
            texts.append(body.decode("utf-8") if isinstance(body, bytes) else body)
        except UnicodeDecodeError as exc:
            texts.append(exc)
    answers = iter(await _answers(process_many, [t for t in texts if isinstance(t, str)]))
    outcomes: list[tuple[Outcome, BaseException | None]] = []
    for text in texts:
        found = (Outcome.POISON, text) if isinstance(text, Exception) else next(answers, None)
        if found is None:
            break  # the call stopped early: the rest were not processed
        outcomes.append(found)
    return outcomes


async def _answers(
    process_many: ProcessMany, bodies: list[str]
) -> list[tuple[Outcome, BaseException | None]]:
    if not bodies:
        return []
    try:
        results = await process_many(bodies)
    except Exception as exc:
        return [(classify(exc), exc)] * len(bodies)
    if not results:  # a batch call answers at least its first body
        results = [ValueError(f"{process_many!r} answered none of {len(bodies)} bodies")]
    return [
        (classify(result), result) if isinstance(result, BaseException) else (Outcome.APPLIED, None)
        for result in results[: len(bodies)]
    ]


def log_failure(
    log: logging.Logger, outcome: Outcome, error: BaseException | None, what: str
) -> bool:
    """Log a Temporary (warning) or unexpected (with its traceback) failure of `what`; True
    for these two, which the pollers count as temporary failures."""
    if outcome is Outcome.TEMPORARY:
        log.warning("%s to be processed again: %r", what, error)
    elif outcome is Outcome.UNEXPECTED:
        log.error("unexpected error processing %s", what, exc_info=error)
    return outcome in _PASSING
