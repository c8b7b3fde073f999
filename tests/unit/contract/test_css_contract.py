"""Golden v0.3 JSON of the CSS contract, built from the shared ECS event fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import blox.contract
from blox.contract import css, texts
from blox.model import ecs, events

FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "ecs-events"
A = "arn:aws:ecs:us-east-1:111122223333"
T1 = f"{A}:task/fleet-a/357f8a30d7761a1100ff311968bba316"
INSTANCE_A = f"{A}:container-instance/fleet-a/0ae71c5f39e191095278da7bb8a0aece"


def record(name: str) -> ecs.Record:
    event = events.parse((FIXTURES / f"{name}.json").read_text())
    return ecs.Record(
        kind=event.kind,
        cluster_arn=event.cluster_arn,
        arn=event.arn,
        version=event.version,
        detail=event.detail,
    )


def wire(model: css.TaskPublic | css.ContainerInstancePublic) -> Any:
    return json.loads(css.dump(model))


def test_the_contract_package_declares_its_surface() -> None:
    assert blox.contract.__all__ == ["css", "scheduler", "texts"]
    for name in css.__all__:
        assert hasattr(css, name), name


def test_a_running_task_renders_as_the_v03_task_json() -> None:
    assert wire(css.task_public(record("task-running"), 42)) == {
        "metadata": {"entityVersion": "42"},
        "entity": {
            "clusterARN": f"{A}:cluster/fleet-a",
            "containerInstanceARN": INSTANCE_A,
            "containers": [
                {
                    "containerARN": f"{A}:container/fleet-a/357f8a30d7761a1100ff311968bba316/"
                    "28a02613-aab9-4b42-a1b2-74fb774d3d0c",
                    "lastStatus": "RUNNING",
                    "name": "shipper",
                    "networkBindings": [
                        {
                            "bindIP": "0.0.0.0",
                            "containerPort": 24224,
                            "hostPort": 24224,
                            "protocol": "tcp",
                        },
                        {
                            "bindIP": "0.0.0.0",
                            "containerPort": 24224,
                            "hostPort": 24224,
                            "protocol": "udp",
                        },
                    ],
                }
            ],
            "createdAt": "2026-11-20T09:14:02.114Z",
            "desiredStatus": "RUNNING",
            "lastStatus": "RUNNING",
            "overrides": {"containerOverrides": [{"name": "shipper"}]},
            "startedAt": "2026-11-20T09:14:05.87Z",
            "startedBy": "blox-env-logs-rev3",
            "taskARN": T1,
            "taskDefinitionARN": f"{A}:task-definition/log-shipper:7",
            # blox-ecs additions, which v0.3 clients ignore:
            "group": "family:log-shipper",
            "version": 2,
        },
    }


def test_a_stopped_task_carries_exit_code_reason_and_stop_times() -> None:
    entity = wire(css.task_public(record("task-stopped-oom"), 9))["entity"]
    assert entity["containers"][0]["exitCode"] == 137
    assert entity["containers"][0]["reason"].startswith("OutOfMemoryError")
    assert entity["stoppedAt"] == "2026-11-22T02:17:41.126Z"
    assert entity["stoppedReason"] == "Essential container in task exited"


def test_empty_and_absent_optional_task_fields_are_left_out() -> None:
    fargate = wire(css.task_public(record("task-running-fargate"), 1))["entity"]
    assert "containerInstanceARN" not in fargate
    assert "networkBindings" not in fargate["containers"][0]
    pending = record("task-pending")
    detail = dict(pending.detail, startedBy="", overrides={"containerOverrides": []})
    entity = wire(css.task_public(ecs.Record(**{**_fields(pending), "detail": detail}), 1))
    assert "startedBy" not in entity["entity"]
    assert "startedAt" not in entity["entity"] and "stoppedAt" not in entity["entity"]
    assert entity["entity"]["overrides"] == {"containerOverrides": []}


def test_task_role_arn_is_spelled_in_lower_case() -> None:
    task = record("task-running")
    overrides = {"containerOverrides": [], "taskRoleArn": "arn:aws:iam::111122223333:role/r"}
    detail = dict(task.detail, overrides=overrides)
    entity = wire(css.task_public(ecs.Record(**{**_fields(task), "detail": detail}), 1))
    assert entity["entity"]["overrides"]["taskRoleArn"] == "arn:aws:iam::111122223333:role/r"


def test_an_active_instance_renders_as_the_v03_container_instance_json() -> None:
    document = wire(css.instance_public(record("instance-active"), 7))
    attributes = document["entity"].pop("attributes")
    assert document == {
        "metadata": {"entityVersion": "7"},
        "entity": {
            "agentConnected": True,
            "clusterARN": f"{A}:cluster/fleet-a",
            "containerInstanceARN": INSTANCE_A,
            "EC2InstanceID": "i-0a1b2c3d4e5f60718",
            "registeredResources": [
                {"name": "CPU", "type": "INTEGER", "value": "2048"},
                {"name": "MEMORY", "type": "INTEGER", "value": "7680"},
                {"name": "PORTS", "type": "STRINGSET", "value": "22,2375,2376,51678,51679"},
                {"name": "PORTS_UDP", "type": "STRINGSET", "value": ""},
            ],
            "remainingResources": [
                {"name": "CPU", "type": "INTEGER", "value": "1664"},
                {"name": "MEMORY", "type": "INTEGER", "value": "6912"},
                {"name": "PORTS", "type": "STRINGSET", "value": "22,2375,2376,51678,51679,24224"},
                {"name": "PORTS_UDP", "type": "STRINGSET", "value": "24224"},
            ],
            "status": "ACTIVE",
            "versionInfo": {
                "agentHash": "3b1e9a7c",
                "agentVersion": "1.101.3",
                "dockerVersion": "DockerVersion: 25.0.8",
            },
            # blox-ecs additions, which v0.3 clients ignore:
            "runningTasksCount": 1,
            "pendingTasksCount": 1,
            "version": 318,
        },
    }
    assert len(attributes) == 55
    assert attributes[0] == {"name": "com.amazonaws.ecs.capability.logging-driver.json-file"}
    assert {"name": "stack", "value": "prod"} in attributes


def test_an_instance_without_ec2_id_leaves_the_field_out() -> None:
    instance = record("instance-deregistered")
    detail = {k: v for k, v in instance.detail.items() if k != "ec2InstanceId"}
    entity = wire(css.instance_public(ecs.Record(**{**_fields(instance), "detail": detail}), 3))
    assert "EC2InstanceID" not in entity["entity"]
    assert entity["entity"]["agentConnected"] is False
    assert entity["entity"]["status"] == "INACTIVE"


@pytest.mark.parametrize(
    ("resource", "value"),
    [
        ({"type": "INTEGER", "integerValue": 2048}, "2048"),
        ({"type": "LONG", "longValue": 17179869184}, "17179869184"),
        ({"type": "DOUBLE", "doubleValue": 0.5}, "0.50"),
        ({"type": "DOUBLE", "doubleValue": 3}, "3.00"),
        ({"type": "STRINGSET", "stringSetValue": ["22", "80"]}, "22,80"),
        ({"type": "STRINGSET", "stringSetValue": []}, ""),
        ({"type": "INTEGER"}, ""),
        ({"type": "INTEGER", "integerValue": "12"}, ""),
        ({"type": "DOUBLE", "doubleValue": True}, ""),
        ({"type": "BLOB"}, ""),
    ],
    ids=lambda x: json.dumps(x) if isinstance(x, dict) else repr(x),
)
def test_resource_values_are_strings_as_v03_wrote_them(
    resource: dict[str, Any], value: str
) -> None:
    assert css.resource_value(resource) == value


def test_a_detail_of_garbage_still_converts_without_raising() -> None:
    task = ecs.Record(
        kind="task",
        cluster_arn=f"{A}:cluster/x",
        arn=f"{A}:task/x/1",
        version=1,
        detail={"containers": [1, {"exitCode": "x", "networkBindings": [{}]}], "overrides": 3},
    )
    entity = wire(css.task_public(task, 1))["entity"]
    assert entity["clusterARN"] == f"{A}:cluster/x" and entity["taskARN"] == f"{A}:task/x/1"
    assert entity["containers"][0]["networkBindings"][0]["hostPort"] == 0


def test_epoch_timestamps_become_iso_strings() -> None:
    task = record("task-running")
    detail = dict(task.detail, createdAt=1700000000.5, startedAt=10**20)
    entity = wire(css.task_public(ecs.Record(**{**_fields(task), "detail": detail}), 1))
    assert entity["entity"]["createdAt"] == "2023-11-14T22:13:20.500000Z"
    assert "startedAt" not in entity["entity"]


def test_every_v03_error_text_is_kept_verbatim() -> None:
    assert texts.TASK_NOT_FOUND == "Task not found"
    assert texts.INSTANCE_NOT_FOUND == "Instance not found"
    assert texts.FILTERS_REPEATED == (
        "At least one of the filters provided is specified multiple times"
    )
    assert texts.UNEXPECTED_INTERNAL == "Unexpected internal server error"


def _fields(r: ecs.Record) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "cluster_arn": r.cluster_arn,
        "arn": r.arn,
        "version": r.version,
        "detail": r.detail,
    }
