"""The simulator's state: pure resources and transitions under an injected clock.

`EcsState` is the one object `sim/api.py`, `sim/server.py` and fault injection talk to. It adds
clusters, task definitions, deregistration, the fault hooks and `tick()` (due lifecycle steps)
to the task and instance operations of `placement.py` and `ecs.py`.
"""

from __future__ import annotations

from typing import Any

from blox.sim import errors
from blox.sim.state import lifecycle
from blox.sim.state.changes import EntityChange, Listener
from blox.sim.state.ecs import SimConfig
from blox.sim.state.lifecycle import LifecycleTiming
from blox.sim.state.placement import TaskOperations

__all__ = ["EcsState", "EntityChange", "LifecycleTiming", "Listener", "SimConfig"]


class EcsState(TaskOperations):
    """A whole simulated ECS region: every operation the API serves plus the fault hooks."""

    # -- clusters --------------------------------------------------------------------------

    def create_cluster(self, *, name: str | None) -> dict[str, Any]:
        """Create a cluster (idempotent)."""
        return self.clusters.create(name).describe()

    def delete_cluster(self, *, cluster: str) -> dict[str, Any]:
        """Make an empty cluster INACTIVE."""
        target = self.clusters.get(cluster)
        if target.registered_instances:
            raise errors.ClusterContainsInstances(
                "The Cluster cannot be deleted while Container Instances are active or draining."
            )
        if target.pending_tasks or target.running_tasks:
            raise errors.ClusterContainsTasks(
                "The Cluster cannot be deleted while Tasks are active."
            )
        target.status = "INACTIVE"
        return target.describe()

    def describe_clusters(
        self, *, refs: list[str] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Describe clusters (the default cluster when none are named)."""
        refs = refs or ["default"]
        if len(refs) > 100:
            raise errors.InvalidParameter("clusters can have at most 100 items.")
        found, failures = [], []
        for ref in refs:
            cluster = self.clusters.find(ref)
            if cluster is None:
                failures.append(
                    {"arn": self.clusters.arn_of(self.clusters.name_of(ref)), "reason": "MISSING"}
                )
            else:
                found.append(cluster.describe())
        return found, failures

    # -- task definitions ------------------------------------------------------------------

    def register_task_definition(self, request: dict[str, Any]) -> dict[str, Any]:
        """Register the next revision of a family from a validated request."""
        return self.task_definitions.register(request, now=self.clock.now()).describe()

    def describe_task_definition(self, *, ref: str) -> dict[str, Any]:
        """One revision by family, family:revision or ARN."""
        definition = self.task_definitions.find(ref)
        if definition is None:
            raise errors.ClientFault("Unable to describe task definition.")
        return definition.describe()

    def deregister_task_definition(self, *, ref: str) -> dict[str, Any]:
        """Mark a revision INACTIVE."""
        return self.task_definitions.deregister(ref, now=self.clock.now()).describe()

    # -- deregistration --------------------------------------------------------------------

    def deregister_container_instance(
        self, *, cluster: str | None, instance: str, force: bool = False
    ) -> dict[str, Any]:
        """INACTIVE, agent gone; with `force`, its tasks are STOPPED first."""
        target = self.clusters.get(cluster)
        found = self.instance_of(target, instance)
        if found.status == "INACTIVE":
            return found.describe()
        active = [
            t for t in self.tasks.on_instance(target.arn, found.arn) if t.last_status != "STOPPED"
        ]
        if active and not force:
            raise errors.InvalidParameter("Found running tasks on the instance.")
        for task in active:
            if task.desired_status != "STOPPED":
                self.begin_stop(
                    task, reason="Container instance deregistration forced by user", stop_code=None
                )
            self.finish_stop(task)
        self.instances.set_status(found, "INACTIVE")
        found.agent_connected = False
        target.registered_instances -= 1
        self.start_failures.pop(found.arn, None)
        self.instance_changed(found)
        retention = self.due.timing.inactive_retention_s
        self.due.schedule("expire_instance", found.seq, at=self.clock.monotonic() + retention)
        return found.describe()

    # -- fault hooks -----------------------------------------------------------------------

    def disconnect_agent(self, cluster: str, container_instance_arn: str) -> None:
        """The instance's agent loses its connection (status stays as it is)."""
        self._set_agent(cluster, container_instance_arn, connected=False)

    def reconnect_agent(self, cluster: str, container_instance_arn: str) -> None:
        """The instance's agent is back."""
        self._set_agent(cluster, container_instance_arn, connected=True)

    def kill_task(
        self,
        cluster: str,
        task_arn: str,
        *,
        reason: str = "Essential container in task exited",
        stop_code: str = "EssentialContainerExited",
        exit_code: int | None = 137,
        container_reason: str | None = None,
    ) -> dict[str, Any]:
        """The task dies now (e.g. OOM): desiredStatus and lastStatus STOPPED, announced twice."""
        target = self.clusters.get(cluster)
        task = self.tasks.find(target.arn, task_arn)
        if task is None:
            raise errors.InvalidParameter("The referenced task was not found.")
        if task.last_status != "STOPPED":
            if task.desired_status != "STOPPED":
                self.begin_stop(
                    task,
                    reason=reason,
                    stop_code=stop_code,
                    exit_code=exit_code,
                    container_reason=container_reason,
                )
            self.finish_stop(task)
        return task.describe()

    def fail_starts(
        self, cluster: str, container_instance_arns: list[str], reason: str = "AGENT"
    ) -> None:
        """StartTask / RunTask refuse these instances with `reason` until `clear_start_failures`."""
        target = self.clusters.get(cluster)
        found = [self.instance_of(target, ref) for ref in container_instance_arns]
        self.start_failures.update((i.arn, reason) for i in found)

    def clear_start_failures(self, container_instance_arns: list[str] | None = None) -> None:
        """Let StartTask place on these (or all) instances again."""
        if container_instance_arns is None:
            self.start_failures.clear()
        for arn in container_instance_arns or []:
            self.start_failures.pop(arn, None)

    def _set_agent(self, cluster: str, ref: str, *, connected: bool) -> None:
        found = self.instance_of(self.clusters.get(cluster), ref)
        if found.status != "INACTIVE" and found.agent_connected != connected:
            found.agent_connected = connected
            self.instance_changed(found)

    # -- time ------------------------------------------------------------------------------

    def tick(self) -> int:
        """Apply every lifecycle step due by the clock's now; returns how many were applied."""
        now = self.clock.monotonic()
        applied = 0
        while (step := self.due.pop_due(now)) is not None:
            applied += self._apply(*step)
        return applied

    def _apply(self, step: lifecycle.Step, seq: int) -> int:
        if step == "expire_instance":
            instance = self.instances.by_seq.get(seq)
            if instance is None or instance.status != "INACTIVE":
                return 0
            self.instances.remove(instance)
            return 1
        task = self.tasks.by_seq.get(seq)
        if task is None:
            return 0
        if step == "run" and task.last_status == "PENDING" and task.desired_status == "RUNNING":
            pending_s = (self.clock.now() - task.created_at).total_seconds()
            lifecycle.start_running(task, now=self.clock.now(), pending_s=pending_s)
            self._count(task, pending=-1, running=1)
            self.task_changed(task)
            return 1
        if step == "stop" and task.last_status != "STOPPED":
            self.finish_stop(task)
            return 1
        if step == "expire_task" and task.last_status == "STOPPED":
            self.tasks.remove(task)
            return 1
        return 0
