"""Task lifecycle and resource accounting of EcsState in fake time."""

from __future__ import annotations

import pytest

from blox.clock import ManualClock
from blox.sim import errors
from blox.sim.state import EcsState, EntityChange

from .conftest import register, remaining, task_definition


def test_a_started_task_reserves_resources_and_runs_after_its_jittered_delay(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    tasks, failures = state.start_task(cluster="c1", task_definition="web", instances=[arn])
    assert failures == []
    assert tasks[0]["lastStatus"] == "PENDING"
    assert remaining(state, arn)["CPU"] == 1024 - 256
    assert "8080" in remaining(state, arn)["PORTS"]
    clock._elapsed = 1.9  # before the shortest pending delay of 2 s
    assert state.tick() == 0
    clock._elapsed = 4.0
    assert state.tick() == 1
    described, _ = state.describe_tasks(cluster="c1", refs=[tasks[0]["taskArn"]])
    assert described[0]["lastStatus"] == "RUNNING"
    assert described[0]["containers"][0]["networkBindings"][0]["hostPort"] == 8080


def test_stop_task_stops_after_the_stopping_delay_and_releases_resources(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    task = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0]
    clock._elapsed = 5.0
    state.tick()
    stopping = state.stop_task(cluster="c1", task=task["taskArn"], reason="Scaling down")
    assert (stopping["desiredStatus"], stopping["lastStatus"]) == ("STOPPED", "RUNNING")
    clock._elapsed = 6.0
    state.tick()
    stopped = state.describe_tasks(cluster="c1", refs=[task["taskArn"]])[0][0]
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "Scaling down"
    assert stopped["containers"][0]["exitCode"] == 0
    assert remaining(state, arn)["CPU"] == 1024
    assert remaining(state, arn)["PORTS"] == sorted(["22", "2375", "2376", "51678", "51679"])


def test_stopped_tasks_stay_describable_for_the_retention_then_vanish(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    task_arn = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0][
        "taskArn"
    ]
    state.kill_task("c1", task_arn)
    clock._elapsed = 3599.0
    state.tick()
    assert state.describe_tasks(cluster="c1", refs=[task_arn])[1] == []
    clock._elapsed = 3601.0
    state.tick()
    assert state.describe_tasks(cluster="c1", refs=[task_arn])[1] == [
        {"arn": task_arn, "reason": "MISSING"}
    ]
    assert state.list_tasks(cluster="c1", desired_status="STOPPED") == ([], None)


def test_kill_task_records_exit_code_and_stop_code(state: EcsState) -> None:
    arn = register(state)
    task_arn = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0][
        "taskArn"
    ]
    killed = state.kill_task(
        "c1", task_arn, reason="OOM", stop_code="EssentialContainerExited", exit_code=137
    )
    assert killed["lastStatus"] == "STOPPED"
    assert killed["stopCode"] == "EssentialContainerExited"
    assert killed["containers"][0]["exitCode"] == 137


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        pytest.param(
            task_definition("big", cpu=4096, memory=64), "RESOURCE:CPU", id="too much cpu"
        ),
        pytest.param(
            task_definition("fat", cpu=1, memory=9999), "RESOURCE:MEMORY", id="too much memory"
        ),
        pytest.param(
            task_definition("ssh", cpu=1, memory=1, ports=[22]),
            "RESOURCE:PORTS",
            id="reserved port",
        ),
    ],
)
def test_start_task_reports_the_resource_that_does_not_fit(
    state: EcsState, definition: dict[str, object], reason: str
) -> None:
    arn = register(state)
    state.register_task_definition(definition)
    tasks, failures = state.start_task(
        cluster="c1", task_definition=str(definition["family"]), instances=[arn]
    )
    assert tasks == []
    assert failures == [{"arn": arn, "reason": reason}]


