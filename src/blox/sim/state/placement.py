"""Task operations: StartTask, RunTask, StopTask, DescribeTasks, ListTasks and the stop path.

Placement reserves the task definition's CPU, memory and host ports on the instance at once
(as ECS does on PENDING); `finish_stop` gives them back when the task is STOPPED. Per-instance
refusals use ECS's failure reasons: MISSING, INACTIVE, DRAINING, AGENT, RESOURCE:<name>.
"""

from __future__ import annotations

from typing import Any

from blox.sim import errors
from blox.sim.state import lifecycle
from blox.sim.state.clusters import Cluster
from blox.sim.state.ecs import InstanceOperations, check_batch
from blox.sim.state.instances import ContainerInstance
from blox.sim.state.task_definitions import TaskDefinition
from blox.sim.state.tasks import STARTED_BY_MAX_CHARS, Task

START_TASK_INSTANCES_MAX = 10
RUN_TASK_COUNT_MAX = 10
DESCRIBE_MAX = 100
GROUP_MAX_CHARS = 255
USER_STOP_REASON = "Task stopped by user"

Failures = list[dict[str, str]]


class TaskOperations(InstanceOperations):
    """The task half of the ECS API, on top of the instance registry."""

    def start_task(
        self,
        *,
        cluster: str | None,
        task_definition: str,
        instances: list[str],
        started_by: str | None = None,
        group: str | None = None,
    ) -> tuple[list[dict[str, Any]], Failures]:
        """Place one task on each named instance that can take it."""
        target = self.clusters.get(cluster)
        if not instances:
            raise errors.InvalidParameter("containerInstances cannot be empty.")
        if len(instances) > START_TASK_INSTANCES_MAX:
            raise errors.InvalidParameter(
                f"instanceIds can have at most {START_TASK_INSTANCES_MAX} items."
            )
        definition = self._definition_for_launch(task_definition, started_by, group)
        placed: list[Task] = []
        failures: Failures = []
        for ref in instances:
            instance = self.instances.find(target.arn, ref)
            reason = "MISSING" if instance is None else self._refusal(instance, definition)
            if instance is None or reason is not None:
                failures.append({"arn": instance.arn if instance else ref, "reason": reason or ""})
                continue
            placed.append(self._place(target, instance, definition, started_by, group))
        return [t.describe() for t in placed], failures

    def run_task(
        self,
        *,
        cluster: str | None,
        task_definition: str,
        count: int = 1,
        started_by: str | None = None,
        group: str | None = None,
    ) -> tuple[list[dict[str, Any]], Failures]:
        """Place `count` tasks on random instances that fit (the `random` strategy)."""
        target = self.clusters.get(cluster)
        if not 1 <= count <= RUN_TASK_COUNT_MAX:
            raise errors.InvalidParameter(f"count must be between 1 and {RUN_TASK_COUNT_MAX}.")
        definition = self._definition_for_launch(task_definition, started_by, group)
        candidates = self.instances.placeable(target.arn)
        if not candidates:
            raise errors.InvalidParameter("No Container Instances were found in your cluster.")
        placed: list[Task] = []
        refused: dict[str, str] = {}
        for _ in range(count):
            fitting = []
            for instance in candidates:
                reason = self._refusal(instance, definition)
                if reason is None:
                    fitting.append(instance)
                else:
                    refused[instance.arn] = reason
            if not fitting:
                break
            chosen = self.rng.choice(fitting)
            placed.append(self._place(target, chosen, definition, started_by, group))
        failures = (
            [{"arn": a, "reason": r} for a, r in refused.items()] if len(placed) < count else []
        )
        return [t.describe() for t in placed], failures

    def stop_task(
        self, *, cluster: str | None, task: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Ask a task to stop (UserInitiated); it is STOPPED after the stopping delay."""
        target = self.clusters.get(cluster)
        if reason is not None and len(reason) > 255:
            raise errors.InvalidParameter("reason can have at most 255 characters.")
        found = self.tasks.find(target.arn, task)
        if found is None:
            raise errors.InvalidParameter("The referenced task was not found.")
        if found.desired_status != "STOPPED":
            self.begin_stop(found, reason=reason or USER_STOP_REASON, stop_code="UserInitiated")
            self.due.schedule(
                "stop",
                found.seq,
                at=self.clock.monotonic() + self.due.jitter(self.due.timing.stopping_s),
            )
            if self.due.timing.stopping_s[1] <= 0:
                self.finish_stop(found)
        return found.describe()

    def describe_tasks(
        self, *, cluster: str | None, refs: list[str]
    ) -> tuple[list[dict[str, Any]], Failures]:
        """Describe up to 100 tasks; unknown (or expired) ones are MISSING failures."""
        target = self.clusters.get(cluster)
        check_batch(refs, what="tasks", limit=DESCRIBE_MAX)
        found, failures = [], []
        for ref in refs:
            task = self.tasks.find(target.arn, ref)
            if task is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(task.describe())
        return found, failures

    def list_tasks(
        self,
        *,
        cluster: str | None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        desired_status: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> tuple[list[str], int | None]:
        """One ListTasks page (desiredStatus RUNNING unless asked) and the seq to resume after."""
        target = self.clusters.get(cluster)
        filters = {"desired": desired_status or "RUNNING"}
        if container_instance is not None:
            filters["instance"] = self.instance_of(target, container_instance).arn
        if family is not None:
            filters["family"] = family
        if started_by is not None:
            filters["startedBy"] = started_by
        tasks, more = self.tasks.page(
            cluster_arn=target.arn, filters=filters, after=after, limit=limit
        )
        return [t.arn for t in tasks], tasks[-1].seq if more else None

    # -- the shared stop path --------------------------------------------------------------

    def begin_stop(
        self,
        task: Task,
        *,
        reason: str,
        stop_code: str | None,
        exit_code: int | None = None,
        container_reason: str | None = None,
    ) -> None:
        """desiredStatus STOPPED, announced."""
        self.tasks.set_desired(task, "STOPPED")
        lifecycle.begin_stopping(
            task,
            now=self.clock.now(),
            reason=reason,
            stop_code=stop_code,
            exit_code=exit_code,
            container_reason=container_reason,
        )
        self.task_changed(task)

    def finish_stop(self, task: Task) -> None:
        """lastStatus STOPPED, resources released; announces the task, then its instance."""
        if task.last_status == "STOPPED":
            return
        was_pending = task.last_status == "PENDING"
        lifecycle.finish_stopping(task, now=self.clock.now())
        self.task_changed(task)
        self._count(task, pending=-1 if was_pending else 0, running=0 if was_pending else -1)
        instance = self.instances.by_arn.get(task.instance_arn)
        if instance is not None and instance.status != "INACTIVE":
            instance.release(task.definition)
            self.instance_changed(instance)
        retention = self.due.timing.stopped_retention_s
        self.due.schedule("expire_task", task.seq, at=self.clock.monotonic() + retention)

    # -- placement -------------------------------------------------------------------------

    def _definition_for_launch(
        self, ref: str, started_by: str | None, group: str | None
    ) -> TaskDefinition:
        if started_by is not None and len(started_by) > STARTED_BY_MAX_CHARS:
            raise errors.InvalidParameter(
                f"startedBy can have at most {STARTED_BY_MAX_CHARS} characters."
            )
        if group is not None and len(group) > GROUP_MAX_CHARS:
            raise errors.InvalidParameter(f"group can have at most {GROUP_MAX_CHARS} characters.")
        definition = self.task_definitions.find(ref)
        if definition is None:
            raise errors.InvalidParameter("TaskDefinition not found.")
        return definition

    def _refusal(self, instance: ContainerInstance, definition: TaskDefinition) -> str | None:
        if instance.status != "ACTIVE":
            return instance.status  # INACTIVE or DRAINING
        if instance.arn in self.start_failures:
            return self.start_failures[instance.arn]
        if not instance.agent_connected:
            return "AGENT"
        return instance.fit_failure(definition)

    def _place(
        self,
        cluster: Cluster,
        instance: ContainerInstance,
        definition: TaskDefinition,
        started_by: str | None,
        group: str | None,
    ) -> Task:
        task_id = self.hex_id()
        task = Task(
            seq=self.next_seq(),
            arn=self.arn("task", cluster, task_id),
            cluster_arn=cluster.arn,
            instance_arn=instance.arn,
            zone=instance.zone,
            definition=definition,
            container_arns=[
                self.arn("container", cluster, f"{task_id}/{self.uuid()}")
                for _ in definition.containers
            ],
            created_at=self.clock.now(),
            started_by=started_by,
            group=group,
        )
        self.tasks.add(task)
        instance.reserve(definition)
        self._count(task, pending=1, running=0)
        self.announce("task", task)
        self.instance_changed(instance)
        delay = self.due.jitter(self.due.timing.pending_s)
        self.due.schedule("run", task.seq, at=self.clock.monotonic() + delay)
        return task

    def _count(self, task: Task, *, pending: int, running: int) -> None:
        cluster = self.clusters.find(task.cluster_arn)
        instance = self.instances.by_arn.get(task.instance_arn)
        for holder in (cluster, instance):
            if holder is None:
                continue
            if isinstance(holder, Cluster):
                holder.pending_tasks += pending
                holder.running_tasks += running
            else:
                holder.pending_count += pending
                holder.running_count += running
