"""SIGKILL of `blox css` in the middle of a batch loses no event, on SQLite and on etcd.

Two lanes run side by side, one per store: a simulator publishing to its own moto SQS queue and
a `blox css` subprocess reading it (one on an SQLite file, one on the real etcd server). While
tasks start and stop, both CSSs are killed with SIGKILL holding received, unacked messages, and
restarted on the same store. Once each simulator is quiet and each queue is empty, every task
and instance the CSS shows must be the simulator's latest state, at the simulator's version.
No reconciler runs: this is ingest alone (ack only after apply, redelivery after the visibility
timeout, idempotent apply). The wait for that redelivery is most of this test's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.model import ecs as model
from blox.store import keys, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, DEFINITION, client, until

pytestmark = [pytest.mark.e2e, pytest.mark.etcd, pytest.mark.slow]

INSTANCES = 10  # one StartTask call places a task on each (the ECS limit is 10)
ROUNDS = 15  # StartTask calls before the kill; a task makes ~6 events (3 own, 3 on its instance)
LIVE_TASKS = 30  # beyond this many, each round stops the oldest tasks
TAIL = 30  # a CSS is killed while fewer messages than this wait behind its batch
KILL_ATTEMPTS = 10  # bursts of changes, or kills that found no batch in hand, per lane
REDELIVERY_S = 3  # blox css receives with --visibility-timeout 3
DRAIN_DEADLINE_S = REDELIVERY_S + 30.0
QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)

Truth = tuple[dict[str, Any], dict[str, Any]]  # tasks and instances by ARN, as ECS describes them


@dataclass
class Processes:
    """Every subprocess the test started; `close` kills what still runs (also on failure)."""

    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m blox ARGS`; stdout and stderr go to files, so no pipe ever fills."""
        with (
            open(self.logs / f"{name}.out", "wb") as out,
            open(self.logs / f"{name}.err", "wb") as err,
        ):
            process = subprocess.Popen(
                [sys.executable, "-m", "blox", *args], stdout=out, stderr=err
            )
        self.started.append(process)
        return process

    def ready(self, name: str, process: subprocess.Popen[bytes]) -> dict[str, Any]:
        """The JSON line a server prints when it serves; fails at once if it exited."""

        def line() -> str:
            assert process.poll() is None, (self.logs / f"{name}.err").read_text()
            text = (self.logs / f"{name}.out").read_text()
            return text.partition("\n")[0] if "\n" in text else ""

        found: dict[str, Any] = json.loads(until(line, what=f"{name} to serve"))
        return found

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@dataclass
class Lane:
    """One store's lane: a simulator and its queue, the load on it, and the CSS reading it."""

    name: str
    store: str
    moto: str
    sqs: Any
    http: httpx.Client
    processes: Processes
    cluster: str = field(default_factory=lambda: f"kill-{uuid.uuid4().hex[:10]}")
    queue_url: str = ""
    ecs: Any = None
    sim_port: int = 0
    instances: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # every task ever started
    live: list[str] = field(default_factory=list)  # started and not yet asked to stop
    css: subprocess.Popen[bytes] | None = None
    css_runs: int = 0
    api: str = ""

    @property
    def css_name(self) -> str:
        return f"css-{self.name}-{self.css_runs}"

    def create_queue(self, stack: contextlib.ExitStack) -> None:
        """The lane's queue, deleted when `stack` closes."""
        name = f"kill-{self.name}-{uuid.uuid4().hex[:8]}"
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        stack.callback(self.sqs.delete_queue, QueueUrl=self.queue_url)

    def start_sim(self, stack: contextlib.ExitStack) -> None:
        """The simulator publishing to the lane's queue, with a cluster of its own."""
        self.sim_port = free_port()
        sim = self.processes.spawn(
            f"sim-{self.name}",
            *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", self.moto),
            *("--queue-url", self.queue_url, "--port", str(self.sim_port)),
            *("--cluster", self.cluster, "--instances", str(INSTANCES)),
            *("--seed", "7", "--pending-seconds", "0.2"),
        )
        self.instances = self.processes.ready(f"sim-{self.name}", sim)["clusters"][self.cluster]
        self.ecs = client("ecs", f"http://127.0.0.1:{self.sim_port}")
        stack.callback(self.ecs.close)
        self.ecs.register_task_definition(**DEFINITION)

    def start_css(self) -> None:
        """A new `blox css` on this lane's store and queue; returns once it serves."""
        self.css_runs += 1
        port = free_port()
        self.css = self.processes.spawn(
            self.css_name,
            *("css", "--queue", self.queue_url, "--endpoint-url", self.moto, "--store", self.store),
            *("--bind", f"127.0.0.1:{port}", "--wait-time", "1"),
            *("--visibility-timeout", str(REDELIVERY_S), "--reconcile-interval", "0"),
        )
        self.api = f"http://127.0.0.1:{port}"
        ready = self.processes.ready(self.css_name, self.css)
        assert ready == {"api": self.api, "store": self.store, "queue": self.queue_url}

    def kill_css(self) -> None:
        """SIGKILL: no shutdown path runs; the batch in hand is neither finished nor acked."""
        assert self.css is not None
        self.css.send_signal(signal.SIGKILL)
        assert self.css.wait(timeout=30) == -signal.SIGKILL

    def stop_css(self) -> None:
        """SIGTERM: a clean exit, the last line `{"stopped": true}`, no traceback."""
        assert self.css is not None
        self.css.send_signal(signal.SIGTERM)
        assert self.css.wait(timeout=30) == 0
        out = (self.processes.logs / f"{self.css_name}.out").read_text().splitlines()
        assert json.loads(out[-1]) == {"stopped": True}
        err = (self.processes.logs / f"{self.css_name}.err").read_text()
        assert "Traceback" not in err, err

    def round(self, *, burst: bool = False) -> None:
        """Start a task on every instance; stop the oldest beyond LIVE_TASKS (all, in a burst)."""
        stopping = (
            self.live if burst else self.live[: max(0, len(self.live) + INSTANCES - LIVE_TASKS)]
        )
        for task in stopping:
            self.ecs.stop_task(cluster=self.cluster, task=task)
        self.live = self.live[len(stopping) :]
        response = self.ecs.start_task(
            cluster=self.cluster, taskDefinition="web", containerInstances=self.instances
        )
        assert response["failures"] == []
        arns = [t["taskArn"] for t in response["tasks"]]
        self.started += arns
        self.live += arns

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every task or instance record of the lane's cluster, from the CSS API."""
        response = self.http.get(f"{self.api}/v1/{kind}", params={"cluster": self.cluster})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def queue(self) -> dict[str, int]:
        """The queue's visible, in-flight and delayed message counts (exact on moto)."""
        found = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=list(QUEUE_COUNTS)
        )
        return {name: int(found["Attributes"][name]) for name in QUEUE_COUNTS}

    def drained(self) -> bool:
        """Nothing left in the queue: every message was applied and deleted."""
        return not any(self.queue().values())

    def truth(self) -> Truth:
        """The simulator's tasks and instances by ARN: DescribeTasks, DescribeContainerInstances."""
        tasks: dict[str, Any] = {}
        for start in range(0, len(self.started), 100):
            page = self.ecs.describe_tasks(
                cluster=self.cluster, tasks=self.started[start : start + 100]
            )
            assert page["failures"] == []
            tasks |= {t["taskArn"]: t for t in page["tasks"]}
        described = self.ecs.describe_container_instances(
            cluster=self.cluster, containerInstances=self.instances
        )
        return tasks, {i["containerInstanceArn"]: i for i in described["containerInstances"]}

    def settled(self) -> bool:
        """No task between states: none PENDING, and RUNNING exactly those not asked to stop."""
        cluster = self.ecs.describe_clusters(clusters=[self.cluster])["clusters"][0]
        return bool(
            cluster["pendingTasksCount"] == 0 == len(self.live) - cluster["runningTasksCount"]
        )

    def published(self) -> bool:
        """Every event the simulator made has left its pump; none was dropped or failed."""
        counters = self.http.get(f"http://127.0.0.1:{self.sim_port}/_sim/counters").json()
        pump = counters["pump"]
        assert pump["failed"] == pump["dropped_full"] == counters["events"]["dropped"] == 0, (
            counters
        )
        return bool(pump["offered"] == pump["published"])


