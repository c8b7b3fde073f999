"""Golden envelopes: EntityChange values built from the fixtures' details give the fixtures back."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from blox.sim import events
from blox.sim.state.changes import EntityChange, EntityKind

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "ecs-events"
TIMESTAMP_KEYS = {
    "connectivityAt",
    "createdAt",
    "executionStoppedAt",
    "pullStartedAt",
    "pullStoppedAt",
    "registeredAt",
    "startedAt",
    "stoppedAt",
    "stoppingAt",
    "updatedAt",
}
# The three instance fixtures write `registeredAt` as "…44.310Z", against the fixtures README
# ("trailing zeros dropped", as in every other timestamp). We follow the README; the instant is
# the same, and this is the only place the golden comparison bends. Reported to the fixture owner.
FIXTURE_DEVIATIONS = {
    '"registeredAt": "2026-11-18T06:02:44.310Z"': '"registeredAt": "2026-11-18T06:02:44.31Z"'
}
GOLDEN = [
    "task-pending",
    "task-running",
    "task-stopped",
    "task-stopped-oom",
    "task-running-fargate",
    "task-running-legacy-arn",
    "instance-active",
    "instance-draining",
    "instance-deregistered",
    "instance-agent-disconnected",
]


def fixture(name: str) -> dict[str, Any]:
    text = (FIXTURES / f"{name}.json").read_text()
    for written, rule in FIXTURE_DEVIATIONS.items():
        text = text.replace(written, rule)
    data: dict[str, Any] = json.loads(text)
    return data


def with_datetimes(value: Any) -> Any:
    """The Describe object as the state holds it: fixture timestamps back to datetimes."""
    if isinstance(value, dict):
        return {
            key: datetime.fromisoformat(item) if key in TIMESTAMP_KEYS else with_datetimes(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [with_datetimes(item) for item in value]
    return value


def change_from(envelope: dict[str, Any]) -> EntityChange:
    kind: EntityKind = (
        "task" if envelope["detail-type"] == "ECS Task State Change" else ("container_instance")
    )
    detail = with_datetimes(envelope["detail"])
    return EntityChange(
        kind=kind,
        detail=detail,
        account=envelope["account"],
        region=envelope["region"],
        time=detail["updatedAt"],
    )


@pytest.mark.parametrize("name", GOLDEN)
def test_envelope_equals_the_fixture_byte_for_byte_except_its_id(name: str) -> None:
    expected = fixture(name)
    built = events.EnvelopeFactory(random.Random(7)).build(change_from(expected))

    assert built["id"] != expected["id"]
    expected["id"] = built["id"]
    assert json.dumps(built, indent=2) == json.dumps(expected, indent=2)
    assert events.envelope_json(built) == json.dumps(expected, separators=(",", ":"))


def test_envelope_time_is_updated_at_truncated_not_the_change_time() -> None:
    change = change_from(fixture("task-running"))
    late = EntityChange(
        kind=change.kind,
        detail=change.detail,
        account=change.account,
        region=change.region,
        time=change.time + timedelta(hours=1),
    )

    assert events.EnvelopeFactory(random.Random(1)).build(late)["time"] == "2026-11-20T09:14:05Z"


def test_seeded_factories_draw_the_same_version4_ids() -> None:
    change = change_from(fixture("task-stopped"))
    first = [events.EnvelopeFactory(random.Random(42)).build(change)["id"] for _ in range(2)]
    factory = events.EnvelopeFactory(random.Random(42))
    ids = {factory.build(change)["id"] for _ in range(100)}

    assert first[0] == first[1]
    assert len(ids) == 100
    assert all(i[14] == "4" and i[19] in "89ab" for i in ids)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 20, 9, 14, 2, 131000, tzinfo=UTC), "2026-11-20T09:14:02.131Z"),
        (datetime(2026, 11, 20, 9, 14, 5, 870000, tzinfo=UTC), "2026-11-20T09:14:05.87Z"),
        (datetime(2026, 11, 20, 9, 14, 5, 800000, tzinfo=UTC), "2026-11-20T09:14:05.8Z"),
        (datetime(2026, 11, 21, 17, 40, 2, tzinfo=UTC), "2026-11-21T17:40:02Z"),
        (datetime(2026, 11, 21, 17, 40, 2, 999, tzinfo=UTC), "2026-11-21T17:40:02Z"),
        (datetime(2026, 11, 21, 17, 40, 2, 100999, tzinfo=UTC), "2026-11-21T17:40:02.1Z"),
        (
            datetime(2026, 11, 21, 19, 40, 2, 5000, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-21T17:40:02.005Z",
        ),
    ],
    ids=[".131Z", ".87Z", ".8Z", "no fraction", "sub-ms dropped", "truncated", "to UTC"],
)
def test_timestamps_drop_trailing_zeros_of_milliseconds(value: datetime, text: str) -> None:
    assert events.iso_timestamp(value) == text


def test_envelope_time_has_whole_seconds_only() -> None:
    value = datetime(2026, 11, 20, 9, 14, 5, 999000, tzinfo=UTC)

    assert events.envelope_time(value) == "2026-11-20T09:14:05Z"


def test_naive_timestamps_are_refused_with_a_clear_error() -> None:
    with pytest.raises(events.EnvelopeInvalid, match="no timezone"):
        events.iso_timestamp(datetime(2026, 11, 20, 9, 14, 5))


def test_a_change_without_its_arn_is_refused() -> None:
    change = change_from(fixture("instance-active"))
    detail = dict(change.detail)
    del detail["containerInstanceArn"]
    broken = EntityChange(
        kind=change.kind, detail=detail, account="1", region="us-east-1", time=change.time
    )

    with pytest.raises(events.EnvelopeInvalid, match="containerInstanceArn"):
        events.EnvelopeFactory(random.Random(1)).build(broken)


def test_memory_publisher_keeps_envelopes_in_order() -> None:
    factory = events.EnvelopeFactory(random.Random(3))
    batch = [factory.build(change_from(fixture(name))) for name in GOLDEN]
    publisher = events.MemoryPublisher()

    outcome = publisher.publish(batch[:4])
    publisher.publish(batch[4:])

    assert outcome == events.PublishOutcome(published=4)
    assert publisher.envelopes == batch
