"""`blox env …`: create, list, show, update, delete, roll back, pause and resume environments.

Thin: options become the `blox.contract.scheduler` requests (checked by their models before
anything is sent: a bad value is a usage error, exit 2), the `SchedulerClient` sends them, and
`output` prints the answer (`-o json` is the scheduler's JSON). A share (`--max-unavailable`,
`--max-surge`) is a count (`2`) or a percentage (`25%`). Rolling back and deploying with
`--wait` follow the rollout as `blox rollout status` does (`rollout.py`).
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from blox.cli import output, rollout, tables
from blox.cli.exits import UsageInvalid
from blox.cli.session import Session, client_command
from blox.contract import scheduler

__all__ = ["app", "request", "share"]

app = typer.Typer(
    help="Environments: one daemon per matching container instance.", no_args_is_help=True
)

NameArgument = typer.Argument(..., help="The environment's name.", show_default=False)
ConstraintOption = typer.Option(
    None,
    "--constraint",
    help="Run only on matching instances, e.g. 'attribute:stack == prod' (repeatable).",
)
UnavailableOption = typer.Option(
    None, "--max-unavailable", help="Instances without an available task during a rollout (2, 25%)."
)
SurgeOption = typer.Option(
    None, "--max-surge", help="Instances running an old and a new task at once (1, 10%)."
)
MinReadyOption = typer.Option(
    None, "--min-ready-seconds", help="How long a task must be ready to count as available."
)
DeadlineOption = typer.Option(
    None, "--progress-deadline-seconds", help="A rollout without progress this long fails."
)
RollbackOption = typer.Option(
    None, "--auto-rollback/--no-auto-rollback", help="Roll back a rollout that fails."
)
HistoryOption = typer.Option(None, "--history-limit", help="Earlier revisions kept (1-100).")


def share(value: str | None) -> int | str | None:
    """A share as the API takes it: digits as a count, anything else (`25%`) as text."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def request(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    """`fields` (wire names) as `model`; UsageInvalid names the first field that is wrong."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageInvalid(f"invalid {where}: {first['msg']}") from exc


def _rollout(
    max_unavailable: str | None,
    max_surge: str | None,
    min_ready_seconds: float | None,
    progress_deadline_seconds: float | None,
    auto_rollback: bool | None,
) -> dict[str, Any] | None:
    given = {
        "maxUnavailable": share(max_unavailable),
        "maxSurge": share(max_surge),
        "minReadySeconds": min_ready_seconds,
        "progressDeadlineSeconds": progress_deadline_seconds,
        "autoRollback": auto_rollback,
    }
    settings = {key: value for key, value in given.items() if value is not None}
    return settings or None


def _print_environment(session: Session, env: scheduler.EnvironmentPublic) -> None:
    output.emit(output.payload(env), session.output, lambda: tables.environment_view(env))


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _spec(
    task_definition: str | None,
    group: dict[str, Any],
    rollout: dict[str, Any] | None,
    history_limit: int | None,
) -> dict[str, Any]:
    """What create and update share, in wire names, without what was not given."""
    return _without_none(
        {
            "taskDefinition": task_definition,
            "instanceGroup": group or None,
            "rollout": rollout,
            "historyLimit": history_limit,
        }
    )


@app.command("create")
@client_command
def create(
    session: Session,
    name: str = NameArgument,
    task_definition: str = typer.Option(
        ..., "--task-definition", "-t", help="Family, family:revision or ARN."
    ),
    cluster: str = typer.Option("default", "--cluster", "-c", help="Cluster name or ARN."),
    constraint: list[str] | None = ConstraintOption,
    max_unavailable: str | None = UnavailableOption,
    max_surge: str | None = SurgeOption,
    min_ready_seconds: float | None = MinReadyOption,
    progress_deadline_seconds: float | None = DeadlineOption,
    auto_rollback: bool | None = RollbackOption,
    history_limit: int | None = HistoryOption,
) -> None:
    """Create an environment (revision 1); `blox deploy NAME` rolls it out."""
    group = _without_none({"cluster": cluster, "constraints": constraint})
    rollout = _rollout(
        max_unavailable, max_surge, min_ready_seconds, progress_deadline_seconds, auto_rollback
    )
    body: scheduler.EnvironmentCreate = request(
        scheduler.EnvironmentCreate,
        {"name": name, **_spec(task_definition, group, rollout, history_limit)},
    )
    with session.scheduler() as client:
        _print_environment(session, client.create_environment(body))


