"""Snapshots of the simulator's state: `EcsState` to a versioned JSON-ready document and back.

`dump(state, rngs=…)` writes clusters, task definitions, container instances, tasks, start
failures, the lifecycle queue and the random states as plain dicts, lists, strings and numbers;
`load(document, clock=…, timing=…)` builds an equal state on a new clock. Pure: the file I/O is
`sim/statefile.py`'s, and time comes only from the state's injected clock.
Assumptions:
  - A due step is kept as seconds from `saved_at`, so it survives a new monotonic origin; one
    whose time passed while the simulator was down fires at the first tick after the restore.
  - Random states are `random.Random.getstate()` as lists: a restored run draws what the first
    run would have drawn next (ids, jitter, placement).
Invariants:
  - `load` reads every field it needs and checks every reference (cluster, task definition,
    revision order, sequence numbers) before the state is handed out; anything wrong raises
    `SnapshotInvalid` naming the field, e.g. `tasks[3].created_at: missing`.
  - A restore announces nothing: listeners join the restored state afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from blox.clock import Clock
from blox.sim.state import EcsState, SimConfig
from blox.sim.state.clusters import Cluster
from blox.sim.state.document import Fields, SnapshotInvalid
from blox.sim.state.instances import ContainerInstance
from blox.sim.state.lifecycle import LifecycleTiming, Step
from blox.sim.state.task_definitions import TaskDefinition
from blox.sim.state.tasks import Task

__all__ = ["FORMAT", "KIND", "Restored", "SnapshotInvalid", "dump", "load"]

FORMAT = 1
KIND = "blox-sim-state"
STATE_RNG = "state"  # the key of the state's own RNG in `rngs`; callers name theirs otherwise
TASK_STATUSES = ("PENDING", "RUNNING", "STOPPED")
INSTANCE_STATUSES = ("ACTIVE", "DRAINING", "INACTIVE")
ACTIVE_OR_INACTIVE = ("ACTIVE", "INACTIVE")
STEPS: tuple[Step, ...] = get_args(Step)


@dataclass(frozen=True)
class Restored:
    """A state rebuilt from a snapshot, the other random states saved with it, and when."""

    state: EcsState
    rngs: dict[str, random.Random]
    saved_at: datetime


# -- dump ------------------------------------------------------------------------------------


def dump(state: EcsState, *, rngs: Mapping[str, random.Random] | None = None) -> dict[str, Any]:
    """The whole state as a JSON-ready document (format 1), as of the state's clock."""
    extra = dict(rngs or {})
    if STATE_RNG in extra:
        raise ValueError(f"the RNG name {STATE_RNG!r} is the state's own")
    mono = state.clock.monotonic()
    return {
        "format": FORMAT,
        "kind": KIND,
        "saved_at": state.clock.now().isoformat(),
        "region": state.config.region,
        "account": state.config.account,
        "seed": state.config.seed,
        "last_seq": state.last_seq,
        "clusters": [_cluster_doc(c) for c in state.clusters.all()],
        "task_definitions": [_definition_doc(d) for d in state.task_definitions.all()],
        "instances": [_instance_doc(i) for i in state.instances.by_seq.values()],
        "tasks": [_task_doc(t) for t in state.tasks.by_seq.values()],
        "start_failures": dict(state.start_failures),
        "due": [
            {"step": step, "seq": seq, "due_in_s": at - mono}
            for at, step, seq in state.due.entries()
        ],
        "rngs": {name: _rng_doc(rng) for name, rng in {STATE_RNG: state.rng, **extra}.items()},
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rng_doc(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _cluster_doc(c: Cluster) -> dict[str, Any]:
    return {
        "name": c.name,
        "arn": c.arn,
        "status": c.status,
        "registered_instances": c.registered_instances,
        "running_tasks": c.running_tasks,
        "pending_tasks": c.pending_tasks,
    }


def _definition_doc(d: TaskDefinition) -> dict[str, Any]:
    return {
        "arn": d.arn,
        "family": d.family,
        "revision": d.revision,
        "containers": [dict(c) for c in d.containers],
        "network_mode": d.network_mode,
        "registered_at": _time(d.registered_at),
        "registered_by": d.registered_by,
        "cpu": d.cpu,
        "memory": d.memory,
        "tcp_ports": sorted(d.tcp_ports),
        "udp_ports": sorted(d.udp_ports),
        "task_cpu": d.task_cpu,
        "task_memory": d.task_memory,
        "status": d.status,
        "deregistered_at": _time(d.deregistered_at),
        "extra": dict(d.extra),
    }


def _instance_doc(i: ContainerInstance) -> dict[str, Any]:
    return {
        "seq": i.seq,
        "arn": i.arn,
        "cluster_arn": i.cluster_arn,
        "ec2_instance_id": i.ec2_instance_id,
        "registered_at": _time(i.registered_at),
        "registered_cpu": i.registered_cpu,
        "registered_memory": i.registered_memory,
        "reserved_tcp": list(i.reserved_tcp),
        "reserved_udp": list(i.reserved_udp),
        "attributes": dict(i.attributes),
        "version_info": dict(i.version_info),
        "remaining_cpu": i.remaining_cpu,
        "remaining_memory": i.remaining_memory,
        "used_tcp": sorted(i.used_tcp),
        "used_udp": sorted(i.used_udp),
        "status": i.status,
        "agent_connected": i.agent_connected,
        "running_count": i.running_count,
        "pending_count": i.pending_count,
        "version": i.version,
    }


def _task_doc(t: Task) -> dict[str, Any]:
    return {
        "seq": t.seq,
        "arn": t.arn,
        "cluster_arn": t.cluster_arn,
        "instance_arn": t.instance_arn,
        "zone": t.zone,
        "definition": t.definition.arn,
        "container_arns": list(t.container_arns),
        "created_at": _time(t.created_at),
        "started_by": t.started_by,
        "group": t.group,
        "desired_status": t.desired_status,
        "last_status": t.last_status,
        "version": t.version,
        "pull_started_at": _time(t.pull_started_at),
        "pull_stopped_at": _time(t.pull_stopped_at),
        "started_at": _time(t.started_at),
        "connectivity_at": _time(t.connectivity_at),
        "stopping_at": _time(t.stopping_at),
        "execution_stopped_at": _time(t.execution_stopped_at),
        "stopped_at": _time(t.stopped_at),
        "stop_code": t.stop_code,
        "stopped_reason": t.stopped_reason,
        "exit_code": t.exit_code,
        "container_reason": t.container_reason,
    }


# -- load ------------------------------------------------------------------------------------


def load(document: object, *, clock: Clock, timing: LifecycleTiming) -> Restored:
    """The state a `dump` document describes, on `clock`; SnapshotInvalid when it is not one."""
    top = Fields(document, "")
    if top.raw.get("kind") != KIND:
        raise SnapshotInvalid(f"kind: expected {KIND!r}, got {top.raw.get('kind')!r}")
    if top.raw.get("format") != FORMAT:
        raise SnapshotInvalid(
            f"format: {top.raw.get('format')!r} is not supported (this blox reads {FORMAT})"
        )
    config = SimConfig(
        region=top.text("region"),
        account=top.text("account"),
        seed=top.integer("seed"),
        timing=timing,
    )
    state = EcsState(clock=clock, config=config)
    saved_at = top.time("saved_at")
    for cluster in top.objects("clusters"):
        _restore_cluster(state, cluster)
    for definition in top.objects("task_definitions"):
        _restore_definition(state, definition)
    for instance in sorted(top.objects("instances"), key=lambda f: f.integer("seq")):
        _restore_instance(state, instance)
    for task in sorted(top.objects("tasks"), key=lambda f: f.integer("seq")):
        _restore_task(state, task)
    state.last_seq = top.integer("last_seq")
    seqs = [*state.instances.by_seq, *state.tasks.by_seq]
    if seqs and max(seqs) > state.last_seq:
        raise SnapshotInvalid(f"last_seq: {state.last_seq} is below sequence {max(seqs)}")
    state.start_failures.update(top.text_map("start_failures"))
    elapsed = (clock.now() - saved_at).total_seconds()
    for step in top.objects("due"):
        at = clock.monotonic() + step.number("due_in_s") - elapsed
        state.due.schedule(step.choice("step", STEPS), step.integer("seq"), at=at)
    rngs = top.field("rngs")
    if STATE_RNG not in rngs.raw:
        raise SnapshotInvalid(f"rngs.{STATE_RNG}: missing")
    restored = {name: _rng(rngs, name) for name in rngs.raw}
    state.rng.setstate(restored.pop(STATE_RNG).getstate())  # in place: the lifecycle shares it
    return Restored(state=state, rngs=restored, saved_at=saved_at)


def _restore_cluster(state: EcsState, f: Fields) -> None:
    name = f.text("name")
    if state.clusters.find(name) is not None:
        raise SnapshotInvalid(f"{f.where}.name: cluster {name!r} appears twice")
    arn = f.text("arn")
    if arn != state.clusters.arn_of(name):
        raise SnapshotInvalid(f"{f.where}.arn: {arn!r} is not cluster {name!r} of this region")
    state.clusters.restore(
        Cluster(
            name=name,
            arn=arn,
            status=f.choice("status", ACTIVE_OR_INACTIVE),
            registered_instances=f.integer("registered_instances"),
            running_tasks=f.integer("running_tasks"),
            pending_tasks=f.integer("pending_tasks"),
        )
    )


def _restore_definition(state: EcsState, f: Fields) -> None:
    family, revision, arn = f.text("family"), f.integer("revision"), f.text("arn")
    known = state.task_definitions.find
    if known(f"{family}:{revision}") or (revision != 1 and not known(f"{family}:{revision - 1}")):
        raise SnapshotInvalid(f"{f.where}.revision: {family}:{revision} is out of order")
    prefix = f"arn:aws:ecs:{state.config.region}:{state.config.account}"
    if arn != f"{prefix}:task-definition/{family}:{revision}":
        raise SnapshotInvalid(f"{f.where}.arn: {arn!r} is not {family}:{revision} of this region")
    state.task_definitions.restore(
        TaskDefinition(
            arn=arn,
            family=family,
            revision=revision,
            containers=[c.raw for c in f.objects("containers")],
            network_mode=f.text("network_mode"),
            registered_at=f.time("registered_at"),
            registered_by=f.text("registered_by"),
            cpu=f.integer("cpu"),
            memory=f.integer("memory"),
            tcp_ports=frozenset(f.texts("tcp_ports")),
            udp_ports=frozenset(f.texts("udp_ports")),
            task_cpu=f.opt_text("task_cpu"),
            task_memory=f.opt_text("task_memory"),
            status=f.choice("status", ACTIVE_OR_INACTIVE),
            deregistered_at=f.opt_time("deregistered_at"),
            extra=f.field("extra").raw,
        )
    )


def _restore_instance(state: EcsState, f: Fields) -> None:
    seq, arn, cluster_arn = f.integer("seq"), f.text("arn"), f.text("cluster_arn")
    _check_new(state, f, seq, arn, cluster_arn)
    state.instances.restore(
        ContainerInstance(
            seq=seq,
            arn=arn,
            cluster_arn=cluster_arn,
            ec2_instance_id=f.text("ec2_instance_id"),
            registered_at=f.time("registered_at"),
            registered_cpu=f.integer("registered_cpu"),
            registered_memory=f.integer("registered_memory"),
            reserved_tcp=tuple(f.texts("reserved_tcp")),
            reserved_udp=tuple(f.texts("reserved_udp")),
            attributes=f.attributes("attributes"),
            version_info=f.text_map("version_info"),
            remaining_cpu=f.integer("remaining_cpu"),
            remaining_memory=f.integer("remaining_memory"),
            used_tcp=set(f.texts("used_tcp")),
            used_udp=set(f.texts("used_udp")),
            status=f.choice("status", INSTANCE_STATUSES),
            agent_connected=f.flag("agent_connected"),
            running_count=f.integer("running_count"),
            pending_count=f.integer("pending_count"),
            version=f.integer("version"),
        )
    )


def _restore_task(state: EcsState, f: Fields) -> None:
    seq, arn, cluster_arn = f.integer("seq"), f.text("arn"), f.text("cluster_arn")
    _check_new(state, f, seq, arn, cluster_arn)
    ref = f.text("definition")
    definition = state.task_definitions.find(ref) if ref.startswith("arn:") else None
    if definition is None or definition.arn != ref:
        raise SnapshotInvalid(f"{f.where}.definition: no task definition {ref!r}")
    container_arns = f.texts("container_arns")
    if len(container_arns) != len(definition.containers):
        raise SnapshotInvalid(
            f"{f.where}.container_arns: {len(container_arns)} for "
            f"{len(definition.containers)} containers of {ref}"
        )
    exit_code = f.raw.get("exit_code")
    state.tasks.add(
        Task(
            seq=seq,
            arn=arn,
            cluster_arn=cluster_arn,
            instance_arn=f.text("instance_arn"),
            zone=f.opt_text("zone"),
            definition=definition,
            container_arns=container_arns,
            created_at=f.time("created_at"),
            started_by=f.opt_text("started_by"),
            group=f.opt_text("group"),
            desired_status=f.choice("desired_status", ("RUNNING", "STOPPED")),
            last_status=f.choice("last_status", TASK_STATUSES),
            version=f.integer("version"),
            pull_started_at=f.opt_time("pull_started_at"),
            pull_stopped_at=f.opt_time("pull_stopped_at"),
            started_at=f.opt_time("started_at"),
            connectivity_at=f.opt_time("connectivity_at"),
            stopping_at=f.opt_time("stopping_at"),
            execution_stopped_at=f.opt_time("execution_stopped_at"),
            stopped_at=f.opt_time("stopped_at"),
            stop_code=f.opt_text("stop_code"),
            stopped_reason=f.opt_text("stopped_reason"),
            exit_code=None if exit_code is None else f.integer("exit_code"),
            container_reason=f.opt_text("container_reason"),
        )
    )


def _check_new(state: EcsState, f: Fields, seq: int, arn: str, cluster_arn: str) -> None:
    cluster = state.clusters.find(cluster_arn)
    if cluster is None or cluster.arn != cluster_arn:
        raise SnapshotInvalid(f"{f.where}.cluster_arn: no cluster {cluster_arn!r}")
    if seq in state.instances.by_seq or seq in state.tasks.by_seq:
        raise SnapshotInvalid(f"{f.where}.seq: sequence {seq} appears twice")
    if arn in state.instances.by_arn or arn in state.tasks.by_arn:
        raise SnapshotInvalid(f"{f.where}.arn: {arn!r} appears twice")


def _rng(rngs: Fields, name: str) -> random.Random:
    where = f"rngs.{name}"
    value = rngs.raw[name]
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[1], list)):
        raise SnapshotInvalid(f"{where}: expected [version, [625 integers], gauss], got {value!r}")
    version, internal, gauss = value
    if gauss is not None and not isinstance(gauss, float):
        raise SnapshotInvalid(f"{where}: the gauss entry must be null or a number")
    rng = random.Random()
    try:
        rng.setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, OverflowError) as exc:
        raise SnapshotInvalid(f"{where}: not a random state ({exc})") from exc
    return rng
