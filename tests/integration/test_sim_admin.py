"""Faults through the sim's admin API over real HTTP, seen the way a boto3 client sees them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from blox.sim import service
from blox.sim.events import MemoryPublisher
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
DEADLINE_S = 10.0
DEFINITION = {
    "family": "web",
    "containerDefinitions": [{"name": "main", "image": "nginx", "cpu": 128, "memory": 256}],
}


class RunningSim:
    """`service.run` on a thread and event loop of its own, as `blox sim up` runs it."""

    def __init__(self, settings: service.SimSettings) -> None:
        self.url = f"http://127.0.0.1:{settings.port}"
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sim: service.Sim | None = None

    def _run(self) -> None:
        def ready(sim: service.Sim) -> None:
            self.sim = sim

        try:
            self._loop.run_until_complete(service.run(self._settings, stop=self._stop, ready=ready))
        finally:
            self._loop.close()

    def start(self, admin: httpx.Client) -> None:
        self._thread.start()
        until(lambda: _healthy(admin), what="the admin healthz")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(DEADLINE_S)
        assert not self._thread.is_alive()

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        assert self.sim is not None and isinstance(self.sim.publisher, MemoryPublisher)
        return self.sim.publisher.envelopes


def _healthy(admin: httpx.Client) -> bool:
    try:
        return bool(admin.get("/_sim/healthz").json() == {"status": "ok"})
    except httpx.TransportError:
        return False


def until(check: Callable[[], T], *, what: str) -> T:
    """Poll `check` until it returns something truthy; fail after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    settings = service.SimSettings(port=free_port(), instances=3, seed=7, pending_s=0.1)
    running = RunningSim(settings)
    with httpx.Client(base_url=running.url, timeout=DEADLINE_S) as probe:
        running.start(probe)
    yield running
    running.stop()


@pytest.fixture
def admin(sim: RunningSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=DEADLINE_S) as client:
        yield client


