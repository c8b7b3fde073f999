"""EcsState: the simulator's whole state, composed of the per-resource registries.

Every public method validates its whole input before it mutates anything, then announces
each changed task or container instance to `listeners` (see `changes.py`), task before
instance. Time comes only from the injected `Clock`; randomness only from the seeded RNG.
Callers: `sim/api.py` (the ECS operations), `sim/server.py` (calls `tick()`), fault injection.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from blox.clock import Clock
from blox.sim import errors
from blox.sim.state.changes import EntityChange, EntityKind, Listener
from blox.sim.state.clusters import Cluster, ClusterRegistry
from blox.sim.state.instances import (
    CUSTOM_ATTRIBUTES_MAX,
    RESERVED_PORTS,
    ContainerInstance,
    InstanceRegistry,
    default_attributes,
    is_custom,
)
from blox.sim.state.lifecycle import DueSteps, LifecycleTiming
from blox.sim.state.task_definitions import TaskDefinitionRegistry
from blox.sim.state.tasks import Task, TaskRegistry

DEFAULT_CPU = 2048
DEFAULT_MEMORY_MIB = 7680


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Where the simulated ECS lives and how fast its tasks move."""

    region: str = "us-east-1"
    account: str = "123456789012"
    seed: int = 0
    timing: LifecycleTiming = field(default_factory=LifecycleTiming)


