"""The `-o table` views: rich tables of environments, revisions, deployments, tasks, instances.

Pure: each function takes the SDK's models (`blox.contract`) and returns a rich renderable;
`output.emit` prints it. ARNs are shortened to what a person reads (`web:3`, a task id, a
cluster name); `-o json` keeps them whole. Callers: `envs`, `rollout`, `queries`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table

from blox.contract import css, scheduler

__all__ = [
    "deployment_view",
    "deployments_table",
    "environment_view",
    "environments_table",
    "instances_table",
    "revisions_table",
    "short_arn",
    "tasks_table",
]

NONE = "-"


def _table(*columns: str) -> Table:
    """A table as kubectl prints one: a bold header, no borders (awk and grep read it too)."""
    return Table(*columns, box=None, pad_edge=False, header_style="bold")


def short_arn(arn: str | None) -> str:
    """The readable end of an ARN: `web:3` for a task definition, an id, a cluster's name."""
    if not arn:
        return NONE
    if not arn.startswith("arn:"):
        return arn
    resource = arn.split(":", 5)[-1]
    if resource.startswith("task-definition/"):
        return resource.removeprefix("task-definition/")
    return resource.rsplit("/", 1)[-1]


def _text(value: object) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _revisions(env: scheduler.EnvironmentPublic) -> str:
    status = env.status or scheduler.StatusPublic()
    target = env.target_revision or status.target_revision
    current = status.current_revision
    return f"{_text(current)}/{_text(target)}"


def _state(env: scheduler.EnvironmentPublic) -> str:
    if env.paused:
        return "paused"
    reason = env.status.reason if env.status is not None else None
    return f"{env.health} ({reason})" if reason else env.health


def environments_table(items: Sequence[scheduler.EnvironmentPublic]) -> Table:
    """One row per environment: where it runs, what, and how far its rollout is."""
    table = _table(
        "NAME",
        "CLUSTER",
        "TASK DEFINITION",
        "REVISION",
        "CURRENT/TARGET",
        "DESIRED",
        "UPDATED",
        "AVAILABLE",
        "STATE",
    )
    for env in items:
        status = env.status or scheduler.StatusPublic()
        table.add_row(
            env.name,
            short_arn(env.instance_group.cluster),
            short_arn(env.task_definition),
            _text(env.revision),
            _revisions(env),
            _text(status.desired),
            _text(status.updated),
            _text(status.available),
            _state(env),
        )
    return table


def _pairs(title: str, rows: Sequence[tuple[str, object]]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_header=False,
        box=None,
        pad_edge=False,
    )
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, _text(value))
    return table


def environment_view(env: scheduler.EnvironmentPublic) -> RenderableType:
    """One environment: its settings, its rollout policy and its status counters."""
    group, rollout = env.instance_group, env.rollout
    status = env.status or scheduler.StatusPublic()
    settings = _pairs(
        f"Environment {env.name}",
        [
            ("cluster", group.cluster),
            ("constraints", ", ".join(group.constraints) if group.constraints else None),
            ("task definition", env.task_definition),
            ("revision", env.revision),
            ("target revision", env.target_revision),
            ("deployment token", env.deployment_token),
            ("active deployment", env.active_deployment),
            ("health", env.health),
            ("paused", env.paused),
            ("history limit", env.history_limit),
            ("created", env.created_at),
            ("updated", env.updated_at),
        ],
    )
    parts: list[RenderableType] = [settings]
    if rollout is not None:
        parts.append("")
        parts.append(
            _pairs(
                "Rollout",
                [
                    ("max unavailable", rollout.max_unavailable),
                    ("max surge", rollout.max_surge),
                    ("min ready seconds", rollout.min_ready_seconds),
                    ("progress deadline seconds", rollout.progress_deadline_seconds),
                    ("auto rollback", rollout.auto_rollback),
                ],
            )
        )
    parts.append("")
    parts.append(
        _pairs(
            "Status",
            [
                ("current revision", status.current_revision),
                ("target revision", status.target_revision),
                ("desired", status.desired),
                ("current", status.current),
                ("ready", status.ready),
                ("updated", status.updated),
                ("available", status.available),
                ("unavailable", status.unavailable),
                ("misscheduled", status.misscheduled),
                ("waiting for", status.reason),
                ("observed", status.observed_at),
            ],
        )
    )
    return Group(*parts)


def revisions_table(items: Sequence[scheduler.RevisionPublic]) -> Table:
    """One row per kept revision, newest first."""
    table = _table(
        "REVISION",
        "TASK DEFINITION",
        "CONSTRAINTS",
        "MAX UNAVAILABLE",
        "MAX SURGE",
        "AUTO ROLLBACK",
        "ROLLED BACK FROM",
        "CREATED",
    )
    for rev in items:
        constraints = rev.instance_group.constraints
        table.add_row(
            str(rev.revision),
            short_arn(rev.task_definition),
            ", ".join(constraints) if constraints else NONE,
            _text(rev.rollout.max_unavailable),
            _text(rev.rollout.max_surge),
            _text(rev.rollout.auto_rollback),
            _text(rev.rolled_back_from),
            _text(rev.created_at),
        )
    return table


def deployments_table(items: Sequence[scheduler.DeploymentPublic]) -> Table:
    """One row per deployment, newest first."""
    table = _table("ID", "STATUS", "REVISION", "TASK DEFINITION", "CREATED", "FINISHED", "REASON")
    for d in items:
        table.add_row(
            d.id,
            d.status,
            _text(d.revision),
            short_arn(d.task_definition),
            _text(d.created_at),
            _text(d.finished_at),
            _text(d.reason),
        )
    return table


def deployment_view(d: scheduler.DeploymentPublic) -> Table:
    """One deployment."""
    return _pairs(
        f"Deployment {d.id}",
        [
            ("environment", d.environment_name),
            ("status", d.status),
            ("revision", d.revision),
            ("task definition", d.task_definition),
            ("failed instances", ", ".join(d.failed_instances) or None),
            ("reason", d.reason),
            ("created", d.created_at),
            ("finished", d.finished_at),
        ],
    )


def tasks_table(items: Sequence[css.TaskPublic]) -> Table:
    """One row per task, as the CSS last saw it."""
    table = _table(
        "TASK", "CLUSTER", "INSTANCE", "TASK DEFINITION", "LAST", "DESIRED", "STARTED BY", "GROUP"
    )
    for task in items:
        e = task.entity
        table.add_row(
            short_arn(e.task_arn),
            short_arn(e.cluster_arn),
            short_arn(e.container_instance_arn),
            short_arn(e.task_definition_arn),
            e.last_status,
            e.desired_status,
            _text(e.started_by),
            _text(e.group),
        )
    return table


def instances_table(items: Sequence[css.ContainerInstancePublic]) -> Table:
    """One row per container instance, as the CSS last saw it."""
    table = _table("INSTANCE", "CLUSTER", "EC2 INSTANCE", "STATUS", "AGENT", "RUNNING", "PENDING")
    for instance in items:
        e = instance.entity
        table.add_row(
            short_arn(e.container_instance_arn),
            short_arn(e.cluster_arn),
            _text(e.ec2_instance_id),
            e.status,
            "connected" if e.agent_connected else "disconnected",
            _text(e.running_tasks_count),
            _text(e.pending_tasks_count),
        )
    return table
