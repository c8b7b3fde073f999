"""The pure decisions of the ingest pollers: delete, dead-letter or leave; backoff; --queue.

The Kinesis reader's own decisions (checkpoints, shard order) are in `test_kinesis.py`.
"""

from __future__ import annotations

import pytest

from blox.css import ingest
from blox.css.ingest.disposition import (
    Disposition,
    Outcome,
    backoff_s,
    classify,
    dispose,
    parse_queue,
)
from blox.errors import Conflict, Invalid, Permanent, Temporary, Unavailable

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/ecs-events"


class StoreDown(Unavailable, Temporary):
    pass


class BadEvent(Invalid):
    pass


class WrongSource(Permanent):
    pass


class RetryableInvalid(Invalid, Temporary):
    pass


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(None, Outcome.APPLIED, id="returned means applied"),
        pytest.param(StoreDown("etcd away"), Outcome.TEMPORARY, id="temporary"),
        pytest.param(BadEvent("not JSON"), Outcome.POISON, id="invalid is poison"),
        pytest.param(WrongSource("aws.ec2"), Outcome.POISON, id="permanent is poison"),
        pytest.param(RetryableInvalid("x"), Outcome.TEMPORARY, id="temporary wins over invalid"),
        pytest.param(Conflict("cas"), Outcome.UNEXPECTED, id="uncategorised blox error"),
        pytest.param(KeyError("detail"), Outcome.UNEXPECTED, id="a bug is unexpected"),
    ],
)
def test_classify_maps_an_error_to_an_outcome(error: Exception | None, expected: Outcome) -> None:
    assert classify(error) is expected


DELETE, DEAD_LETTER, LEAVE = Disposition.DELETE, Disposition.DEAD_LETTER, Disposition.LEAVE


@pytest.mark.parametrize(
    ("outcome", "receive_count", "has_dead_letter", "expected"),
    [
        pytest.param(Outcome.APPLIED, 1, False, DELETE, id="applied is acked"),
        pytest.param(Outcome.APPLIED, 9, True, DELETE, id="applied is acked on any delivery"),
        pytest.param(Outcome.POISON, 1, True, DEAD_LETTER, id="poison goes to the DLQ at once"),
        pytest.param(Outcome.POISON, 1, False, LEAVE, id="poison without DLQ waits first"),
        pytest.param(Outcome.POISON, 2, False, LEAVE, id="poison below max receives waits"),
        pytest.param(Outcome.POISON, 3, False, DELETE, id="poison at max receives is dropped"),
        pytest.param(Outcome.POISON, 7, False, DELETE, id="poison past max receives is dropped"),
        pytest.param(Outcome.TEMPORARY, 1, True, LEAVE, id="temporary is left"),
        pytest.param(Outcome.TEMPORARY, 50, False, LEAVE, id="temporary is never dropped"),
        pytest.param(Outcome.UNEXPECTED, 50, True, LEAVE, id="unexpected is left like temporary"),
    ],
)
def test_dispose_deletes_only_applied_dead_lettered_or_exhausted_poison(
    outcome: Outcome, receive_count: int, has_dead_letter: bool, expected: Disposition
) -> None:
    decided = dispose(
        outcome=outcome,
        receive_count=receive_count,
        max_receives=3,
        has_dead_letter=has_dead_letter,
    )
    assert decided is expected


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [
        pytest.param(1, 0.0, 0.25, id="first failure, lowest jitter: half the base"),
        pytest.param(1, 1.0, 0.5, id="first failure, highest jitter: the base"),
        pytest.param(3, 1.0, 2.0, id="doubles per failure"),
        pytest.param(10, 1.0, 30.0, id="capped"),
        pytest.param(10_000, 0.0, 15.0, id="huge failure counts stay capped"),
        pytest.param(0, 1.0, 0.5, id="zero failures is treated as one"),
    ],
)
def test_backoff_doubles_up_to_the_cap_with_jitter_in_half_to_one(
    failures: int, jitter: float, expected: float
) -> None:
    assert backoff_s(failures=failures, base_s=0.5, cap_s=30.0, jitter=jitter) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("sqs://ecs-events", ("name", "ecs-events"), id="sqs scheme"),
        pytest.param("sqs://ecs-events/", ("name", "ecs-events"), id="sqs scheme, trailing slash"),
        pytest.param("ecs-events", ("name", "ecs-events"), id="bare name"),
        pytest.param(
            "https://sqs.us-east-1.amazonaws.com/123456789012/ecs-events",
            ("url", "https://sqs.us-east-1.amazonaws.com/123456789012/ecs-events"),
            id="https URL as is",
        ),
        pytest.param(
            "http://127.0.0.1:4566/000000000000/q",
            ("url", "http://127.0.0.1:4566/000000000000/q"),
            id="http URL as is",
        ),
        pytest.param("kinesis://ecs-events", ("kinesis", "ecs-events"), id="kinesis scheme"),
        pytest.param("KINESIS://a.b_c-1/", ("kinesis", "a.b_c-1"), id="kinesis upper, slash"),
        pytest.param(f"kinesis://{STREAM_ARN}", ("kinesis", STREAM_ARN), id="kinesis:// an ARN"),
        pytest.param(f" {STREAM_ARN} ", ("kinesis", STREAM_ARN), id="a bare stream ARN"),
        pytest.param(
            "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s",
            ("kinesis", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s"),
            id="a stream ARN in another partition",
        ),
    ],
)
def test_parse_queue_accepts_the_v03_forms_and_kinesis_streams(
    spec: str, expected: tuple[str, str]
) -> None:
    assert parse_queue(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("kinesis://", "not a Kinesis stream", id="empty stream name"),
        pytest.param("kinesis://a/b", "not a Kinesis stream", id="slash in a stream name"),
        pytest.param("kinesis://" + "s" * 129, "not a Kinesis stream", id="stream name too long"),
        pytest.param("kinesis://ecs events", "not a Kinesis stream", id="space in a stream name"),
        pytest.param(
            "arn:aws:kinesis:us-east-1:123:stream/s", "not a Kinesis stream", id="short account"
        ),
        pytest.param(
            "arn:aws:kinesis:us-east-1:123456789012:consumer/s", "not a Kinesis", id="not a stream"
        ),
        pytest.param("ftp://q", "unsupported queue scheme", id="other scheme"),
        pytest.param("sqs://", "not an SQS queue name", id="empty sqs name"),
        pytest.param("", "not an SQS queue name", id="empty"),
        pytest.param("a/b", "not an SQS queue name", id="slash in a bare name"),
    ],
)
def test_parse_queue_refuses_other_forms_with_invalid(spec: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        parse_queue(spec)


def test_the_ingest_surface_is_what_it_declares() -> None:
    assert sorted(ingest.__all__) == [
        "Checkpoint",
        "Disposition",
        "IngestCounters",
        "KinesisCounters",
        "KinesisPoller",
        "Outcome",
        "SqsPoller",
        "disposition",
        "kinesis",
        "parse_queue",
        "resolve_queue",
        "resolve_stream",
        "sqs",
    ]
    for name in ingest.__all__:
        assert hasattr(ingest, name), name
