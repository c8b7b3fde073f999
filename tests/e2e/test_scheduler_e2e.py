"""`blox scheduler` as users run it: two replicas on one etcd, the CSS and the simulator.

The leading replica is killed (SIGKILL) in the middle of a rolling update; the standby takes
over within the lease TTL, the rollout completes, and the simulator's own task history proves
that no container instance ever ran two tasks of the environment at once.
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from tests.e2e.aws import client, until

pytestmark = [pytest.mark.e2e, pytest.mark.etcd]

INSTANCES = 6
DEADLINE_S = 60.0


def definition(image: str) -> dict[str, Any]:
    return {
        "family": "daemon",
        "containerDefinitions": [{"name": "main", "image": image, "cpu": 64, "memory": 128}],
    }


class Processes:
    """Subprocesses of this test, their logs in files (no pipe fills), all killed at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [sys.executable, "-m", "blox", *args], stdout=log, stderr=subprocess.STDOUT
            )
        self.running.append(process)
        return process

    def close(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _leads(url: str) -> bool:
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.TransportError:
        return False
    return "blox_scheduler_leader 1.0" in text


def _env_tasks(ecs: Any, *, desired: str = "RUNNING") -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="default", desiredStatus=desired)["taskArns"]
    tasks = []
    for first in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster="default", tasks=arns[first : first + 100])["tasks"]
    return [t for t in tasks if t.get("group", "").startswith("blox:web:")]


def _rolled_out(ecs: Any) -> bool:
    running = [t for t in _env_tasks(ecs) if t["lastStatus"] == "RUNNING"]
    on = {t["containerInstanceArn"] for t in running}
    new = all(t["taskDefinitionArn"].endswith(":2") for t in running)
    return new and len(running) == INSTANCES and len(on) == INSTANCES


def _overlaps(tasks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of tasks that were RUNNING on one instance at the same time."""
    by_instance: defaultdict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for t in tasks:
        if "startedAt" not in t:
            continue
        end = t.get("stoppedAt") or datetime.max.replace(tzinfo=t["startedAt"].tzinfo)
        by_instance[t["containerInstanceArn"]].append((t["startedAt"], end, t["taskArn"]))
    pairs = []
    for spans in by_instance.values():
        spans.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if start < end:
                pairs.append((first, second))
    return pairs


def test_a_leader_killed_mid_rollout_never_causes_two_tasks_on_one_instance(
    moto_endpoint: str, tmp_path: Path, processes: Processes
) -> None:
    etcd = EtcdServer(tmp_path / "etcd")
    etcd.start()
    sqs = client("sqs", moto_endpoint)
    queue = sqs.create_queue(QueueName=f"css-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sim, css = f"http://127.0.0.1:{free_port()}", free_port()
    ecs = client("ecs", sim)
    opened: list[httpx.Client] = []
    try:
        processes.spawn(
            "sim",
            *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", moto_endpoint),
            *("--queue-url", queue, "--port", sim.rsplit(":", 1)[1]),
            *("--instances", str(INSTANCES), "--seed", "4", "--pending-seconds", "0.3"),
        )
        processes.spawn(
            "css",
            *("css", "--queue", queue, "--sqs-endpoint-url", moto_endpoint),
            *("--ecs-endpoint-url", sim, "--reconcile-interval", "0", "--wait-time", "1"),
            *("--bind", f"127.0.0.1:{css}", "--data-dir", str(tmp_path / "css")),
        )
        ports = [free_port(), free_port()]
        replicas = {
            port: processes.spawn(
                f"scheduler-{port}",
                *("scheduler", "--store", etcd.url, "--bind", f"127.0.0.1:{port}"),
                *("--css-endpoint", f"127.0.0.1:{css}", "--ecs-endpoint-url", sim),
                *("--resync", "1s"),
            )
            for port in ports
        }
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        until(lambda: _answers(f"{sim}/_sim/healthz"), what="the simulator")
        until(lambda: all(_answers(f"{u}/v1/ping") for u in urls), what="both schedulers")
        ecs.register_task_definition(**definition("nginx:1"))
        api = httpx.Client(base_url=urls[0], timeout=10)
        opened.append(api)
        created = api.post(
            "/v1/environments",
            json={
                "name": "web",
                "instanceGroup": {"cluster": "default"},
                "taskDefinition": "daemon",
            },
        )
        assert created.status_code == 200, created.text
        token = created.json()["deploymentToken"]
        assert (
            api.post(f"/v1/environments/web/deployments?deploymentToken={token}").status_code == 200
        )
        until(
            lambda: len([t for t in _env_tasks(ecs) if t["lastStatus"] == "RUNNING"]) == INSTANCES,
            what="one task on every instance",
            deadline_s=DEADLINE_S,
        )

        until(
            lambda: (
                api.get("/v1/environments/web/deployments").json()["items"][0]["status"]
                == "completed"
            ),
            what="the first deployment to complete",
        )
        ecs.register_task_definition(**definition("nginx:2"))
        updated = api.patch(
            "/v1/environments/web",
            json={"taskDefinition": "daemon:2", "rollout": {"maxUnavailable": "2"}},
        )
        assert updated.status_code == 200, updated.text
        token = updated.json()["deploymentToken"]
        assert (
            api.post(f"/v1/environments/web/deployments?deploymentToken={token}").status_code == 200
        )
        leader = until(lambda: next((u for u in urls if _leads(u)), ""), what="a leader")
        until(
            lambda: any(t["taskDefinitionArn"].endswith(":2") for t in _env_tasks(ecs)),
            what="the rollout to begin",
        )
        killed = replicas[int(leader.rsplit(":", 1)[1])]
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        survivor = next(u for u in urls if u != leader)
        until(lambda: _leads(survivor), what="the standby to take over", deadline_s=30)
        until(lambda: _rolled_out(ecs), what="the rollout to complete", deadline_s=DEADLINE_S)

        history = _env_tasks(ecs) + _env_tasks(ecs, desired="STOPPED")
        assert _overlaps(history) == [], "two tasks of one environment ran on one instance"
        assert len({t["containerInstanceArn"] for t in history}) == INSTANCES
    finally:
        for http in opened:
            http.close()
        ecs.close()
        sqs.delete_queue(QueueUrl=queue)
        sqs.close()
        processes.close()
        etcd.stop()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--bind", "nonsense"), "--bind"),
        (("--css-endpoint", "x"), "--css-endpoint"),
        (("--store", "memory://", "--etcd-endpoint", "127.0.0.1:2379"), "disagree"),
        (("--store", "nosuch://x"), "unknown scheme"),
        (("--resync", "soon"), "--resync"),
        (("--resync", "0"), "--resync"),
        (("--log-format", "xml"), "--log-format"),
    ],
)
def test_scheduler_refuses_bad_flags_in_one_line(flags: tuple[str, ...], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "blox", "scheduler", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_scheduler_says_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "blox", "scheduler", "--bind", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
