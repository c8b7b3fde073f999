"""`blox sim up --state-file`: the simulated ECS keeps its state across restarts and crashes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.clock import ManualClock
from blox.sim import statefile
from blox.sim.state import EcsState, SimConfig, snapshot
from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, DEFINITION, client, until

pytestmark = pytest.mark.e2e

Ecs = Any


@contextmanager
def sim_up(path: Path, *args: str, kill: bool = False) -> Iterator[tuple[Ecs, dict[str, Any]]]:
    """`blox sim up --state-file path` on a free port: a boto3 ECS client and its ready line."""
    port = free_port()
    command = [sys.executable, "-m", "blox", "sim", "up", "--port", str(port)]
    command += ["--state-file", str(path), *args]
    ecs = client("ecs", f"http://127.0.0.1:{port}")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up:
        assert up.stdout is not None and up.stderr is not None
        try:
            line = up.stdout.readline()
            assert line, up.stderr.read()
            until(lambda: _healthy(port), what="the admin healthz")
            yield ecs, json.loads(line)
        finally:
            ecs.close()
            if kill:
                up.kill()  # SIGKILL: no last save, no flush
                up.wait(timeout=DEADLINE_S)
            else:
                up.send_signal(signal.SIGTERM)
                assert up.wait(timeout=DEADLINE_S) == 0
                assert json.loads(up.stdout.read().splitlines()[-1]) == {"stopped": True}
                assert "Traceback" not in up.stderr.read()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/_sim/healthz", timeout=5.0).status_code == 200
    except httpx.TransportError:
        return False


def described(ecs: Ecs, arns: list[str]) -> dict[str, dict[str, Any]]:
    tasks = ecs.describe_tasks(cluster="c1", tasks=arns)["tasks"]
    return {t["taskArn"]: t for t in tasks}


def status_is(ecs: Ecs, arn: str, status: str) -> bool:
    return bool(described(ecs, [arn])[arn]["lastStatus"] == status)


def test_a_restarted_simulator_serves_the_same_clusters_instances_tasks_and_definitions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.json"
    args = ("--cluster", "c1", "--instances", "2", "--seed", "5", "--pending-seconds", "3")
    with sim_up(path, *args) as (ecs, ready):
        assert "restored" not in ready
        instances = ecs.list_container_instances(cluster="c1")["containerInstanceArns"]
        ecs.register_task_definition(**DEFINITION)
        ecs.register_task_definition(**DEFINITION)
        attribute = {"name": "stack", "value": "blue", "targetId": instances[0]}
        ecs.put_attributes(cluster="c1", attributes=[attribute])
        started = ecs.start_task(cluster="c1", taskDefinition="web:1", containerInstances=instances)
        running, stopped = (t["taskArn"] for t in started["tasks"])
        until(lambda: status_is(ecs, running, "RUNNING"), what="web:1 RUNNING")
        until(lambda: status_is(ecs, stopped, "RUNNING"), what="the other web:1 RUNNING")
        ecs.stop_task(cluster="c1", task=stopped)
        until(lambda: status_is(ecs, stopped, "STOPPED"), what="the stopped task STOPPED")
        pending = ecs.start_task(
            cluster="c1", taskDefinition="web:2", containerInstances=instances[:1]
        )["tasks"][0]["taskArn"]
        before = described(ecs, [running, stopped, pending])

    saved = json.loads(path.read_text())
    saved_tasks = {t["arn"]: t for t in saved["tasks"]}
    assert saved_tasks[pending]["last_status"] == "PENDING"  # stopped within its 3 s
    assert {"step": "run", "seq": saved_tasks[pending]["seq"]} in [
        {"step": d["step"], "seq": d["seq"]} for d in saved["due"]
    ]

    with sim_up(path, *args, "--cluster", "c2") as (ecs, ready):
        assert ready["restored"] is True
        assert ecs.list_container_instances(cluster="c1")["containerInstanceArns"] == instances
        assert len(ecs.list_container_instances(cluster="c2")["containerInstanceArns"]) == 2
        after = described(ecs, [running, stopped])
        assert after == {arn: before[arn] for arn in (running, stopped)}
        assert set(ecs.list_tasks(cluster="c1")["taskArns"]) == {running, pending}
        assert ecs.list_tasks(cluster="c1", desiredStatus="STOPPED")["taskArns"] == [stopped]
        until(lambda: status_is(ecs, pending, "RUNNING"), what="the saved PENDING task RUNNING")
        assert described(ecs, [pending])[pending]["version"] == before[pending]["version"] + 1
        definition = ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]
        assert definition["revision"] == 2
        listed = ecs.list_attributes(cluster="c1", targetType="container-instance")["attributes"]
        assert {a.get("value") for a in listed if a["name"] == "stack"} == {"blue"}
        again = ecs.start_task(cluster="c1", taskDefinition="web:2", containerInstances=instances)
        assert again["failures"] == []
        assert not {t["taskArn"] for t in again["tasks"]} & {running, stopped, pending}


def test_a_killed_simulator_comes_back_with_its_last_periodic_save(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    args = ("--cluster", "c1", "--instances", "1", "--save-every", "0.2")
    with sim_up(path, *args, kill=True) as (ecs, _):
        ecs.register_task_definition(**DEFINITION)
        instance = ecs.list_container_instances(cluster="c1")["containerInstanceArns"][0]
        task = ecs.start_task(cluster="c1", taskDefinition="web", containerInstances=[instance])[
            "tasks"
        ][0]["taskArn"]
        until(lambda: task in path.read_text(), what="a periodic save with the task")

    with sim_up(path, *args) as (ecs, ready):
        assert ready["restored"] is True
        assert list(described(ecs, [task])) == [task]
        assert ecs.list_container_instances(cluster="c1")["containerInstanceArns"] == [instance]


def _valid_document(region: str = "us-east-1") -> dict[str, Any]:
    state = EcsState(clock=ManualClock(), config=SimConfig(region=region))
    state.create_cluster(name="default")
    return snapshot.dump(state)


def _without_tasks() -> bytes:
    document = _valid_document()
    del document["tasks"]
    return json.dumps(document).encode()


BAD_FILES = [
    ("not JSON", b"{not json", "is not JSON"),
    ("newer format", b'{"kind": "blox-sim-state", "format": 2}', "format: 2 is not supported"),
    ("missing field", _without_tasks(), "not a valid simulator snapshot: tasks: missing"),
    ("other region", json.dumps(_valid_document("eu-west-1")).encode(), "holds region eu-west"),
]


@pytest.mark.parametrize(
    ("content", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_a_bad_state_file_stops_start_up_in_one_line_and_is_left_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "sim.json"
    path.write_bytes(content)
    command = [sys.executable, "-m", "blox", "sim", "up", "--port", str(free_port())]

    result = subprocess.run(
        [*command, "--state-file", str(path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: state file {path} ") and message in line
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.json"]


def test_a_state_file_in_a_missing_folder_stops_start_up_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "sim.json"
    command = [sys.executable, "-m", "blox", "sim", "up", "--port", str(free_port())]

    result = subprocess.run(
        [*command, "--state-file", str(path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot write state file {path}")


def test_write_replaces_the_whole_file_and_leaves_no_temp_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    statefile.write(path, {"n": 1, "long": "x" * 10_000})

    statefile.write(path, {"n": 2})

    assert statefile.read(path) == {"n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.json"]
    assert statefile.read(tmp_path / "absent.json") is None