def _kill_in_the_tail(lanes: list[Lane]) -> None:
    """SIGKILL each CSS while it consumes the tail of the stream, then restart each on its store.

    After a burst (every live task stopped, a new one on every instance) each queue is watched
    as it drains; a CSS is killed once fewer than TAIL messages wait, fewer than at the last
    look (it is consuming), and some are in flight (it holds a batch). The tail holds most
    entities' last change, so an event lost there would show in the final state. A queue that
    drains unseen gets another burst; a CSS killed between two batches is restarted and watched
    again.
    """
    held: dict[str, int] = {}  # per lane: messages the dead CSS had received and not acked
    last: dict[str, int] = {}
    tries = dict.fromkeys((lane.name for lane in lanes), 0)
    deadline = time.monotonic() + DEADLINE_S
    while len(held) < len(lanes):
        assert time.monotonic() < deadline, f"killed only {held}; a CSS stopped consuming"
        for lane in (lane for lane in lanes if lane.name not in held):
            counts = lane.queue()
            visible = counts["ApproximateNumberOfMessages"]
            in_flight = counts["ApproximateNumberOfMessagesNotVisible"]
            if 0 < visible <= TAIL and in_flight and visible < last.get(lane.name, 0):
                lane.kill_css()
                # Nothing deletes now: what is not visible is what the dead CSS had received.
                in_hand = lane.queue()["ApproximateNumberOfMessagesNotVisible"]
                if in_hand:
                    held[lane.name] = in_hand
                    continue
                lane.start_css()  # killed between two batches: not the case to test; again
                tries[lane.name] += 1
            elif not visible and not in_flight:
                lane.round(burst=True)
                tries[lane.name] += 1
            assert tries[lane.name] <= KILL_ATTEMPTS, f"never caught {lane.name} mid-batch"
            last[lane.name] = visible
    for lane in lanes:
        lane.start_css()


