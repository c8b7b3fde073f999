"""drift: described entities become events; only MISSING proves a record gone; scope by account."""

from __future__ import annotations

from typing import Any

import pytest

from blox.css import drift
from blox.model import events

CLUSTER = "arn:aws:ecs:us-east-1:111122223333:cluster/prod"
TASK = "arn:aws:ecs:us-east-1:111122223333:task/prod/0123456789abcdef0123456789abcdef"
OLD_TASK = "arn:aws:ecs:us-east-1:111122223333:task/0123456789abcdef0123456789abcdef"
INSTANCE = "arn:aws:ecs:us-east-1:111122223333:container-instance/prod/abcdef0123456789"


def task_detail(**changes: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "taskArn": TASK,
        "clusterArn": CLUSTER,
        "lastStatus": "RUNNING",
        "version": 3,
    }
    detail.update(changes)
    return detail


def test_a_described_task_becomes_the_event_of_its_version() -> None:
    event = drift.event_of("task", CLUSTER, task_detail())
    assert isinstance(event, events.TaskEvent)
    assert (event.arn, event.version, event.cluster_arn) == (TASK, 3, CLUSTER)
    assert (event.account, event.region) == ("111122223333", "us-east-1")
    assert event.detail["lastStatus"] == "RUNNING"


def test_an_old_format_task_arn_is_accepted() -> None:
    event = drift.event_of("task", CLUSTER, task_detail(taskArn=OLD_TASK))
    assert isinstance(event, events.TaskEvent)
    assert event.arn == OLD_TASK


def test_a_described_instance_gets_the_cluster_arn_ecs_leaves_out() -> None:
    detail = {"containerInstanceArn": INSTANCE, "status": "ACTIVE", "version": 7}
    event = drift.event_of("instance", CLUSTER, detail)
    assert isinstance(event, events.InstanceEvent)
    assert event.detail["clusterArn"] == CLUSTER
    assert "clusterArn" not in detail, "the caller's dict is not changed"


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"lastStatus": "RUNNING", "version": 1}, "has no taskArn"),
        (task_detail(version=None), "not a non-negative integer"),
        (task_detail(version=-1), "not a non-negative integer"),
        (task_detail(version=True), "not a non-negative integer"),
        (task_detail(taskArn="task-1"), "ARN"),
        (
            task_detail(taskArn=TASK.replace("task/prod/", "task/other/")),
            "not in cluster",
        ),
    ],
)
def test_an_unrepairable_description_says_why(detail: dict[str, Any], reason: str) -> None:
    result = drift.event_of("task", CLUSTER, detail)
    assert isinstance(result, drift.Unrepairable)
    assert reason in result.reason


def test_unlisted_names_the_live_records_the_lists_missed_in_order() -> None:
    assert drift.unlisted(["c", "a", "b"], ["b", "x"]) == ["a", "c"]
    assert drift.unlisted([], ["b"]) == []


def test_only_missing_proves_a_record_gone() -> None:
    gone = drift.gone_of(["a", "b", "c", "d"], found=["a"], missing=["b", "z"])
    assert gone.missing == ["b"]
    assert gone.unanswered == ["c", "d"]


def test_an_id_found_and_missing_at_once_is_not_gone() -> None:
    assert drift.gone_of(["a"], found=["a"], missing=["a"]).missing == []


def test_scope_is_partition_region_and_account() -> None:
    scopes = [("aws", "us-east-1", "111122223333")]
    assert drift.in_scope(CLUSTER, scopes)
    assert not drift.in_scope(CLUSTER.replace("111122223333", "444455556666"), scopes)
    assert not drift.in_scope(CLUSTER.replace("us-east-1", "eu-west-1"), scopes)
    assert not drift.in_scope(CLUSTER.replace("arn:aws:", "arn:aws-cn:"), scopes)
    assert not drift.in_scope("not-an-arn", scopes)
    assert not drift.in_scope(CLUSTER, [])
