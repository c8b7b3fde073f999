"""A faulty event path converges: `blox sim up` drops, duplicates and reorders its events on the
way to moto's SQS, and `blox css` (reconciling against the simulator) ends at the simulator's truth.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, DEFINITION, client, until

pytestmark = pytest.mark.e2e

FAULTS = ("drop_rate=0.3", "duplicate_rate=1.0", "reorder_window=4", "reorder_hold_s=0.3")


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "blox", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return err


def _css_view(api: httpx.Client) -> dict[str, tuple[str, str]] | None:
    """ARN → (desired, last status) of every task, (status, "") of every instance, the CSS's."""
    try:
        tasks = api.get("/v1/tasks").json()["items"]
        instances = api.get("/v1/instances").json()["items"]
    except (httpx.TransportError, ValueError, KeyError):
        return None
    view = {t["entity"]["taskARN"]: _task(t["entity"]) for t in tasks}
    view.update(
        {i["entity"]["containerInstanceARN"]: (i["entity"]["status"], "") for i in instances}
    )
    return view


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def _task(task: dict[str, Any]) -> tuple[str, str]:
    return task["desiredStatus"], task["lastStatus"]


def _truth(ecs: Any) -> dict[str, tuple[str, str]]:
    """The same view of the simulator (v0.3 shows no ECS version, so statuses are compared)."""
    tasks = [
        *ecs.list_tasks(cluster="default", desiredStatus="RUNNING")["taskArns"],
        *ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"],
    ]
    instances = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    truth = {
        t["taskArn"]: _task(t) for t in ecs.describe_tasks(cluster="default", tasks=tasks)["tasks"]
    }
    described = ecs.describe_container_instances(cluster="default", containerInstances=instances)
    truth.update(
        {i["containerInstanceArn"]: (i["status"], "") for i in described["containerInstances"]}
    )
    return truth


def test_dropped_duplicated_reordered_events_converge_by_reconcile(
    moto_endpoint: str, tmp_path: Path
) -> None:
    sqs = client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"css-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sim_port, css_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    ecs = client("ecs", sim_url)
    sim = _popen(
        *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", moto_endpoint),
        *("--queue-url", queue_url, "--port", str(sim_port), "--instances", "6"),
        *("--seed", "7", "--pending-seconds", "0.2"),
        *(arg for fault in FAULTS for arg in ("--fault", fault)),
    )
    css = _popen(
        *("css", "--queue", queue_url, "--sqs-endpoint-url", moto_endpoint),
        *("--ecs-endpoint-url", sim_url, "--reconcile-interval", "2s"),
        *("--bind", f"127.0.0.1:{css_port}", "--data-dir", str(tmp_path), "--wait-time", "1"),
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{css_port}", timeout=5.0) as api:
            until(lambda: _css_view(api) is not None, what="the CSS API")
            until(lambda: _healthy(f"{sim_url}/_sim/healthz"), what="the simulator")
            instances = until(
                lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"],
                what="the simulator",
            )
            ecs.register_task_definition(**DEFINITION)
            started = []
            for _ in range(3):
                placed = ecs.start_task(
                    cluster="default", taskDefinition="web", containerInstances=instances
                )
                started += [t["taskArn"] for t in placed["tasks"]]
            assert len(started) == 18
            for task in started[:5]:
                ecs.stop_task(cluster="default", task=task, reason="e2e")
            until(
                lambda: all(
                    t["lastStatus"] in ("RUNNING", "STOPPED")
                    for t in ecs.describe_tasks(cluster="default", tasks=started)["tasks"]
                ),
                what="the simulator to settle",
            )
            truth = _truth(ecs)
            assert len(truth) == 24
            counters = httpx.get(f"{sim_url}/_sim/counters").json()["events"]
            assert counters["dropped"] > 0 and counters["duplicated"] > 0, counters
            until(lambda: _css_view(api) == truth, what="the CSS to converge on the truth")
            until(lambda: api.get("/readyz").status_code == 200, what="readiness")
            metrics = api.get("/metrics").text
            written = [
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("blox_css_reconcile_drift_repaired_total{")
                and 'action="written"' in line
            ]
            assert sum(written) > 0, "the reconciler repaired what the dropped events left"
    finally:
        try:
            _stop(css)
            _stop(sim)
        finally:
            ecs.close()
            sqs.delete_queue(QueueUrl=queue_url)
            sqs.close()


def _passes(api: httpx.Client) -> float:
    """Reconcile passes this replica ran, from its /metrics."""
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("blox_css_reconcile_duration_seconds_count"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no reconcile duration metric")


def test_two_replicas_on_one_etcd_share_ingest_and_one_reconciles(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Both replicas poll one queue into one etcd; the result is the simulator's truth (no
    faults, and no reconcile after the first: what converges here, ingest wrote), and only the
    elected replica ran that first reconcile pass."""
    etcd = EtcdServer(tmp_path / "etcd")
    etcd.start()
    sqs = client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"css-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    ecs = client("ecs", sim_url)
    sim = _popen(
        *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", moto_endpoint),
        *("--queue-url", queue_url, "--port", str(sim_port), "--instances", "8"),
        *("--seed", "3", "--pending-seconds", "0.2"),
    )
    ports = [free_port(), free_port()]
    replicas = [
        _popen(
            *("css", "--queue", queue_url, "--sqs-endpoint-url", moto_endpoint),
            *("--ecs-endpoint-url", sim_url, "--reconcile-interval", "1h"),
            *("--store", etcd.url, "--bind", f"127.0.0.1:{port}", "--wait-time", "1"),
        )
        for port in ports
    ]
    apis = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) for port in ports]
    try:
        until(lambda: _healthy(f"{sim_url}/_sim/healthz"), what="the simulator")
        for port in ports:
            until(lambda p=port: _healthy(f"http://127.0.0.1:{p}/readyz"), what="a ready replica")  # type: ignore[misc]
        instances = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        ecs.register_task_definition(**DEFINITION)
        started = []
        for _ in range(4):
            placed = ecs.start_task(
                cluster="default", taskDefinition="web", containerInstances=instances
            )
            started += [t["taskArn"] for t in placed["tasks"]]
        for task in started[::3]:
            ecs.stop_task(cluster="default", task=task, reason="e2e")
        until(
            lambda: all(
                t["lastStatus"] in ("RUNNING", "STOPPED")
                for t in ecs.describe_tasks(cluster="default", tasks=started)["tasks"]
            ),
            what="the simulator to settle",
        )
        truth = _truth(ecs)
        assert len(truth) == 8 + 32
        for api in apis:
            until(lambda a=api: _css_view(a) == truth, what="each replica to show the truth")  # type: ignore[misc]
        assert sorted(_passes(api) for api in apis) == [0, 1], "one leader reconciled, once"
    finally:
        try:
            for process in (*replicas, sim):
                _stop(process)
        finally:
            for api in apis:
                api.close()
            ecs.close()
            sqs.delete_queue(QueueUrl=queue_url)
            sqs.close()
            etcd.stop()
