"""`blox css` as a user runs it: the simulator publishes to moto's SQS, the CSS ingests and serves.

Both are real processes; the CSS keeps its state in a data folder and finds it again on restart.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, DEFINITION, client, until

pytestmark = pytest.mark.e2e


def _popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "blox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[list[str], str]:
    """SIGTERM, expect exit 0; the stdout lines and stderr."""
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out.splitlines(), err


def _get(api: httpx.Client, path: str) -> list[dict[str, Any]] | None:
    try:
        response = api.get(path)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _css(queue: str, moto: str, port: int, data_dir: Path) -> subprocess.Popen[str]:
    return _popen(
        *("css", "--queue", queue, "--endpoint-url", moto),
        *("--bind", f"127.0.0.1:{port}", "--data-dir", str(data_dir), "--wait-time", "1"),
    )


def _running(api: httpx.Client, tasks: set[str]) -> bool:
    items = _get(api, "/v1/tasks?cluster=default") or []
    status = {i["entity"]["taskARN"]: i["entity"]["lastStatus"] for i in items}
    return all(status.get(task) == "RUNNING" for task in tasks)


@dataclass
class Stack:
    """A running simulator and CSS, with clients for both."""

    api: httpx.Client
    ecs: Any
    port: int
    instances: list[str]
    css_lines: list[str]


@contextlib.contextmanager
def sim_and_css(moto: str, data_dir: Path) -> Iterator[Stack]:
    """`blox sim up` publishing to a fresh queue and `blox css` reading it; SIGTERM both after."""
    sqs = client("sqs", moto)
    queue_url = sqs.create_queue(QueueName=f"css-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sim_port, css_port = free_port(), free_port()
    ecs = client("ecs", f"http://127.0.0.1:{sim_port}")
    sim = _popen(
        *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", moto),
        *("--queue-url", queue_url, "--port", str(sim_port), "--instances", "3"),
        *("--seed", "1", "--pending-seconds", "0.2"),
    )
    css = _css(queue_url, moto, css_port, data_dir)
    lines: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{css_port}", timeout=5.0) as api:
            until(lambda: _get(api, "/v1/tasks") is not None, what="the CSS API")
            instances = until(
                lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"],
                what="the simulator",
            )
            yield Stack(api, ecs, css_port, instances, lines)
    finally:
        try:
            lines.extend(_stop(css)[0])
            _stop(sim)
        finally:
            ecs.close()
            sqs.delete_queue(QueueUrl=queue_url)
            sqs.close()
    ready = json.loads(lines[0])
    assert ready == {"api": f"http://127.0.0.1:{css_port}", "queue": queue_url} | {
        "store": ready["store"]
    }
    assert json.loads(lines[-1]) == {"stopped": True}


def _instances(api: httpx.Client, count: int) -> list[dict[str, Any]]:
    items = _get(api, "/v1/instances") or []
    return items if len(items) == count else []


def _start_tasks(stack: Stack) -> set[str]:
    stack.ecs.register_task_definition(**DEFINITION)
    started = stack.ecs.start_task(
        cluster="default", taskDefinition="web", containerInstances=stack.instances
    )["tasks"]
    tasks = {t["taskArn"] for t in started}
    assert len(tasks) == 3
    until(lambda: _running(stack.api, tasks), what="3 RUNNING tasks in the CSS")
    return tasks


def test_css_ingests_the_simulators_events_serves_them_and_keeps_them_over_a_restart(
    moto_endpoint: str, tmp_path: Path
) -> None:
    with sim_and_css(moto_endpoint, tmp_path) as stack:
        tasks = _start_tasks(stack)
        seen = until(lambda: _instances(stack.api, 3), what="3 instances in the CSS")
        assert {i["entity"]["containerInstanceARN"] for i in seen} == set(stack.instances)
    assert str(tmp_path / "css.db") in json.loads(stack.css_lines[0])["store"]

    sqs = client("sqs", moto_endpoint)  # an empty queue: what it shows comes from the store
    empty = sqs.create_queue(QueueName=f"css-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    port = free_port()
    again = _css(empty, moto_endpoint, port, tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as api:
            until(lambda: _running(api, tasks), what="the tasks kept in the data folder")
            assert len(_instances(api, 3)) == 3
    finally:
        try:
            _stop(again)
        finally:
            sqs.delete_queue(QueueUrl=empty)
            sqs.close()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--queue", "q", "--bind", "nonsense"), "--bind"),
        (("--queue", "kinesis://a/b"), "not a Kinesis stream"),
        (("--queue", "q", "--store", "memory://", "--etcd-endpoint", "127.0.0.1:2379"), "disagree"),
        (("--queue", "q", "--reconcile-interval", "soon"), "--reconcile-interval"),
        (("--queue", "q", "--reconcile-interval", "0.5s"), "at least 1s"),
        (("--queue", "q", "--tombstone-ttl", "-1h"), "--tombstone-ttl"),
        (("--queue", "q", "--log-format", "xml"), "--log-format"),
        (("--queue", "q", "--visibility-timeout", "0"), "--visibility-timeout"),
        (("--queue", "q", "--log-level", "loud"), "--log-level"),
    ],
)
def test_css_refuses_bad_flags_in_one_line(flags: tuple[str, ...], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "blox", "css", "--endpoint-url", "http://127.0.0.1:9", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_css_ingests_a_kinesis_stream(moto_endpoint: str, tmp_path: Path) -> None:
    """`--queue kinesis://name`: every shard read, the events served, checkpoints kept."""
    kinesis = client("kinesis", moto_endpoint)
    stream = f"ecs-{uuid.uuid4().hex[:12]}"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    until(
        lambda: (
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE"
        ),
        what="the stream",
    )
    fixtures = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "ecs-events"
    bodies = [p.read_text() for p in sorted(fixtures.glob("task-*.json"))]
    for n, body in enumerate(bodies):
        kinesis.put_record(StreamName=stream, Data=body.encode(), PartitionKey=str(n))
    expected = {json.loads(b)["detail"]["taskArn"] for b in bodies}
    port = free_port()
    css = _popen(
        *("css", "--queue", f"kinesis://{stream}", "--endpoint-url", moto_endpoint),
        *("--bind", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)),
        *("--reconcile-interval", "0"),
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as api:
            seen = until(
                lambda: {i["entity"]["taskARN"] for i in _get(api, "/v1/tasks") or []} >= expected,
                what="the Kinesis events in the CSS",
            )
            assert seen
    finally:
        lines, _ = _stop(css)
        kinesis.close()
    assert json.loads(lines[0])["queue"].endswith(f":stream/{stream}")
