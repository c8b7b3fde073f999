"""Container instances in EcsState: registration, status, attributes, agent, deregistration."""

from __future__ import annotations

import pytest

from blox.sim import errors
from blox.sim.state import EcsState, EntityChange

from .conftest import register, remaining


def test_registration_shows_typed_resources_and_default_attributes(state: EcsState) -> None:
    arn = register(state)
    described = state.describe_container_instances(cluster="c1", refs=[arn])[0][0]
    assert described["registeredResources"][0] == {
        "name": "CPU",
        "type": "INTEGER",
        "integerValue": 1024,
    }
    assert described["registeredResources"][2]["stringSetValue"] == [
        "22",
        "2375",
        "2376",
        "51678",
        "51679",
    ]
    names = {a["name"] for a in described["attributes"]}
    assert {"ecs.os-type", "ecs.instance-type", "ecs.availability-zone"} <= names
    assert (described["status"], described["agentConnected"], described["version"]) == (
        "ACTIVE",
        True,
        1,
    )
    assert state.describe_clusters(refs=["c1"])[0][0]["registeredContainerInstancesCount"] == 1


def test_list_container_instances_filters_by_status_and_pages(state: EcsState) -> None:
    arns = [register(state) for _ in range(5)]
    state.update_container_instances_state(cluster="c1", refs=arns[:2], status="DRAINING")
    draining, _ = state.list_container_instances(
        cluster="c1", status="DRAINING", after=0, limit=100
    )
    assert draining == arns[:2]
    first, last = state.list_container_instances(cluster="c1", status=None, after=0, limit=3)
    assert last is not None
    rest, end = state.list_container_instances(cluster="c1", status=None, after=last, limit=3)
    assert (first + rest, end) == (arns, None)


def test_draining_and_agent_changes_raise_the_instance_version_once_each(
    state: EcsState, changes: list[EntityChange]
) -> None:
    arn = register(state)
    state.update_container_instances_state(cluster="c1", refs=[arn], status="DRAINING")
    state.update_container_instances_state(cluster="c1", refs=[arn], status="DRAINING")
    state.disconnect_agent("c1", arn)
    state.reconnect_agent("c1", arn)
    seen = [(c.detail["version"], c.detail["status"], c.detail["agentConnected"]) for c in changes]
    assert seen == [
        (1, "ACTIVE", True),
        (2, "DRAINING", True),
        (3, "DRAINING", False),
        (4, "DRAINING", True),
    ]


def test_put_attributes_sets_custom_attributes_and_list_attributes_finds_them(
    state: EcsState,
) -> None:
    arn = register(state)
    state.put_attributes(
        cluster="c1", attributes=[{"name": "stack", "value": "prod", "targetId": arn}]
    )
    found = state.list_attributes(cluster="c1", name="stack", value="prod")
    assert found == [
        {"name": "stack", "targetType": "container-instance", "targetId": arn, "value": "prod"}
    ]


def test_put_attributes_checks_every_target_and_the_limit_before_changing_anything(
    state: EcsState, changes: list[EntityChange]
) -> None:
    arn = register(state)
    changes.clear()
    with pytest.raises(errors.TargetNotFound):
        state.put_attributes(
            cluster="c1",
            attributes=[{"name": "a", "targetId": arn}, {"name": "b", "targetId": "missing"}],
        )
    too_many = [{"name": f"k{i}", "value": "v", "targetId": arn} for i in range(10)]
    state.put_attributes(cluster="c1", attributes=too_many)
    with pytest.raises(errors.AttributeLimitExceeded):
        state.put_attributes(cluster="c1", attributes=[{"name": "k11", "targetId": arn}])
    assert len(changes) == 1


def test_deregistration_needs_force_when_tasks_run_and_then_stops_them(
    state: EcsState, changes: list[EntityChange]
) -> None:
    arn = register(state)
    task_arn = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0][
        "taskArn"
    ]
    with pytest.raises(errors.InvalidParameter):
        state.deregister_container_instance(cluster="c1", instance=arn)
    gone = state.deregister_container_instance(cluster="c1", instance=arn, force=True)
    assert (gone["status"], gone["agentConnected"]) == ("INACTIVE", False)
    assert state.describe_tasks(cluster="c1", refs=[task_arn])[0][0]["lastStatus"] == "STOPPED"
    assert state.list_container_instances(cluster="c1", status=None, after=0, limit=10) == (
        [],
        None,
    )
    assert changes[-1].kind == "container_instance"
    assert changes[-1].detail["status"] == "INACTIVE"


def test_clusters_with_instances_cannot_be_deleted(state: EcsState) -> None:
    arn = register(state)
    with pytest.raises(errors.ClusterContainsInstances):
        state.delete_cluster(cluster="c1")
    state.deregister_container_instance(cluster="c1", instance=arn)
    assert state.delete_cluster(cluster="c1")["status"] == "INACTIVE"
    with pytest.raises(errors.ClusterNotFound):
        state.list_tasks(cluster="c1")


def test_remaining_udp_ports_follow_placed_tasks(state: EcsState) -> None:
    from .conftest import task_definition

    arn = register(state)
    state.register_task_definition(task_definition("dns", cpu=1, memory=1, udp=[53]))
    state.start_task(cluster="c1", task_definition="dns", instances=[arn])
    assert remaining(state, arn)["PORTS_UDP"] == ["53"]
    _, failures = state.start_task(cluster="c1", task_definition="dns", instances=[arn])
    assert failures == [{"arn": arn, "reason": "RESOURCE:PORTS_UDP"}]
