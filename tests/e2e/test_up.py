"""`blox up` as a user runs it: one real process composing moto, the BloxLocal stack, the
simulator, the CSS and the scheduler; stopped by a signal, restarted on the same data dir."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from blox.testing.up import BloxUp, processes_mentioning
from tests.e2e.aws import DEFINITION, client, until

pytestmark = pytest.mark.e2e

DEADLINE_S = 60.0
BLOX = (sys.executable, "-m", "blox")


def _running_tasks(css: str, *, count: int | None = None) -> dict[str, str]:
    """task ARN → container instance ARN of every RUNNING task the CSS shows; with `count`,
    nothing ({}) unless there are exactly that many."""
    page = httpx.get(f"{css}/v1/tasks", params={"status": "RUNNING"}, timeout=10).json()
    tasks = {
        item["entity"]["taskARN"]: item["entity"].get("containerInstanceARN", "")
        for item in page["items"]
    }
    return tasks if count is None or len(tasks) == count else {}


def _deploy(scheduler: str, name: str, cluster: str) -> None:
    body = {"name": name, "instanceGroup": {"cluster": cluster}, "taskDefinition": "web"}
    created = httpx.post(f"{scheduler}/v1/environments", json=body, timeout=10)
    assert created.status_code == 200, created.text
    token = created.json()["deploymentToken"]
    deployed = httpx.post(
        f"{scheduler}/v1/environments/{name}/deployments",
        params={"deploymentToken": token},
        timeout=10,
    )
    assert deployed.status_code == 200, deployed.text


def test_blox_up_runs_everything_rolls_out_and_keeps_its_state_over_a_restart(
    tmp_path: Path,
) -> None:
    with BloxUp(tmp_path, "--instances", "3") as up:
        summary = up.summary
        css, scheduler = summary["css"], summary["scheduler"]
        assert summary["instances"] == 3
        assert summary["stores"] == [
            f"sqlite:{tmp_path / 'blox.db'}",
            f"sqlite:{tmp_path / 'scheduler.db'}",
        ]
        assert httpx.get(f"{css}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{scheduler}/v1/ping", timeout=10).status_code == 200
        # the simulator's instances reached the CSS through EventBridge → SQS (or the reconciler)
        instances = until(
            lambda: httpx.get(f"{css}/v1/instances", timeout=10).json()["items"],
            deadline_s=DEADLINE_S,
            what="the demo cluster's instances in the CSS",
        )
        assert len(instances) == 3
        _deploy(scheduler, "web", "demo")
        placed = until(
            lambda: _running_tasks(css, count=3),
            deadline_s=DEADLINE_S,
            what="one RUNNING task per instance",
        )
        assert sorted(placed.values()) == sorted(
            i["entity"]["containerInstanceARN"] for i in instances
        )
        moto_port = up.moto_port
        status, out, err = up.stop(signal.SIGINT)
        assert status == 0, err
        assert out.strip().splitlines()[-1] == '{"stopped": true}'
    assert processes_mentioning(f"moto.server -H 127.0.0.1 -p {moto_port}") == []

    with BloxUp(tmp_path, "--instances", "3") as again:
        css, scheduler = again.summary["css"], again.summary["scheduler"]
        environment = httpx.get(f"{scheduler}/v1/environments/web", timeout=10)
        assert environment.status_code == 200  # the scheduler's SQLite file kept it
        # the simulator's state file kept the cluster: the same tasks, nothing started twice
        time.sleep(3)  # a few controller passes
        assert _running_tasks(css) == placed
        assert len(httpx.get(f"{css}/v1/instances", timeout=10).json()["items"]) == 3


def test_events_reach_the_css_through_the_bloxlocal_rule_and_queue(tmp_path: Path) -> None:
    """With the reconciler off, what the CSS shows can only have come as events: simulator →
    EventBridge PutEvents → the stack's rule → its queue → the CSS."""
    with BloxUp(tmp_path, "--instances", "2", "--reconcile-interval", "0") as up:
        _deploy(up.summary["scheduler"], "web", "demo")
        placed = until(
            lambda: _running_tasks(up.summary["css"], count=2),
            deadline_s=DEADLINE_S,
            what="the tasks' events in the CSS",
        )
        sqs = client("sqs", up.summary["moto"])
        attributes = sqs.get_queue_attributes(
            QueueUrl=up.summary["queue"], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        assert "blox_queue_dlq" in attributes["RedrivePolicy"]  # the stack's queue, not another
    assert len(placed) == 2


def test_blox_up_killed_with_sigkill_leaves_no_moto_behind(tmp_path: Path) -> None:
    up = BloxUp(tmp_path)
    with up:
        assert processes_mentioning(f"moto.server -H 127.0.0.1 -p {up.moto_port}")
        assert up.process is not None
        up.process.kill()
        up.process.wait(timeout=30)
    assert processes_mentioning(f"moto.server -H 127.0.0.1 -p {up.moto_port}") == []


@pytest.mark.etcd
def test_blox_up_keeps_both_services_on_one_etcd(tmp_path: Path) -> None:
    # its own etcd: the session's holds other tests' environments and records
    etcd_server = EtcdServer(tmp_path / "etcd")
    etcd_server.start()
    try:
        _both_on_one_etcd(tmp_path / "data", etcd_server)
    finally:
        etcd_server.stop()


def _both_on_one_etcd(tmp_path: Path, etcd_server: EtcdServer) -> None:
    with BloxUp(tmp_path, "--store", etcd_server.url, "--instances", "2") as up:
        assert up.summary["stores"] == [etcd_server.url]
        _deploy(up.summary["scheduler"], "etcd-web", "demo")
        until(
            lambda: len(_running_tasks(up.summary["css"])) == 2,
            deadline_s=DEADLINE_S,
            what="two tasks",
        )

        def keys(prefix: str) -> list[str]:
            listed = subprocess.run(
                [*BLOX, "store", "list", prefix, "-o", "json", "--store", etcd_server.url],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return [json.loads(line)["key"] for line in listed.stdout.splitlines()]

        assert keys("scheduler/environments/") == ["scheduler/environments/etcd-web"]
        assert len(keys("ecs/tasks/")) == 2  # the CSS's records, beside the scheduler's


def test_blox_up_with_aws_reads_the_given_queue_and_calls_the_aws_endpoints(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """--aws: no moto, stack or simulator of its own; the usual AWS settings say where AWS is.

    Here "AWS" is moto's SQS and a simulator, named by botocore's AWS_ENDPOINT_URL_<SERVICE>.
    """
    queue = client("sqs", moto_endpoint).create_queue(QueueName="fleet-events")["QueueUrl"]
    ecs_url = f"http://127.0.0.1:{free_port()}"
    sim_args = ["sim", "up", "--port", ecs_url.rsplit(":", 1)[1], "--instances", "2"]
    sim_args += ["--sink", "sqs", "--queue-url", queue, "--aws-endpoint-url", moto_endpoint]
    with (tmp_path / "sim.log").open("wb") as log:
        sim = subprocess.Popen([sys.executable, "-m", "blox", *sim_args], stdout=log, stderr=log)
    try:
        ecs = client("ecs", ecs_url)
        until(lambda: _answers(f"{ecs_url}/_sim/counters"), what="the simulator")
        ecs.register_task_definition(**DEFINITION)
        aws = {
            "AWS_ENDPOINT_URL_ECS": ecs_url,
            "AWS_ENDPOINT_URL_SQS": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        with BloxUp(tmp_path / "data", "--aws", "--queue", queue, env=aws) as up:
            assert (up.summary["ecs"], up.summary["moto"], up.summary["queue"]) == (
                None,
                None,
                queue,
            )
            assert not (tmp_path / "data" / "moto.log").exists()
            _deploy(up.summary["scheduler"], "web", "default")
            placed = until(
                lambda: _running_tasks(up.summary["css"], count=2),
                deadline_s=DEADLINE_S,
                what="a task on each of the simulator's instances",
            )
        assert set(placed) == set(ecs.list_tasks(cluster="default")["taskArns"])
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _blox_up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blox", "up", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_blox_up_once_reports_when_ready_then_stops_everything(tmp_path: Path) -> None:
    result = _blox_up(
        "--data-dir", str(tmp_path), "--once", "--json", "--css-port", "0",
        "--scheduler-port", "0", "--sim-port", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ready, stopped = (json.loads(line) for line in result.stdout.splitlines())
    assert ready["instances"] == 3 and ready["cluster"] == "demo"
    assert stopped == {"stopped": True}
    moto_port = ready["moto"].rsplit(":", 1)[1]
    assert processes_mentioning(f"moto.server -H 127.0.0.1 -p {moto_port}") == []
    text = _blox_up("--data-dir", str(tmp_path), "--once", "--css-port", "0",
                    "--scheduler-port", "0", "--sim-port", "0")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "blox-ecs is up" in text.stdout
    assert "env create web --cluster demo --task-definition web" in text.stdout


def test_a_port_in_use_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _blox_up("--data-dir", str(tmp_path), "--sim-port", "0", "--css-port", str(port))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_dir_that_is_not_writable_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _blox_up("--data-dir", str(blocker / "data"), "--once")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: the data dir {blocker / 'data'} is not writable")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aws"], "--aws needs --queue"),
        (["--queue", "q"], "--queue is for --aws"),
        (["--demo", "--aws", "--queue", "q"], "--demo runs on the simulator"),
        (["--instances", "-1"], "--instances must be >= 0"),
        (["--sim-port", "2000", "--scheduler-port", "2000"], "are both 2000"),
        (["--reconcile-interval", "soon"], "--reconcile-interval must be a duration"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _blox_up("--data-dir", str(tmp_path), *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "moto.log").exists()  # nothing was started
