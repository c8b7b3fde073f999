"""`blox sim` as a user runs it: a real process publishing to moto's SQS, faults set by the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, DEFINITION, client, until

pytestmark = pytest.mark.e2e


def blox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blox", *args], capture_output=True, text=True, timeout=60
    )


class Queue:
    """Every envelope that reached the queue so far (received and deleted as we go)."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.bodies: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            self.bodies.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return self.bodies

    def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
        until(lambda: check(self.drain()), what=what)


def of_kind(bodies: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    return [b for b in bodies if b["detail-type"] == detail_type]


def test_blox_sim_up_serves_ecs_publishes_events_takes_cli_faults_and_stops_on_sigterm(
    moto_endpoint: str,
) -> None:
    sqs = client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"sim-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    queue = Queue(sqs, queue_url)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        *(sys.executable, "-m", "blox", "sim", "up", "--sink", "sqs"),
        *("--aws-endpoint-url", moto_endpoint, "--queue-url", queue_url),
        *("--port", str(port), "--instances", "3", "--seed", "1", "--pending-seconds", "0.2"),
    ]
    ecs = client("ecs", endpoint)
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up,
        httpx.Client(base_url=endpoint, timeout=5.0) as admin,
    ):
        try:
            until(lambda: _healthy(admin), what="the admin healthz")
            _exercise(ecs, queue, endpoint)
        finally:
            up.send_signal(signal.SIGTERM)
            assert up.wait(timeout=DEADLINE_S) == 0
            ecs.close()
            sqs.delete_queue(QueueUrl=queue_url)
            sqs.close()
        assert up.stdout is not None and up.stderr is not None
        lines = up.stdout.read().splitlines()
        assert json.loads(lines[-1]) == {"stopped": True}
        assert "Traceback" not in up.stderr.read()


def _healthy(admin: httpx.Client) -> bool:
    try:
        return admin.get("/_sim/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _exercise(ecs: Any, queue: Queue, endpoint: str) -> None:
    instances = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    instance_type = "ECS Container Instance State Change"
    queue.wait_for(lambda b: len(of_kind(b, instance_type)) >= 3, "the instance events")
    assert {b["resources"][0] for b in of_kind(queue.bodies, instance_type)} == set(instances)

    ecs.register_task_definition(**DEFINITION)
    task = ecs.start_task(
        cluster="default", taskDefinition="web", containerInstances=instances[:1]
    )["tasks"][0]["taskArn"]

    def task_events(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [b for b in bodies if b["resources"] == [task]]

    queue.wait_for(lambda b: len(task_events(b)) >= 2, "PENDING and RUNNING")
    seen = task_events(queue.bodies)
    assert [b["detail"]["lastStatus"] for b in seen] == ["PENDING", "RUNNING"]
    versions = [b["detail"]["version"] for b in seen]
    assert versions == sorted(versions) and len(set(versions)) == 2

    changed = blox("sim", "faults", "set", "duplicate_rate=1", "--endpoint", endpoint)
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["events"]["duplicate_rate"] == 1
    added = blox("sim", "add-instances", "--count", "2", "--endpoint", endpoint)
    assert added.returncode == 0, added.stderr
    new = json.loads(added.stdout)["containerInstanceArns"]
    listed = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert set(new) <= set(listed) and len(listed) == 5

    def duplicated(bodies: list[dict[str, Any]]) -> bool:
        ids = Counter(b["id"] for b in bodies if b["resources"][0] in new)
        return len(ids) == 2 and set(ids.values()) == {2}

    queue.wait_for(duplicated, "each new instance's event twice")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instances", "-1"], "--instances must be >= 0"),
        (["--sink", "sqs"], "--sink sqs needs --queue-url"),
        (["--fault", "drop_rate=7"], "drop_rate must be between 0 and 1"),
    ],
    ids=["negative instances", "sqs without queue", "rate out of range"],
)
def test_blox_sim_up_refuses_a_bad_value_in_one_line_without_a_traceback(
    args: list[str], message: str
) -> None:
    result = blox("sim", "up", "--port", str(free_port()), *args)

    assert result.returncode in (1, 2)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "Traceback" not in result.stderr


def test_blox_sim_commands_report_an_unreachable_simulator_in_one_line() -> None:
    result = blox("sim", "faults", "show", "--endpoint", f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: cannot reach the simulator")
