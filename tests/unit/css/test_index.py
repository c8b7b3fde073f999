"""Index derivation, as tables: which entries a record must have, and how their keys read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from blox.css import index
from blox.model import ecs
from blox.store import keys

A = "arn:aws:ecs:us-east-1:111122223333"
FLEET_A = f"{A}:cluster/fleet-a"
T1 = f"{A}:task/fleet-a/357f8a30d7761a1100ff311968bba316"
I1 = f"{A}:container-instance/fleet-a/0ae71c5f39e191095278da7bb8a0aece"
TASK_DEFINITION = f"{A}:task-definition/log-shipper:7"
FULL = {
    "lastStatus": "RUNNING",
    "startedBy": "blox-env-logs-rev3",
    "containerInstanceArn": I1,
    "taskDefinitionArn": TASK_DEFINITION,
    "group": "family:log-shipper",
}


def task(cluster: str = FLEET_A, arn: str = T1, **detail: Any) -> ecs.Record:
    return ecs.Record("task", cluster, arn, 1, detail)


@pytest.mark.parametrize(
    ("detail", "values"),
    [
        (
            FULL,
            {
                "status": "RUNNING",
                "startedBy": "blox-env-logs-rev3",
                "containerInstance": I1,
                "family": "log-shipper",
                "group": "family:log-shipper",
            },
        ),
        ({"lastStatus": "running"}, {"status": "RUNNING"}),
        (
            {**FULL, "containerInstanceArn": None, "launchType": "FARGATE"},
            {
                "status": "RUNNING",
                "startedBy": "blox-env-logs-rev3",
                "family": "log-shipper",
                "group": "family:log-shipper",
            },
        ),
        ({"lastStatus": "PENDING", "startedBy": ""}, {"status": "PENDING"}),
        ({"lastStatus": 3, "startedBy": ["x"], "group": {"a": 1}}, {}),
        ({"taskDefinitionArn": "log-shipper:7"}, {}),
        ({"taskDefinitionArn": f"{A}:task/fleet-a/1"}, {}),
        ({"startedBy": "a|b%7C"}, {"startedBy": "a|b%7C"}),
        ({}, {}),
    ],
    ids=[
        "a full task has every field",
        "status is upper case",
        "a Fargate task has no container instance",
        "an empty string is no value",
        "values that are not strings are ignored",
        "a family needs a task definition ARN",
        "a family needs a task-definition ARN, not any ARN",
        "separators in values are kept",
        "an empty detail has nothing",
    ],
)
def test_task_values(detail: dict[str, Any], values: dict[str, str]) -> None:
    assert index.values(task(**detail)) == values


def test_an_instance_is_indexed_by_status_only() -> None:
    record = ecs.Record("instance", FLEET_A, I1, 1, {"status": "draining", "startedBy": "x"})
    assert index.values(record) == {"status": "DRAINING"}
    assert index.entries(record) == {
        keys.index_entry("instance", "status", "DRAINING", FLEET_A, I1)
    }


def test_a_tombstone_has_no_entries() -> None:
    gone = ecs.Record("task", FLEET_A, T1, 1, FULL, deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert index.values(gone) == {} and index.entries(gone) == frozenset()


def test_every_entry_names_its_record_and_sits_under_each_prefix_of_its_value() -> None:
    record = task(**FULL)
    found = index.entries(record)
    assert len(found) == 5
    for field, value in index.values(record).items():
        entry = keys.index_entry("task", field, value, FLEET_A, T1)
        assert entry in found
        assert index.target(entry) == keys.task(FLEET_A, T1)
        for prefix in (
            keys.index_of("task", field, value),
            keys.index_of("task", field, value, named="fleet-a"),
            keys.index_of("task", field, value, cluster_arn=FLEET_A),
        ):
            assert entry.startswith(prefix)


@pytest.mark.parametrize(
    ("prefix", "inside"),
    [
        (keys.index_of("task", "status", "RUNNING", named="fleet-ab"), False),
        (keys.index_of("task", "status", "RUNNING", named="fleet"), False),
        (keys.index_of("task", "status", "RUNNING", cluster_arn=f"{A}:cluster/fleet-ab"), False),
        (keys.index_of("task", "status", "RUNNING", cluster_arn=f"{A}:cluster/fleet"), False),
        (keys.index_of("task", "status", "RUNNIN"), False),
        (keys.index_of("task", "startedBy", "RUNNING"), False),
        (keys.index_of("instance", "status", "RUNNING"), False),
        (keys.index_of("task", "status", "RUNNING", named="fleet-a"), True),
        (keys.index_of("task", "status", "RUNNING", cluster_arn=FLEET_A), True),
    ],
    ids=[
        "a longer name",
        "a shorter name",
        "a longer cluster ARN",
        "a shorter cluster ARN",
        "a shorter value",
        "another field",
        "another kind",
        "its own name",
        "its own cluster ARN",
    ],
)
def test_an_entry_is_under_no_prefix_but_its_own(prefix: str, inside: bool) -> None:
    entry = keys.index_entry("task", "status", "RUNNING", FLEET_A, T1)
    assert entry.startswith(prefix) is inside


def test_values_holding_separators_and_escapes_still_name_their_record() -> None:
    cluster = "arn:aws-cn:ecs:cn-north-1:444455556666:cluster/x"
    for value in ("a|b", "%7C", "%25|%", "100%"):
        entry = keys.index_entry("task", "group", value, cluster, T1)
        assert keys.indexed_record(entry) == keys.task(cluster, T1)
        assert entry.startswith(keys.index_of("task", "group", value, cluster_arn=cluster))
        assert not entry.startswith(keys.index_of("task", "group", value + "|", named="x"))


@pytest.mark.parametrize(
    "key",
    [
        keys.task(FLEET_A, T1),
        keys.INDEX + "task/status/RUNNING|fleet-a|" + FLEET_A,
        keys.INDEX + "service/status/RUNNING|fleet-a|" + FLEET_A + "|" + T1,
        keys.INDEX + "task/status",
        keys.INDEX + "task//RUNNING|fleet-a||" + T1,
    ],
    ids=["a record key", "no ARN", "an unknown kind", "no value", "no field or cluster"],
)
def test_a_key_that_is_no_index_entry_names_no_record(key: str) -> None:
    assert index.target(key) is None


def test_the_cluster_registry_is_keyed_by_name_then_arn() -> None:
    other = "arn:aws-cn:ecs:cn-north-1:444455556666:cluster/fleet-a"
    for cluster in (FLEET_A, other):
        assert keys.cluster(cluster).startswith(keys.clusters_named("fleet-a"))
        assert keys.registered_cluster(keys.cluster(cluster)) == cluster
    assert not keys.cluster(f"{A}:cluster/fleet-ab").startswith(keys.clusters_named("fleet-a"))
    assert keys.record_cluster(keys.instance(other, I1)) == other
    with pytest.raises(ValueError, match="not a task or instance record key"):
        keys.record_cluster(keys.cluster(other))
    with pytest.raises(ValueError, match="not a cluster registry entry"):
        keys.registered_cluster(keys.task(other, T1))
