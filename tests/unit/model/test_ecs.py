"""Stored records encode to bytes and back; anything else is rejected clearly."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from blox import errors
from blox.model import ecs

T0 = datetime(2026, 11, 21, 17, 41, 10, tzinfo=UTC)
TASK = ecs.Record(
    kind="task",
    cluster_arn="arn:aws:ecs:us-east-1:111122223333:cluster/fleet-a",
    arn="arn:aws:ecs:us-east-1:111122223333:task/fleet-a/357f8a30d7761a1100ff311968bba316",
    version=4,
    detail={"lastStatus": "STOPPED", "version": 4, "containers": [{"exitCode": 0}]},
    observed_at=T0,
)


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(TASK, id="live task"),
        pytest.param(ecs.Record("instance", "c", "i", None, {}), id="versionless instance"),
        pytest.param(
            ecs.Record("task", "c", "t", 9, {}, observed_at=T0, deleted_at=T0), id="tombstone"
        ),
    ],
)
def test_a_record_survives_encode_and_decode(record: ecs.Record) -> None:
    assert ecs.decode(ecs.encode(record)) == record


def test_a_tombstone_is_a_record_with_deleted_at() -> None:
    assert not TASK.is_tombstone
    assert ecs.Record("task", "c", "t", 1, {}, deleted_at=T0).is_tombstone


@pytest.mark.parametrize(
    "version", [None, -1, True, "4", 4.0], ids=["null", "negative", "bool", "string", "float"]
)
def test_a_stored_version_that_is_not_a_count_decodes_as_none(version: object) -> None:
    document = json.loads(ecs.encode(TASK))
    document["version"] = version
    assert ecs.decode(json.dumps(document).encode()).version is None
    del document["version"]
    assert ecs.decode(json.dumps(document).encode()).version is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"\xff\xfe", "not JSON", id="not UTF-8"),
        pytest.param(b"[]", "not a JSON object", id="a list"),
        pytest.param(b'{"kind":"service"}', "unknown kind", id="unknown kind"),
        pytest.param(b'{"kind":"task","arn":"t"}', "clusterArn or arn", id="no cluster"),
        pytest.param(
            b'{"kind":"task","arn":"t","clusterArn":"c","detail":"x"}', "detail", id="bad detail"
        ),
        pytest.param(
            b'{"kind":"task","arn":"t","clusterArn":"c","detail":{},"deletedAt":"soon"}',
            "timestamp",
            id="bad tombstone time",
        ),
    ],
)
def test_garbage_does_not_decode(data: bytes, problem: str) -> None:
    with pytest.raises(ecs.RecordInvalid, match=problem) as caught:
        ecs.decode(data)
    assert isinstance(caught.value, errors.Invalid)