def test_start_task_refuses_missing_draining_and_disconnected_instances(state: EcsState) -> None:
    draining, disconnected, failing = register(state), register(state), register(state)
    state.update_container_instances_state(cluster="c1", refs=[draining], status="DRAINING")
    state.disconnect_agent("c1", disconnected)
    state.fail_starts("c1", [failing], reason="AGENT")
    _, failures = state.start_task(
        cluster="c1", task_definition="web", instances=["nope", draining, disconnected, failing]
    )
    assert [f["reason"] for f in failures] == ["MISSING", "DRAINING", "AGENT", "AGENT"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(
            lambda s: s.start_task(cluster="c1", task_definition="web", instances=["i"] * 11),
            errors.InvalidParameter,
            id="more than 10 instances",
        ),
        pytest.param(
            lambda s: s.run_task(cluster="c1", task_definition="web", count=11),
            errors.InvalidParameter,
            id="count above 10",
        ),
        pytest.param(
            lambda s: s.run_task(cluster="c1", task_definition="web", started_by="x" * 37),
            errors.InvalidParameter,
            id="startedBy longer than 36",
        ),
        pytest.param(
            lambda s: s.run_task(cluster="c1", task_definition="nope"),
            errors.InvalidParameter,
            id="unknown task definition",
        ),
        pytest.param(
            lambda s: s.describe_tasks(cluster="c1", refs=["t"] * 101),
            errors.InvalidParameter,
            id="more than 100 task ids",
        ),
        pytest.param(
            lambda s: s.list_tasks(cluster="nope"), errors.ClusterNotFound, id="unknown cluster"
        ),
        pytest.param(
            lambda s: s.stop_task(cluster="c1", task="nope"),
            errors.InvalidParameter,
            id="unknown task",
        ),
    ],
)
def test_bad_requests_raise_the_ecs_error_and_change_nothing(
    state: EcsState, changes: list[EntityChange], call: object, error: type[Exception]
) -> None:
    register(state)
    changes.clear()
    with pytest.raises(error):
        call(state)  # type: ignore[operator]
    assert changes == []
    assert state.list_tasks(cluster="c1") == ([], None)


def test_run_task_places_count_tasks_and_reports_failures_when_full(state: EcsState) -> None:
    register(state, cpu=512)
    tasks, failures = state.run_task(cluster="c1", task_definition="web", count=3)
    assert len(tasks) == 1  # one host port 8080 per instance
    assert failures[0]["reason"] == "RESOURCE:PORTS"


def test_placement_announces_the_task_then_its_instance_with_rising_versions(
    state: EcsState, changes: list[EntityChange], clock: ManualClock
) -> None:
    arn = register(state)
    changes.clear()
    task_arn = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0][
        "taskArn"
    ]
    clock._elapsed = 10.0
    state.tick()
    state.stop_task(cluster="c1", task=task_arn)
    clock._elapsed = 20.0
    state.tick()
    seen = [
        (c.kind, c.detail["version"], c.detail.get("lastStatus", c.detail.get("status")))
        for c in changes
    ]
    assert seen == [
        ("task", 1, "PENDING"),
        ("container_instance", 2, "ACTIVE"),
        ("task", 2, "RUNNING"),
        ("task", 3, "RUNNING"),
        ("task", 4, "STOPPED"),
        ("container_instance", 3, "ACTIVE"),
    ]
    assert changes[0].detail["createdAt"].tzinfo is not None
    assert "stoppedReason" not in changes[0].detail


def test_list_tasks_pages_follow_filters_and_never_repeat(state: EcsState) -> None:
    arns = [register(state, cpu=100_000, memory=100_000) for _ in range(3)]
    state.register_task_definition(task_definition("job", cpu=1, memory=1))
    started = []
    for i in range(25):
        tasks, _ = state.start_task(
            cluster="c1", task_definition="job", instances=[arns[i % 3]], started_by=f"g{i % 2}"
        )
        started.append(tasks[0]["taskArn"])
    seen: list[str] = []
    after = 0
    while True:
        page, last = state.list_tasks(cluster="c1", started_by="g0", after=after, limit=4)
        seen += page
        if last is None:
            break
        after = last
    assert seen == started[0::2]
    on_first, _ = state.list_tasks(cluster="c1", container_instance=arns[0], family="job")
    assert on_first == started[0::3]
