"""Builders for simulator state tests: a seeded state on a ManualClock and a recorded stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from blox.clock import ManualClock
from blox.sim.state import EcsState, EntityChange, LifecycleTiming, SimConfig

TIMING = LifecycleTiming(pending_s=(2.0, 4.0), stopping_s=(1.0, 1.0), stopped_retention_s=3600.0)


@pytest.fixture
def state(clock: ManualClock) -> EcsState:
    """A state with cluster `c1` and task definition `web:1` (256 CPU, 512 MiB, host port 8080)."""
    ecs = EcsState(clock=clock, config=SimConfig(seed=7, timing=TIMING))
    ecs.create_cluster(name="c1")
    ecs.register_task_definition(task_definition("web", cpu=256, memory=512, ports=[8080]))
    return ecs


@pytest.fixture
def changes(state: EcsState) -> list[EntityChange]:
    """Every change the state announces from now on."""
    recorded: list[EntityChange] = []
    state.listeners.append(recorded.append)
    return recorded


def task_definition(
    family: str,
    *,
    cpu: int,
    memory: int,
    ports: Sequence[int] = (),
    udp: Sequence[int] = (),
) -> dict[str, Any]:
    """A RegisterTaskDefinition request with one container."""
    mappings = [{"containerPort": p, "hostPort": p, "protocol": "tcp"} for p in ports]
    mappings += [{"containerPort": p, "hostPort": p, "protocol": "udp"} for p in udp]
    container = {"name": "main", "image": "nginx", "cpu": cpu, "memory": memory}
    return {"family": family, "containerDefinitions": [{**container, "portMappings": mappings}]}


def register(state: EcsState, *, cpu: int = 1024, memory: int = 2048, cluster: str = "c1") -> str:
    """Register a container instance and return its ARN."""
    resources = [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
    ]
    arn: str = state.register_container_instance(cluster=cluster, total_resources=resources)[
        "containerInstanceArn"
    ]
    return arn


def remaining(state: EcsState, arn: str) -> dict[str, Any]:
    """An instance's remaining resources by name (integer or sorted string set)."""
    described, _ = state.describe_container_instances(cluster="c1", refs=[arn])
    return {
        r["name"]: r.get("integerValue", sorted(r.get("stringSetValue", [])))
        for r in described[0]["remainingResources"]
    }
