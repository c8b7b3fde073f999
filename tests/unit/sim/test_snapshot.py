"""Snapshots of the simulator's state: dict → JSON → state round trips, resumed steps, bad input."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from blox.clock import ManualClock
from blox.errors import Invalid
from blox.sim.state import EcsState, EntityChange, snapshot

from .conftest import TIMING, register, task_definition

Document = dict[str, Any]


def _rich(state: EcsState, clock: ManualClock) -> dict[str, str]:
    """Two more clusters (one deleted), three families, five instances, four kinds of task."""
    state.create_cluster(name="c2")
    state.create_cluster(name="gone")
    state.delete_cluster(cluster="gone")
    state.register_task_definition(task_definition("web", cpu=128, memory=256))
    state.register_task_definition(task_definition("dns", cpu=64, memory=64, udp=[5353]))
    a, b, c = register(state), register(state), register(state)
    d, e = register(state, cluster="c2"), register(state, cluster="c2")
    state.put_attributes(
        cluster="c1",
        attributes=[
            {"name": "stack", "value": "blue", "targetId": a},
            {"name": "gpu", "targetId": b},  # an attribute without a value
        ],
    )

    def start(ref: str, on: str) -> str:
        placed = state.start_task(
            cluster="c1", task_definition=ref, instances=[on], started_by="blox"
        )
        arn: str = placed[0][0]["taskArn"]
        return arn

    running, stopping, killed = start("web:1", a), start("web:2", b), start("dns", c)
    clock._elapsed = 5.0
    state.tick()
    state.stop_task(cluster="c1", task=stopping, reason="Scaling down")  # STOPPED in 1 s
    state.kill_task("c1", killed)
    pending = start("web:2", a)
    state.deregister_task_definition(ref="web:1")  # its running task keeps it
    state.update_container_instances_state(cluster="c1", refs=[c], status="DRAINING")
    state.disconnect_agent("c2", d)
    state.deregister_container_instance(cluster="c2", instance=e)
    state.fail_starts("c1", [b], reason="AGENT")
    return {"running": running, "stopping": stopping, "killed": killed, "pending": pending}


def _views(state: EcsState) -> list[Any]:
    """What the ECS API shows of a state, for every resource kind."""
    views: list[Any] = [state.describe_clusters(refs=["c1", "c2", "gone"])]
    for cluster in ("c1", "c2"):
        instances, _ = state.list_container_instances(
            cluster=cluster, status=None, after=0, limit=100
        )
        views.append(state.describe_container_instances(cluster=cluster, refs=instances))
        views.append(state.list_attributes(cluster=cluster, name=None, value=None))
    for desired in ("RUNNING", "STOPPED"):
        tasks, _ = state.list_tasks(cluster="c1", desired_status=desired)
        views.append(state.describe_tasks(cluster="c1", refs=tasks))
    views.append([state.describe_task_definition(ref=r) for r in ("web:1", "web:2", "dns:1")])
    return views


def _round_trip(document: Document, *, clock: ManualClock) -> snapshot.Restored:
    return snapshot.load(json.loads(json.dumps(document)), clock=clock, timing=TIMING)


def test_a_state_survives_dict_json_and_back_field_for_field(
    state: EcsState, clock: ManualClock
) -> None:
    tasks = _rich(state, clock)
    document = snapshot.dump(state, rngs={"envelopes": random.Random(11)})

    restored = _round_trip(document, clock=clock)
    copied = restored.state

    assert copied.clusters.all() == state.clusters.all()
    assert copied.task_definitions.all() == state.task_definitions.all()
    assert list(copied.instances.by_seq.values()) == list(state.instances.by_seq.values())
    assert list(copied.tasks.by_seq.values()) == list(state.tasks.by_seq.values())
    assert copied.start_failures == state.start_failures
    assert copied.last_seq == state.last_seq
    assert copied.rng.getstate() == state.rng.getstate()
    assert restored.rngs["envelopes"].getstate() == random.Random(11).getstate()
    assert [(s, q) for _, s, q in copied.due.entries()] == [
        (s, q) for _, s, q in state.due.entries()
    ]
    assert [at for at, _, _ in copied.due.entries()] == pytest.approx(
        [at for at, _, _ in state.due.entries()]
    )
    assert _views(copied) == _views(state)
    assert copied.tasks.by_arn[tasks["pending"]].definition is copied.task_definitions.find("web:2")
    assert copied.listeners == []


def test_the_document_is_versioned_json_with_one_entry_per_entity(
    state: EcsState, clock: ManualClock
) -> None:
    _rich(state, clock)

    document = snapshot.dump(state)

    assert (document["format"], document["kind"]) == (1, "blox-sim-state")
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert len(document["instances"]) == 5
    assert [t["last_status"] for t in document["tasks"]] == [
        "RUNNING",
        "RUNNING",
        "STOPPED",
        "PENDING",
    ]
    gpu = document["instances"][1]["attributes"]
    assert gpu["gpu"] is None and "stack" not in gpu


def test_due_steps_that_fell_due_while_down_fire_at_the_first_tick(
    state: EcsState, clock: ManualClock
) -> None:
    tasks = _rich(state, clock)
    document = snapshot.dump(state)
    later = ManualClock(start=clock.now() + timedelta(minutes=5))
    copied = _round_trip(document, clock=later).state
    changes: list[EntityChange] = []
    copied.listeners.append(changes.append)

    applied = copied.tick()

    assert applied == 2  # the pending task runs, the stopping one stops
    described, _ = copied.describe_tasks(cluster="c1", refs=[tasks["pending"], tasks["stopping"]])
    assert [t["lastStatus"] for t in described] == ["RUNNING", "STOPPED"]
    announced = {c.detail["taskArn"]: c.detail["version"] for c in changes if c.kind == "task"}
    before = {t["arn"]: t["version"] for t in document["tasks"]}
    assert announced == {arn: before[arn] + 1 for arn in (tasks["pending"], tasks["stopping"])}


def test_a_step_not_yet_due_keeps_its_remaining_delay_on_the_new_clock(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    task = state.start_task(cluster="c1", task_definition="web", instances=[arn])[0][0]
    [(due, step, _)] = state.due.entries()
    fresh = ManualClock(start=clock.now())  # same wall time, another monotonic origin
    copied = _round_trip(snapshot.dump(state), clock=fresh).state

    assert step == "run" and copied.tick() == 0
    fresh._elapsed = due - 0.01
    assert copied.tick() == 0
    fresh._elapsed = due + 0.01
    assert copied.tick() == 1
    assert copied.describe_tasks(cluster="c1", refs=[task["taskArn"]])[0][0]["lastStatus"] == (
        "RUNNING"
    )


def test_the_restored_rng_continues_where_the_saved_one_stopped(
    state: EcsState, clock: ManualClock
) -> None:
    arn = register(state)
    copied = _round_trip(snapshot.dump(state), clock=clock).state

    def start(on: EcsState) -> dict[str, Any]:
        task: dict[str, Any] = on.start_task(cluster="c1", task_definition="web", instances=[arn])[
            0
        ][0]
        return task

    original, resumed = start(state), start(copied)
    assert resumed["taskArn"] == original["taskArn"]
    assert resumed["containers"][0]["containerArn"] == original["containers"][0]["containerArn"]
    assert copied.due.entries() == state.due.entries()  # the same jittered pending delay


@pytest.fixture
def document(state: EcsState) -> Document:
    """A snapshot with one instance, one PENDING task of web:1 and its due `run` step."""
    arn = register(state)
    state.start_task(cluster="c1", task_definition="web", instances=[arn])
    return snapshot.dump(state)


def _set(path: str, value: Any) -> Callable[[Document], Any]:
    def change(doc: Document) -> Document:
        *parents, last = path.split(".")
        target: Any = doc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
        return doc

    return change


def _drop(key: str) -> Callable[[Document], Any]:
    def change(doc: Document) -> Document:
        del doc[key]
        return doc

    return change


def _twin_seq(doc: Document) -> Document:
    doc["tasks"][0]["seq"] = doc["instances"][0]["seq"]
    return doc


CORRUPT = [
    ("not an object", lambda doc: [doc], r"^the document: expected an object"),
    ("another kind", _set("kind", "tfstate"), r"^kind: expected 'blox-sim-state', got 'tfstate'"),
    ("a newer format", _set("format", 2), r"^format: 2 is not supported \(this blox reads 1\)"),
    ("no tasks", _drop("tasks"), r"^tasks: missing$"),
    ("no rngs", _drop("rngs"), r"^rngs: missing$"),
    ("bad time", _set("tasks.0.created_at", "yesterday"), r"^tasks\[0\]\.created_at: expected"),
    ("naive time", _set("saved_at", "2017-06-01T00:00:00"), r"^saved_at: expected an ISO-8601"),
    ("boolean", _set("instances.0.version", True), r"instances\[0\]\.version: expected an int"),
    ("status", _set("instances.0.status", "BROKEN"), r"status: expected one of ACTIVE, DRAIN"),
    (
        "unknown definition",
        _set("tasks.0.definition", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:9"),
        r"^tasks\[0\]\.definition: no task definition",
    ),
    ("unknown cluster", _set("tasks.0.cluster_arn", "c1"), r"^tasks\[0\]\.cluster_arn: no clus"),
    ("revision gap", _set("task_definitions.0.revision", 2), r"revision: web:2 is out of order"),
    ("containers", _set("tasks.0.container_arns", []), r"container_arns: 0 for 1 containers"),
    ("twin seq", _twin_seq, r"^tasks\[0\]\.seq: sequence \d+ appears twice"),
    ("low last_seq", _set("last_seq", 0), r"^last_seq: 0 is below sequence 2"),
    ("step", _set("due.0.step", "explode"), r"^due\[0\]\.step: expected one of run, stop"),
    ("rng", _set("rngs.state", [3, [1, 2], None]), r"^rngs\.state: not a random state"),
    ("no state rng", _set("rngs", {}), r"^rngs\.state: missing"),
]


@pytest.mark.parametrize(
    ("corrupt", "message"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT]
)
def test_a_document_that_is_not_a_snapshot_is_refused_naming_the_field(
    document: Document, corrupt: Callable[[Document], Any], message: str
) -> None:
    bad = corrupt(copy.deepcopy(document))

    with pytest.raises(snapshot.SnapshotInvalid, match=message) as refused:
        snapshot.load(bad, clock=ManualClock(), timing=TIMING)

    assert isinstance(refused.value, Invalid)
