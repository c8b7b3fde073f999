"""How far a rollout is, and the two ways of showing it: a live progress bar, or plain lines.

`progress_of(environment, deployment)` is pure: it reads the scheduler's status counters (per
container instance, as a DaemonSet's) and the deployment's status into a `Progress`. The
counters belong to the deployment only once the controller has observed its revision
(`status.targetRevision`); before that nothing counts as updated. `LiveView` draws a rich
progress bar (updated of desired instances) that redraws in place on a terminal; `PlainView`
prints one line each time the numbers change, for pipes, files and CI logs. Callers: `rollout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from blox.contract import scheduler

__all__ = [
    "FAILED_STATUSES",
    "LiveView",
    "PlainView",
    "RolloutProgress",
    "View",
    "progress_of",
]

FAILED_STATUSES = frozenset({"failed", "rolled_back", "superseded"})


@dataclass(frozen=True, slots=True)
class RolloutProgress:
    """One look at a deployment of an environment and the environment's counters."""

    environment: str
    deployment: str
    status: str  # the deployment's: pending, running, completed, failed, rolled_back, superseded
    revision: int | None
    desired: int
    updated: int
    ready: int
    available: int
    reason: str | None  # what the controller waits for (`min-ready`, `backing-off` …)
    detail: str | None  # the deployment's own reason (why it failed or was rolled back)
    failed_instances: tuple[str, ...] = ()

    @property
    def is_completed(self) -> bool:
        """Every eligible instance runs an available task of the deployment's revision."""
        return self.status == "completed"

    @property
    def is_failed(self) -> bool:
        """The deployment ended without completing."""
        return self.status in FAILED_STATUSES

    @property
    def is_final(self) -> bool:
        """The deployment will not change any more."""
        return self.is_completed or self.is_failed

    def counts(self) -> str:
        """`desired 4, updated 2, ready 3, available 3`."""
        return (
            f"desired {self.desired}, updated {self.updated}, ready {self.ready}, "
            f"available {self.available}"
        )

    def line(self) -> str:
        """The one-line state: deployment, status, counters and what it waits for."""
        waiting = f"; waiting: {self.reason}" if self.reason and not self.is_final else ""
        return (
            f"{self.environment}: deployment {self.deployment} (revision {self.revision}) "
            f"{self.status}: {self.counts()}{waiting}"
        )

    def outcome(self) -> str:
        """What to say once final: completed, or why it failed."""
        if self.is_completed:
            return (
                f"{self.environment}: deployment {self.deployment} completed: revision "
                f"{self.revision} runs on {self.updated}/{self.desired} instances"
            )
        why = f": {self.detail}" if self.detail else ""
        failed = len(self.failed_instances)
        on = f"; starts failed on {failed} instance(s)" if failed else ""
        return (
            f"the rollout of {self.environment} failed: deployment {self.deployment} "
            f"(revision {self.revision}) {self.status.replace('_', ' ')}{why}{on}"
        )


def progress_of(
    environment: scheduler.EnvironmentPublic, deployment: scheduler.DeploymentPublic
) -> RolloutProgress:
    """The progress of `deployment` as `environment`'s status counters show it.

    environment: the environment as the scheduler answers it, with its `status` counters.
    deployment: one deployment of it, the one followed.
    """
    status = environment.status or scheduler.StatusPublic()
    ours = deployment.revision is not None and status.target_revision == deployment.revision
    return RolloutProgress(
        environment=environment.name,
        deployment=deployment.id,
        status=deployment.status,
        revision=deployment.revision,
        desired=status.desired or 0,
        updated=(status.updated or 0) if ours else 0,
        ready=status.ready or 0,
        available=status.available or 0,
        reason=status.reason if ours else "the scheduler to pick the deployment up",
        detail=deployment.reason,
        failed_instances=tuple(deployment.failed_instances),
    )


class View(Protocol):
    """Where the follower reports."""

    def show(self, progress: RolloutProgress) -> None:
        """Draw the latest progress."""

    def note(self, text: str) -> None:
        """Say something that is not progress (the deployment followed changed …)."""

    def close(self) -> None:
        """Stop drawing; what was drawn stays."""


class PlainView:
    """One line per change of the numbers, for pipes, files and logs."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file
        self._last = ""

    def show(self, progress: RolloutProgress) -> None:
        line = progress.line()
        if line != self._last:
            typer.echo(line, file=self._file)
            self._last = line

    def note(self, text: str) -> None:
        typer.echo(text, file=self._file)

    def close(self) -> None:
        return None


class LiveView:
    """A progress bar of updated instances that redraws in place, with the counters beside it."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task: TaskID | None = None

    def show(self, progress: RolloutProgress) -> None:
        description = f"{progress.environment} revision {progress.revision}"
        detail = f"{progress.status}: {progress.counts()}"
        if progress.reason and not progress.is_final:
            detail += f" | waiting: {progress.reason}"
        total = progress.desired if progress.desired or progress.is_final else None
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, detail=detail)
        self._progress.update(
            self._task,
            description=description,
            total=total,
            completed=progress.updated,
            detail=detail,
        )

    def note(self, text: str) -> None:
        self._progress.console.print(text)

    def close(self) -> None:
        if self._task is not None:
            self._progress.refresh()
        self._progress.stop()