@app.command("list")
@client_command
def list_(
    session: Session,
    cluster: str | None = typer.Option(None, "--cluster", "-c", help="Only this cluster's."),
) -> None:
    """List the environments."""
    with session.scheduler() as client:
        items = client.environments(cluster)
    output.emit(output.payload(items), session.output, lambda: tables.environments_table(items))


@app.command("show")
@client_command
def show(session: Session, name: str = NameArgument) -> None:
    """Show an environment: settings, rollout policy, status counts, current/target revision."""
    with session.scheduler() as client:
        env = client.environment(name)
    _print_environment(session, env)


@app.command("revisions")
@client_command
def revisions(session: Session, name: str = NameArgument) -> None:
    """List an environment's kept revisions, newest first."""
    with session.scheduler() as client:
        items = client.revisions(name)
    output.emit(output.payload(items), session.output, lambda: tables.revisions_table(items))


@app.command("deployments")
@client_command
def deployments(session: Session, name: str = NameArgument) -> None:
    """List an environment's deployments, newest first."""
    with session.scheduler() as client:
        items = client.deployments(name)
    output.emit(output.payload(items), session.output, lambda: tables.deployments_table(items))


@app.command("update")
@client_command
def update(
    session: Session,
    name: str = NameArgument,
    task_definition: str | None = typer.Option(
        None, "--task-definition", "-t", help="Family, family:revision or ARN."
    ),
    cluster: str | None = typer.Option(
        None, "--cluster", "-c", help="The cluster (it cannot change; naming it is allowed)."
    ),
    constraint: list[str] | None = ConstraintOption,
    no_constraints: bool = typer.Option(
        False, "--no-constraints", help="Drop every constraint: run on all instances."
    ),
    max_unavailable: str | None = UnavailableOption,
    max_surge: str | None = SurgeOption,
    min_ready_seconds: float | None = MinReadyOption,
    progress_deadline_seconds: float | None = DeadlineOption,
    auto_rollback: bool | None = RollbackOption,
    history_limit: int | None = HistoryOption,
) -> None:
    """Change an environment: a new revision (deploy it with `blox deploy NAME`)."""
    if no_constraints and constraint:
        raise UsageInvalid("--constraint and --no-constraints exclude each other")
    constraints = [] if no_constraints else constraint or None
    group = _without_none({"cluster": cluster, "constraints": constraints})
    rollout = _rollout(
        max_unavailable, max_surge, min_ready_seconds, progress_deadline_seconds, auto_rollback
    )
    body: scheduler.EnvironmentUpdate = request(
        scheduler.EnvironmentUpdate, _spec(task_definition, group, rollout, history_limit)
    )
    with session.scheduler() as client:
        _print_environment(session, client.update_environment(name, body))


@app.command("delete")
@client_command
def delete(
    session: Session,
    name: str = NameArgument,
    force: bool = typer.Option(
        False, "--force", help="Forget it at once instead of waiting for its tasks to stop."
    ),
) -> None:
    """Delete an environment; its tasks are stopped (quiet when there is none, as v0.3)."""
    with session.scheduler() as client:
        client.delete_environment(name, force=force)
    data = {"name": name, "deleted": True, "force": force}
    done = f"environment {name} deleted" + ("" if force else "; its tasks are being stopped")
    output.emit(data, session.output, lambda: done)


@app.command("rollback")
@client_command
def rollback_(
    session: Session,
    name: str = NameArgument,
    revision: int | None = typer.Option(
        None, "--revision", "-r", min=1, help="The revision to go back to (default: previous)."
    ),
    wait: bool = typer.Option(False, "--wait", "-w", help="Follow the rollout to its end."),
) -> None:
    """Deploy a copy of an earlier revision (default: the one before the current)."""
    with session.scheduler() as client:
        deployment = client.rollback(name, revision)
    rollout.finish(session, deployment, wait=wait)


@app.command("pause")
@client_command
def pause(session: Session, name: str = NameArgument) -> None:
    """Pause an environment's rollout: instances keep what they run."""
    with session.scheduler() as client:
        _print_environment(session, client.pause(name))


@app.command("resume")
@client_command
def resume(session: Session, name: str = NameArgument) -> None:
    """Resume a paused rollout."""
    with session.scheduler() as client:
        _print_environment(session, client.resume(name))
