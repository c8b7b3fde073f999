"""SQS bodies become typed events, or EventInvalid naming what makes them poison."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blox import errors
from blox.model import events

# CI clones the repo next to a `shared` folder: <repo>/../shared/fixtures/ecs-events
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "ecs-events"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
OTHER_ACCOUNT = "444455556666"


def body(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def envelope(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body(name))
    return document


def test_the_fixtures_are_there() -> None:
    assert len(NAMES) == 10


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_parses_into_an_event_of_its_kind(name: str) -> None:
    raw = envelope(name)
    event = events.parse(body(name))
    detail = raw["detail"]
    if name.startswith("task"):
        assert isinstance(event, events.TaskEvent)
        assert (event.kind, event.arn) == ("task", detail["taskArn"])
    else:
        assert isinstance(event, events.InstanceEvent)
        assert (event.kind, event.arn) == ("instance", detail["containerInstanceArn"])
    assert event.cluster_arn == detail["clusterArn"]
    assert (event.account, event.region) == ("111122223333", "us-east-1")
    assert event.version == detail["version"]
    assert event.detail == detail
    assert event.time == datetime.fromisoformat(raw["time"])
    assert event.time is not None
    assert event.time.tzinfo is not None


def test_a_short_task_arn_takes_its_cluster_from_cluster_arn() -> None:
    event = events.parse(body("task-running-legacy-arn"))
    assert event.cluster_arn == "arn:aws:ecs:us-east-1:111122223333:cluster/fleet-a"
    assert (
        event.arn == "arn:aws:ecs:us-east-1:111122223333:task/332e1700-d4d9-4b91-ad76-394cd2637adf"
    )
    assert event.time == datetime(2021, 3, 23, 14, 52, 12, tzinfo=UTC)


def test_unknown_fields_are_tolerated_and_kept_in_the_detail() -> None:
    raw = envelope("task-running")
    raw["newEnvelopeField"] = {"x": 1}
    raw["detail"]["newDetailField"] = [1, 2]
    event = events.parse(json.dumps(raw))
    assert event.detail["newDetailField"] == [1, 2]


def test_an_event_without_time_still_parses_since_nothing_orders_by_it() -> None:
    raw = envelope("task-running")
    del raw["time"]
    assert events.parse(json.dumps(raw)).time is None


def test_the_account_allow_list_admits_listed_accounts() -> None:
    event = events.parse(body("instance-active"), accounts=frozenset({"111122223333"}))
    assert event.version == 318


Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    *parents, last = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        target = raw
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    *parents, last = path.split(".")

    def mutate(raw: dict[str, Any]) -> None:
        target = raw
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


T1_ELSEWHERE = "arn:aws:ecs:us-east-1:444455556666:task/fleet-a/357f8a30d7761a1100ff311968bba316"
T1_OTHER_CLUSTER = (
    "arn:aws:ecs:us-east-1:111122223333:task/fleet-b/357f8a30d7761a1100ff311968bba316"
)

INVALID_ENVELOPES = [
    pytest.param(_set("source", "aws.ec2"), "source", id="source is not aws.ecs"),
    pytest.param(_drop("source"), "source", id="source is missing"),
    pytest.param(_set("detail-type", "ECS Service Action"), "detail-type", id="unknown type"),
    pytest.param(_drop("detail-type"), "detail-type", id="detail-type is missing"),
    pytest.param(_drop("detail"), "detail is missing", id="detail is missing"),
    pytest.param(_set("detail", [1]), "not an object", id="detail is a list"),
    pytest.param(_drop("detail.version"), "detail.version", id="version is missing"),
    pytest.param(_set("detail.version", True), "detail.version", id="version is a bool"),
    pytest.param(_set("detail.version", -1), "detail.version", id="version is negative"),
    pytest.param(_set("detail.version", "2"), "detail.version", id="version is a string"),
    pytest.param(_set("detail.version", 2.0), "detail.version", id="version is a float"),
    pytest.param(_drop("detail.clusterArn"), "clusterArn", id="clusterArn is missing"),
    pytest.param(_set("detail.clusterArn", 7), "clusterArn", id="clusterArn is a number"),
    pytest.param(_set("detail.clusterArn", "fleet-a"), "clusterArn", id="clusterArn is a name"),
    pytest.param(
        _set("detail.clusterArn", T1_OTHER_CLUSTER), "not a cluster ARN", id="clusterArn is a task"
    ),
    pytest.param(_drop("detail.taskArn"), "taskArn", id="taskArn is missing"),
    pytest.param(_set("detail.taskArn", ""), "taskArn", id="taskArn is empty"),
    pytest.param(_set("detail.taskArn", "arn:aws:ecs:x"), "taskArn", id="taskArn is garbage"),
    pytest.param(
        _set("detail.taskArn", "arn:aws:ecs:us-east-1:111122223333:cluster/fleet-a"),
        "not a task ARN",
        id="taskArn is a cluster ARN",
    ),
    pytest.param(_set("detail.taskArn", T1_ELSEWHERE), "account", id="task of another account"),
    pytest.param(_set("detail.taskArn", T1_OTHER_CLUSTER), "another cluster", id="other cluster"),
    pytest.param(_set("account", OTHER_ACCOUNT), "envelope", id="envelope of another account"),
    pytest.param(_set("account", ""), "account", id="account is empty"),
    pytest.param(_set("region", 7), "region", id="region is not a string"),
    pytest.param(_set("time", 1700000000), "time", id="time is a number"),
    pytest.param(_set("time", "yesterday"), "time", id="time is not ISO-8601"),
]


@pytest.mark.parametrize(("mutate", "problem"), INVALID_ENVELOPES)
def test_an_invalid_task_event_is_poison_with_a_message_naming_the_problem(
    mutate: Mutation, problem: str
) -> None:
    raw = envelope("task-running")
    mutate(raw)
    with pytest.raises(events.EventInvalid, match=problem) as caught:
        events.parse(json.dumps(raw))
    assert isinstance(caught.value, errors.Invalid)
    assert isinstance(caught.value, errors.Permanent)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", "not JSON", id="empty body"),
        pytest.param("{", "not JSON", id="truncated JSON"),
        pytest.param("[]", "list, not an object", id="a JSON list"),
        pytest.param("null", "NoneType, not an object", id="JSON null"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_poison(text: str, problem: str) -> None:
    with pytest.raises(events.EventInvalid, match=problem):
        events.parse(text)


def test_an_instance_event_needs_its_container_instance_arn() -> None:
    raw = envelope("instance-draining")
    raw["detail"]["containerInstanceArn"] = raw["detail"]["clusterArn"]
    with pytest.raises(events.EventInvalid, match="not a container-instance ARN"):
        events.parse(json.dumps(raw))


def test_an_account_outside_the_allow_list_is_rejected() -> None:
    with pytest.raises(events.EventInvalid, match="111122223333 is not in the allowed accounts"):
        events.parse(body("task-running"), accounts=frozenset({OTHER_ACCOUNT}))


def test_an_envelope_without_account_or_region_takes_the_clusters() -> None:
    """moto's EventBridge drops `account` on its way to SQS; the cluster ARN is the authority."""
    raw = json.loads(body("task-running"))
    del raw["account"], raw["region"]
    event = events.parse(json.dumps(raw))
    assert (event.account, event.region) == ("111122223333", "us-east-1")
    with pytest.raises(events.EventInvalid, match="111122223333 is not in the allowed accounts"):
        events.parse(json.dumps(raw), accounts=frozenset({OTHER_ACCOUNT}))
