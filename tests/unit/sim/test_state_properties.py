"""Properties of EcsState under random operation sequences, and of the wire under random input."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blox.clock import ManualClock
from blox.sim import errors
from blox.sim.api import HANDLERS, EcsApi, load_model
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig

MODEL = load_model()
TIMING = LifecycleTiming(pending_s=(1.0, 5.0), stopping_s=(0.5, 2.0), stopped_retention_s=30.0)
DEFINITION = {
    "family": "d",
    "containerDefinitions": [
        {
            "name": "a",
            "image": "x",
            "cpu": 300,
            "memory": 700,
            "portMappings": [{"containerPort": 1, "hostPort": 9000}],
        }
    ],
}

steps = st.lists(
    st.tuples(
        st.sampled_from(["start", "run", "stop", "kill", "drain", "tick", "deregister", "agent"]),
        st.integers(0, 5),
    ),
    max_size=60,
)


def fresh_state() -> tuple[EcsState, ManualClock, list[EntityChange]]:
    clock = ManualClock()
    state = EcsState(clock=clock, config=SimConfig(seed=3, timing=TIMING))
    state.create_cluster(name="c")
    state.register_task_definition(dict(DEFINITION))
    changes: list[EntityChange] = []
    state.listeners.append(changes.append)
    for _ in range(3):
        state.register_container_instance(cluster="c")
    return state, clock, changes


def apply(state: EcsState, clock: ManualClock, action: str, n: int) -> None:
    instances = list(state.instances.by_arn)
    tasks = list(state.tasks.by_arn)
    try:
        if action == "start":
            state.start_task(cluster="c", task_definition="d", instances=instances[: n + 1])
        elif action == "run":
            state.run_task(cluster="c", task_definition="d", count=n + 1)
        elif action in ("stop", "kill") and tasks:
            target = tasks[n % len(tasks)]
            if action == "stop":
                state.stop_task(cluster="c", task=target)
            else:
                state.kill_task("c", target)
        elif action == "drain":
            status = "DRAINING" if n % 2 else "ACTIVE"
            state.update_container_instances_state(
                cluster="c", refs=instances[n % 3 :][:1], status=status
            )
        elif action == "agent":
            (state.disconnect_agent if n % 2 else state.reconnect_agent)("c", instances[n % 3])
        elif action == "deregister":
            state.deregister_container_instance(cluster="c", instance=instances[n % 3], force=n > 2)
        else:
            clock._elapsed += n
            state.tick()
    except errors.SimError:
        pass


def check_invariants(state: EcsState, changes: list[EntityChange]) -> None:
    for instance in state.instances.by_arn.values():
        if instance.status == "INACTIVE":
            continue
        live = [
            t
            for t in state.tasks.on_instance(instance.cluster_arn, instance.arn)
            if t.last_status != "STOPPED"
        ]
        assert instance.remaining_cpu == instance.registered_cpu - 300 * len(live)
        assert instance.remaining_memory == instance.registered_memory - 700 * len(live)
        assert instance.pending_count + instance.running_count == len(live)
    cluster = state.clusters.get("c")
    live_tasks = [t for t in state.tasks.by_arn.values() if t.last_status != "STOPPED"]
    assert cluster.pending_tasks + cluster.running_tasks == len(live_tasks)
    last: dict[str, int] = {}
    for change in changes:
        arn = change.detail.get("taskArn") or change.detail["containerInstanceArn"]
        assert change.detail["version"] == last.get(arn, 0) + 1
        last[arn] = change.detail["version"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_resources_counts_and_versions_stay_consistent_under_any_sequence(
    sequence: list[tuple[str, int]],
) -> None:
    state, clock, changes = fresh_state()
    for action, n in sequence:
        apply(state, clock, action, n)
        check_invariants(state, changes)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def typed(shape: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the right JSON type for `shape` (so requests get past validation)."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 3:
            return st.just({})
        members = {k: typed(v, depth + 1) for k, v in shape.members.items()}
        return st.fixed_dictionaries({}, optional=members)
    if kind == "list":
        return st.lists(typed(shape.member, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=4), typed(shape.value, depth + 1), max_size=2)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "long"):
        return st.integers(-3, 120)
    if kind in ("float", "double"):
        return st.floats(-1, 1e4, allow_nan=False)
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(enum)
    return st.sampled_from(["c", "d", "d:1", "a", "x", "", "arn:aws:ecs:x", "22"]) | st.text(
        max_size=6
    )


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    operation = draw(st.sampled_from(sorted(HANDLERS)))
    shape = MODEL.operation_model(operation).input_shape
    params = draw(
        typed(shape)
        if draw(st.booleans())
        else st.dictionaries(st.text(max_size=5), json_values, max_size=3)
    )
    return operation, params


@settings(max_examples=400, deadline=None)
@given(requests())
def test_random_requests_only_ever_raise_ecs_errors(request: tuple[str, dict[str, Any]]) -> None:
    state, _, _ = fresh_state()
    api = EcsApi(state, model=MODEL)
    operation, params = request
    with contextlib.suppress(errors.SimError):
        api.call(operation, json.dumps(params).encode())
