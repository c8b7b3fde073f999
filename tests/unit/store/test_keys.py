"""The key layout keeps clusters of one name in different accounts apart."""

from __future__ import annotations

import pytest

from blox.store import keys

EAST = "arn:aws:ecs:us-east-1:111111111111:cluster/prod"
CHINA = "arn:aws-cn:ecs:cn-north-1:222222222222:cluster/prod"
TASK = "arn:aws:ecs:us-east-1:111111111111:task/prod/0b69d5c0d3d44f2b9f8b8e5c1c2b1f7a"


def test_clusters_of_one_name_in_two_accounts_do_not_share_a_prefix() -> None:
    assert not keys.task(EAST, TASK).startswith(keys.tasks_of(CHINA))
    assert keys.task(EAST, TASK).startswith(keys.tasks_of(EAST))


def test_a_cluster_prefix_does_not_match_a_longer_cluster_name() -> None:
    longer = EAST + "-2"
    assert not keys.task(longer, TASK).startswith(keys.tasks_of(EAST))
    assert not keys.instance(longer, "ci").startswith(keys.instances_of(EAST))


def test_split_returns_the_owner_prefix_and_the_arn() -> None:
    assert keys.split(keys.task(EAST, TASK)) == (keys.tasks_of(EAST), TASK)
    assert keys.split(keys.deployment("env", "d-1")) == (keys.deployments_of("env"), "d-1")
    with pytest.raises(ValueError, match="not a record key"):
        keys.split("no-separator")


def test_environments_and_deployments_live_apart_from_ecs_records() -> None:
    assert keys.environment("daemon").startswith(keys.ENVIRONMENTS)
    assert not keys.environment("daemon").startswith(keys.TASKS)


def test_record_picks_the_task_or_instance_key_by_kind() -> None:
    instance_arn = "arn:aws:ecs:us-east-1:111111111111:container-instance/prod/0ae71c5f"
    assert keys.record("task", EAST, TASK) == keys.task(EAST, TASK)
    assert keys.record("instance", EAST, instance_arn) == keys.instance(EAST, instance_arn)
    assert keys.record("task", EAST, TASK) != keys.record("task", CHINA, TASK)
    with pytest.raises(ValueError, match="not a record kind"):
        keys.record("service", EAST, TASK)  # type: ignore[arg-type]