@pytest.fixture
def ecs(sim: RunningSim) -> Iterator[Any]:
    client = boto3.session.Session().client(
        "ecs",
        endpoint_url=sim.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


def instances(ecs: Any) -> list[str]:
    arns: list[str] = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    return arns


def describe(ecs: Any, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = ecs.describe_container_instances(
        cluster="default", containerInstances=[arn]
    )["containerInstances"][0]
    return found


def start_tasks(ecs: Any, on: list[str]) -> list[str]:
    ecs.register_task_definition(**DEFINITION)
    started = ecs.start_task(cluster="default", taskDefinition="web", containerInstances=on)
    return [t["taskArn"] for t in started["tasks"]]


def tasks(ecs: Any, arns: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    return found


def state_counters(admin: httpx.Client) -> dict[str, int]:
    counters: dict[str, int] = admin.get("/_sim/counters").json()["state"]
    return counters


def test_a_disconnected_agent_shows_as_not_connected_until_it_reconnects(
    ecs: Any, admin: httpx.Client
) -> None:
    target = instances(ecs)[0]

    gone = admin.post("/_sim/agents/disconnect", json={"instances": [target]})
    seen_gone = describe(ecs, target)["agentConnected"]
    back = admin.post("/_sim/agents/reconnect", json={"instances": [target]})

    assert gone.json() == {"changed": 1} and back.json() == {"changed": 1}
    assert seen_gone is False
    assert describe(ecs, target)["agentConnected"] is True
    assert state_counters(admin)["disconnected"] == state_counters(admin)["reconnected"] == 1


def test_a_drained_instance_gets_no_task_from_start_task(ecs: Any, admin: httpx.Client) -> None:
    drained, other = instances(ecs)[:2]

    response = admin.post("/_sim/instances/drain", json={"instances": [drained]})
    ecs.register_task_definition(**DEFINITION)
    started = ecs.start_task(
        cluster="default", taskDefinition="web", containerInstances=[drained, other]
    )

    assert response.json() == {"drained": 1}
    assert describe(ecs, drained)["status"] == "DRAINING"
    assert [t["containerInstanceArn"] for t in started["tasks"]] == [other]
    assert started["failures"] == [{"arn": drained, "reason": "DRAINING"}]
    assert state_counters(admin)["drained"] == 1


def test_killed_tasks_are_stopped_with_the_stop_code_and_the_counter_matches(
    ecs: Any, admin: httpx.Client
) -> None:
    arns = start_tasks(ecs, instances(ecs))
    until(lambda: all(t["lastStatus"] == "RUNNING" for t in tasks(ecs, arns)), what="RUNNING")

    killed = admin.post("/_sim/tasks/kill", json={"count": 2}).json()["killed"]
    described = tasks(ecs, arns)

    stopped = [t for t in described if t.get("stopCode") == "EssentialContainerExited"]
    assert sorted(t["taskArn"] for t in stopped) == sorted(killed)
    assert all(t["lastStatus"] == "STOPPED" for t in stopped)
    assert all(t["containers"][0]["exitCode"] == 137 for t in stopped)
    assert state_counters(admin)["killed"] == len(stopped) == 2


def test_the_random_killer_set_at_run_time_stops_every_task_and_counts_each(
    ecs: Any, admin: httpx.Client
) -> None:
    arns = start_tasks(ecs, instances(ecs))

    admin.put("/_sim/faults", json={"kill_rate_per_s": 100})

    def all_stopped() -> list[dict[str, Any]]:
        found = tasks(ecs, arns)
        return found if all(t["lastStatus"] == "STOPPED" for t in found) else []

    described = until(all_stopped, what="every task STOPPED by the killer")

    fault_codes = {"EssentialContainerExited", "TaskFailedToStart"}
    by_fault = [t for t in described if t["stopCode"] in fault_codes]
    assert len(by_fault) == 3
    assert state_counters(admin)["killed"] == len(by_fault)


def test_a_lowered_throttle_makes_a_client_without_retries_see_throttling(
    ecs: Any, admin: httpx.Client
) -> None:
    response = admin.put(
        "/_sim/throttle",
        json={"operation": "DescribeClusters", "capacity": 1, "rate_per_s": 0.001},
    )
    ecs.describe_clusters(clusters=["default"])

    with pytest.raises(ClientError) as refused:
        ecs.describe_clusters(clusters=["default"])

    assert response.status_code == 200
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert state_counters(admin)["throttle_changes"] == 1
    admin.delete("/_sim/faults")
    assert ecs.describe_clusters(clusters=["default"])["clusters"][0]["clusterName"] == "default"


def test_start_task_fails_on_an_instance_told_to_refuse_starts(
    ecs: Any, admin: httpx.Client
) -> None:
    refusing, other = instances(ecs)[:2]

    admin.post("/_sim/start-failures", json={"instances": [refusing], "reason": "AGENT"})
    ecs.register_task_definition(**DEFINITION)
    started = ecs.start_task(
        cluster="default", taskDefinition="web", containerInstances=[refusing, other]
    )

    assert started["failures"] == [{"arn": refusing, "reason": "AGENT"}]
    assert [t["containerInstanceArn"] for t in started["tasks"]] == [other]
    assert state_counters(admin)["start_failures_set"] == 1


def test_dropping_every_event_at_run_time_keeps_new_changes_from_the_sink(
    sim: RunningSim, admin: httpx.Client
) -> None:
    until(lambda: len(sim.envelopes) == 3, what="the bootstrap events")

    admin.put("/_sim/faults", json={"drop_rate": 1.0})
    admin.post("/_sim/instances", json={"count": 2})
    events = until(
        lambda: (c := admin.get("/_sim/counters").json()["events"])["received"] == 5 and c,
        what="the new events to reach the faults",
    )

    assert events["dropped"] == 2
    assert len(sim.envelopes) == 3


def test_duplicating_every_event_at_run_time_delivers_each_new_change_twice(
    sim: RunningSim, admin: httpx.Client
) -> None:
    until(lambda: len(sim.envelopes) == 3, what="the bootstrap events")

    admin.put("/_sim/faults", json={"duplicate_rate": 1})
    added = admin.post("/_sim/instances", json={"count": 1}).json()["containerInstanceArns"]

    until(lambda: len(sim.envelopes) == 5, what="both copies")
    assert [e["resources"] for e in sim.envelopes[3:]] == [added, added]
    assert sim.envelopes[3]["id"] == sim.envelopes[4]["id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("PUT", "/_sim/faults", {"drop_rate": 2}, "drop_rate must be between 0 and 1"),
        ("PUT", "/_sim/faults", {"nope": 1}, "unknown fault setting(s) nope"),
        ("PUT", "/_sim/faults", {"kill_rate_per_s": -1}, "kill_rate_per_s must be"),
        ("POST", "/_sim/agents/disconnect", {"instances": "x"}, "instances must be a list"),
        ("POST", "/_sim/instances", {"count": 0}, "count must be between 1 and 1000"),
        ("PUT", "/_sim/throttle", {"operation": "StartTask"}, "capacity is required"),
    ],
    ids=["rate above one", "unknown key", "negative kill rate", "not a list", "zero", "missing"],
)
def test_invalid_admin_input_is_refused_with_a_message_and_changes_nothing(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any], message: str
) -> None:
    before = admin.get("/_sim/faults").json()

    response = admin.request(method, path, json=body)

    assert response.status_code == 400
    assert message in response.json()["message"]
    assert admin.get("/_sim/faults").json() == before


def test_a_disconnect_naming_one_unknown_instance_disconnects_none(
    ecs: Any, admin: httpx.Client
) -> None:
    known = instances(ecs)[0]

    response = admin.post("/_sim/agents/disconnect", json={"instances": [known, "nope"]})

    assert response.status_code == 400
    assert response.json()["error"] == "InvalidParameterException"
    assert describe(ecs, known)["agentConnected"] is True
    assert state_counters(admin)["disconnected"] == 0


def test_an_unknown_cluster_is_404_and_a_body_that_is_not_json_is_400(admin: httpx.Client) -> None:
    missing = admin.post("/_sim/instances/drain", json={"cluster": "nope", "instances": ["x"]})
    garbled = admin.put("/_sim/faults", content=b"{not json")

    assert missing.status_code == 404 and missing.json()["message"] == "Cluster not found."
    assert garbled.status_code == 400 and "not JSON" in garbled.json()["message"]