class EcsStateBase:
    """Registries, ids, change announcements and the lifecycle queue shared by all operations."""

    def __init__(self, *, clock: Clock, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock
        self.rng = random.Random(self.config.seed)
        self.listeners: list[Listener] = []
        self.clusters = ClusterRegistry(region=self.config.region, account=self.config.account)
        self.task_definitions = TaskDefinitionRegistry(
            region=self.config.region, account=self.config.account
        )
        self.instances = InstanceRegistry()
        self.tasks = TaskRegistry()
        self.due = DueSteps(timing=self.config.timing, rng=self.rng)
        self.start_failures: dict[str, str] = {}
        self._seq = 0

    # -- ids and announcements -------------------------------------------------------------

    def next_seq(self) -> int:
        """A fresh sequence number for a task or container instance."""
        self._seq += 1
        return self._seq

    @property
    def last_seq(self) -> int:
        """The sequence number handed out last; a snapshot keeps it, a restore sets it."""
        return self._seq

    @last_seq.setter
    def last_seq(self, value: int) -> None:
        self._seq = value

    def hex_id(self) -> str:
        """A 32-hex resource id, as in long-format ARNs."""
        return f"{self.rng.getrandbits(128):032x}"

    def uuid(self) -> str:
        """A seeded UUID4 string, for container ARNs."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def arn(self, kind: str, cluster: Cluster, resource_id: str) -> str:
        """A long-format ARN of `kind` in `cluster`."""
        prefix = f"arn:aws:ecs:{self.config.region}:{self.config.account}"
        return f"{prefix}:{kind}/{cluster.name}/{resource_id}"

    def announce(self, kind: EntityKind, entity: Task | ContainerInstance) -> None:
        """Tell every listener about `entity` after a change (version already raised)."""
        if not self.listeners:
            return
        now = self.clock.now()
        # Events carry two fields the Describe shapes lack: the instance's clusterArn and
        # updatedAt (see shared/fixtures/ecs-events); consumers key records by clusterArn.
        detail = {**entity.describe(), "clusterArn": entity.cluster_arn, "updatedAt": now}
        change = EntityChange(
            kind=kind,
            detail=detail,
            account=self.config.account,
            region=self.config.region,
            time=now,
        )
        for listener in list(self.listeners):
            listener(change)

    def task_changed(self, task: Task) -> None:
        """Raise the task's version and announce it."""
        task.version += 1
        self.announce("task", task)

    def instance_changed(self, instance: ContainerInstance) -> None:
        """Raise the instance's version and announce it."""
        instance.version += 1
        self.announce("container_instance", instance)

    # -- lookups ---------------------------------------------------------------------------

    def instance_of(self, cluster: Cluster, ref: str) -> ContainerInstance:
        """The instance named by `ref`; InvalidParameterException when unknown."""
        instance = self.instances.find(cluster.arn, ref)
        if instance is None:
            raise errors.InvalidParameter("The referenced container instance was not found.")
        return instance


class InstanceOperations(EcsStateBase):
    """RegisterContainerInstance and the other container-instance operations."""

    def register_container_instance(
        self,
        *,
        cluster: str | None = None,
        identity_document: str | None = None,
        total_resources: list[dict[str, Any]] | None = None,
        version_info: dict[str, str] | None = None,
        attributes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Register an agent's instance; resources default to an m6i.large."""
        target = self.clusters.get(cluster)
        document = _identity(identity_document, fallback_id=f"i-{self.hex_id()[:17]}")
        cpu, memory, tcp, udp = _resources(total_resources or [])
        custom = {a["name"]: a.get("value") for a in attributes or []}
        if len([n for n in custom if is_custom(n)]) > CUSTOM_ATTRIBUTES_MAX:
            raise errors.AttributeLimitExceeded("Attribute limit exceeded.")
        attrs = default_attributes(
            instance_type=document.get("instanceType", "m6i.large"),
            zone=document.get("availabilityZone", f"{self.config.region}a"),
            ami_id=document.get("imageId", "ami-0c7d3f5e9a1b24680"),
        )
        attrs.update(custom)
        instance = ContainerInstance(
            seq=self.next_seq(),
            arn=self.arn("container-instance", target, self.hex_id()),
            cluster_arn=target.arn,
            ec2_instance_id=document.get("instanceId", f"i-{self.hex_id()[:17]}"),
            registered_at=self.clock.now(),
            registered_cpu=cpu,
            registered_memory=memory,
            reserved_tcp=tcp,
            reserved_udp=udp,
            attributes=attrs,
            version_info=version_info
            or {"agentVersion": "1.101.3", "agentHash": "3b1e9a7c", "dockerVersion": "25.0.8"},
            remaining_cpu=cpu,
            remaining_memory=memory,
        )
        self.instances.add(instance)
        target.registered_instances += 1
        self.announce("container_instance", instance)
        return instance.describe()

    def describe_container_instances(
        self, *, cluster: str | None, refs: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Describe up to 100 instances; unknown ones come back as MISSING failures."""
        target = self.clusters.get(cluster)
        check_batch(refs, what="containerInstances", limit=100)
        found, failures = [], []
        for ref in refs:
            instance = self.instances.find(target.arn, ref)
            if instance is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(instance.describe())
        return found, failures

    def list_container_instances(
        self, *, cluster: str | None, status: str | None, after: int, limit: int
    ) -> tuple[list[str], int | None]:
        """One page of instance ARNs (ACTIVE and DRAINING unless `status` says)."""
        target = self.clusters.get(cluster)
        index = self.instances.index(target.arn, status or "*")
        seqs, more = index.page(after=after, limit=limit)
        return [self.instances.by_seq[s].arn for s in seqs], seqs[-1] if more else None

    def update_container_instances_state(
        self, *, cluster: str | None, refs: list[str], status: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Set ACTIVE or DRAINING on up to 10 instances."""
        target = self.clusters.get(cluster)
        if status not in ("ACTIVE", "DRAINING"):
            raise errors.InvalidParameter(
                "Container instance status should be one of [ACTIVE, DRAINING]."
            )
        check_batch(refs, what="containerInstances", limit=10)
        updated, failures = [], []
        for ref in refs:
            instance = self.instances.find(target.arn, ref)
            if instance is None or instance.status == "INACTIVE":
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            if instance.status != status:
                self.instances.set_status(instance, status)
                self.instance_changed(instance)
            updated.append(instance.describe())
        return updated, failures

    def put_attributes(self, *, cluster: str | None, attributes: list[dict[str, Any]]) -> None:
        """Set custom attributes on instances; all targets and limits are checked first."""
        target = self.clusters.get(cluster)
        check_batch(attributes, what="attributes", limit=10)
        plan: dict[str, dict[str, str | None]] = {}
        for attribute in attributes:
            if attribute.get("targetType", "container-instance") != "container-instance":
                raise errors.InvalidParameter("targetType must be container-instance.")
            instance = self.instances.find(target.arn, attribute.get("targetId") or "")
            if instance is None or instance.status == "INACTIVE":
                raise errors.TargetNotFound(f"Could not find {attribute.get('targetId')}.")
            plan.setdefault(instance.arn, {})[attribute["name"]] = attribute.get("value")
        for arn, updates in plan.items():
            merged = {**self.instances.by_arn[arn].attributes, **updates}
            if len([n for n in merged if is_custom(n)]) > CUSTOM_ATTRIBUTES_MAX:
                raise errors.AttributeLimitExceeded("Attribute limit exceeded.")
        for arn, updates in plan.items():
            instance = self.instances.by_arn[arn]
            if any(instance.attributes.get(n, object()) != v for n, v in updates.items()):
                instance.attributes.update(updates)
                self.instance_changed(instance)

    def list_attributes(
        self, *, cluster: str | None, name: str | None, value: str | None
    ) -> list[dict[str, str]]:
        """Every attribute of the cluster's instances, filtered by name and value."""
        target = self.clusters.get(cluster)
        if value is not None and name is None:
            raise errors.InvalidParameter("attributeName must be specified with attributeValue.")
        out = []
        for instance in self.instances.placeable(target.arn) + self._draining(target):
            for key, val in instance.attributes.items():
                if (name is None or key == name) and (value is None or val == value):
                    item = {"name": key, "targetType": "container-instance"}
                    item.update(
                        {"targetId": instance.arn} | ({} if val is None else {"value": val})
                    )
                    out.append(item)
        return out

    def _draining(self, cluster: Cluster) -> list[ContainerInstance]:
        seqs, _ = self.instances.index(cluster.arn, "DRAINING").page(after=0, limit=1 << 62)
        return [self.instances.by_seq[s] for s in seqs]


def check_batch(items: list[Any], *, what: str, limit: int) -> None:
    if not items:
        raise errors.InvalidParameter(f"{what} cannot be empty.")
    if len(items) > limit:
        raise errors.InvalidParameter(f"{what} can have at most {limit} items.")


def _identity(document: str | None, *, fallback_id: str) -> dict[str, str]:
    if document is None:
        return {"instanceId": fallback_id}
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise errors.InvalidParameter("instanceIdentityDocument is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise errors.InvalidParameter("instanceIdentityDocument must be a JSON object.")
    return {k: str(v) for k, v in parsed.items()}


def _resources(
    resources: list[dict[str, Any]],
) -> tuple[int, int, tuple[str, ...], tuple[str, ...]]:
    by_name = {r.get("name"): r for r in resources}
    cpu = by_name.get("CPU", {}).get("integerValue", DEFAULT_CPU)
    memory = by_name.get("MEMORY", {}).get("integerValue", DEFAULT_MEMORY_MIB)
    tcp = tuple(by_name.get("PORTS", {}).get("stringSetValue", RESERVED_PORTS))
    udp = tuple(by_name.get("PORTS_UDP", {}).get("stringSetValue", ()))
    if cpu < 0 or memory < 0 or not all(p.isdigit() for p in (*tcp, *udp)):
        raise errors.InvalidParameter("totalResources contains an invalid value.")
    return cpu, memory, tcp, udp