def _versions(lane: Lane) -> dict[str, int | None]:
    """detail.version of every task and instance record of the lane's cluster, from its store."""

    async def read() -> dict[str, int | None]:
        store = await open_store(lane.store)
        try:
            cluster_arn = lane.ecs.describe_clusters(clusters=[lane.cluster])["clusters"][0][
                "clusterArn"
            ]
            found: dict[str, int | None] = {}
            for prefix in (keys.tasks_of(cluster_arn), keys.instances_of(cluster_arn)):
                for entry in (await store.list(prefix)).entries:
                    record = model.decode(entry.value)
                    found[record.arn] = record.version
            return found
        finally:
            await store.close()

    return asyncio.run(read())


def _cpu_and_memory(
    resources: list[dict[str, Any]], value: Callable[[dict[str, Any]], str]
) -> dict[str, str]:
    return {r["name"]: value(r) for r in resources if r["name"] in ("CPU", "MEMORY")}


def _check(lane: Lane, truth: Truth) -> None:
    """The CSS shows the simulator's latest state of every task and instance, at its version.

    Then it stops cleanly, and its store is read directly for each record's `detail.version`.
    """
    tasks, instances = truth
    shown = {i["entity"]["taskARN"]: i["entity"] for i in lane.items("tasks")}
    assert sorted(shown) == sorted(tasks), f"{lane.name}: tasks missing or extra"
    wrong = [
        (lane.name, arn, shown[arn]["lastStatus"], task["lastStatus"])
        for arn, task in tasks.items()
        if (shown[arn]["lastStatus"], shown[arn]["desiredStatus"])
        != (task["lastStatus"], task["desiredStatus"])
    ]
    assert wrong == []
    seen = {i["entity"]["containerInstanceARN"]: i["entity"] for i in lane.items("instances")}
    assert sorted(seen) == sorted(instances), f"{lane.name}: instances missing or extra"
    differ = [
        (lane.name, arn)
        for arn, instance in instances.items()
        if (
            seen[arn]["status"],
            seen[arn]["agentConnected"],
            _cpu_and_memory(seen[arn]["remainingResources"], lambda r: r["value"]),
        )
        != (
            instance["status"],
            instance["agentConnected"],
            _cpu_and_memory(instance["remainingResources"], lambda r: str(r["integerValue"])),
        )
    ]
    assert differ == []
    lane.stop_css()
    versions = {arn: entity["version"] for arn, entity in (tasks | instances).items()}
    assert _versions(lane) == versions, f"{lane.name}: stored versions are not the simulator's"


def test_sigkill_of_the_css_mid_batch_loses_no_event_on_sqlite_or_etcd(
    moto_endpoint: str, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        sqs = client("sqs", moto_endpoint)
        stack.callback(sqs.close)
        http = stack.enter_context(httpx.Client(timeout=30))
        processes = Processes(tmp_path)
        stores = {"sqlite": f"sqlite:{tmp_path / 'css.db'}", "etcd": etcd_server.url}
        lanes = [Lane(n, s, moto_endpoint, sqs, http, processes) for n, s in stores.items()]
        for lane in lanes:
            lane.create_queue(stack)
        stack.callback(processes.close)  # every process ends before its queue is deleted
        for lane in lanes:
            lane.start_sim(stack)
        for lane in lanes:
            lane.start_css()

        for _ in range(ROUNDS):
            for lane in lanes:
                lane.round()
        _kill_in_the_tail(lanes)

        for lane in lanes:
            until(lane.settled, what=f"the {lane.name} simulator's tasks to settle")
            truth = lane.truth()
            assert all(t["lastStatus"] == t["desiredStatus"] for t in truth[0].values())
            until(lane.published, what=f"the {lane.name} simulator's events to be sent")
            until(lane.drained, what=f"the {lane.name} queue to drain", deadline_s=DRAIN_DEADLINE_S)
            assert lane.truth() == truth  # nothing changed while the queue drained
            _check(lane, truth)
