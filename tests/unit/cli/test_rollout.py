"""Following a rollout: what the counters mean, when it ends, how it is shown.

`follow` runs against a scripted scheduler (an httpx MockTransport answering the SDK) and a
clock whose sleeps return at once, so that each poll sees the next state of the script.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from rich.console import Console

from blox.cli import rollout
from blox.cli.progress import LiveView, PlainView, RolloutProgress, progress_of
from blox.client import AsyncSchedulerClient
from blox.contract import scheduler

TOKEN = "0b6f7c3e-2f7e-4f0e-9d1a-7c1d2f0e9a11"


def environment(*, target: int | None = 2, **status: Any) -> dict[str, Any]:
    counters = {"desired": 4, "current": 4, "ready": 4, "updated": 0, "available": 4}
    counters.update(status)
    return {
        "name": "web",
        "instanceGroup": {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/default"},
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "deploymentToken": TOKEN,
        "health": "healthy",
        "revision": 2,
        "status": {**counters, "targetRevision": target},
    }


def deployment(status: str = "running", *, id_: str = "d-2", **extra: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "status": status,
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        "environmentName": "web",
        "failedInstances": [],
        "revision": 2,
        **extra,
    }


def test_counters_count_only_once_the_controller_targets_the_deployments_revision() -> None:
    env = scheduler.EnvironmentPublic.model_validate(environment(target=1, updated=4))
    early = progress_of(env, scheduler.DeploymentPublic.model_validate(deployment("pending")))
    assert (early.updated, early.desired) == (0, 4)
    assert early.reason == "the scheduler to pick the deployment up"
    env = scheduler.EnvironmentPublic.model_validate(
        environment(updated=2, ready=3, reason="min-ready")
    )
    now = progress_of(env, scheduler.DeploymentPublic.model_validate(deployment()))
    assert (now.updated, now.ready, now.reason) == (2, 3, "min-ready")
    assert not now.is_final
    assert now.line() == (
        "web: deployment d-2 (revision 2) running: desired 4, updated 2, ready 3, available 4; "
        "waiting: min-ready"
    )


@pytest.mark.parametrize(
    ("status", "completed", "failed"),
    [
        ("pending", False, False),
        ("running", False, False),
        ("completed", True, False),
        ("failed", False, True),
        ("rolled_back", False, True),
        ("superseded", False, True),
    ],
)
def test_a_deployment_is_final_once_completed_failed_rolled_back_or_superseded(
    status: str, completed: bool, failed: bool
) -> None:
    env = scheduler.EnvironmentPublic.model_validate(environment())
    progress = progress_of(env, scheduler.DeploymentPublic.model_validate(deployment(status)))
    assert (progress.is_completed, progress.is_failed) == (completed, failed)
    assert progress.is_final == (completed or failed)


def test_a_failure_says_what_happened_and_where_starts_failed() -> None:
    env = scheduler.EnvironmentPublic.model_validate(environment())
    gone = deployment(
        "rolled_back",
        reason="rolled back to revision 1 as revision 3",
        failedInstances=["arn:i-1", "arn:i-2"],
    )
    progress = progress_of(env, scheduler.DeploymentPublic.model_validate(gone))
    assert progress.outcome() == (
        "the rollout of web failed: deployment d-2 (revision 2) rolled back: "
        "rolled back to revision 1 as revision 3; starts failed on 2 instance(s)"
    )


class InstantClock:
    """A clock whose sleeps return at once, counting them."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return float(len(self.sleeps))

    def now(self) -> datetime:
        return datetime(2017, 6, 1, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def scripted(states: list[tuple[dict[str, Any], dict[str, dict[str, Any]]]]) -> httpx.MockTransport:
    """A scheduler whose environment and deployments move one state per deployment GET (the
    last request of each poll)."""
    script: Iterator[tuple[dict[str, Any], dict[str, dict[str, Any]]]] = iter(states)
    current = next(script)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal current
        path = request.url.path
        env, deployments = current
        if path == "/v1/environments/web":
            return httpx.Response(200, json=env)
        if path == "/v1/environments/web/deployments":
            newest_first = sorted(deployments.values(), key=lambda d: d["id"], reverse=True)
            return httpx.Response(200, json={"items": newest_first})
        prefix = "/v1/environments/web/deployments/"
        if path.startswith(prefix) and path[len(prefix) :] in deployments:
            current = next(script, current)
            return httpx.Response(200, json=deployments[path[len(prefix) :]])
        return httpx.Response(404, text="Environment nope does not exist\n")

    return httpx.MockTransport(answer)


async def run(
    transport: httpx.MockTransport, deployment_id: str | None, *, once: bool = False
) -> tuple[RolloutProgress, list[str], InstantClock]:
    clock = InstantClock()
    out = io.StringIO()
    async with AsyncSchedulerClient(
        "http://scheduler.test", transport=transport, clock=clock
    ) as client:
        progress, _ = await rollout.follow(
            client, "web", deployment_id, clock=clock, view=PlainView(out), once=once
        )
    return progress, out.getvalue().splitlines(), clock


async def test_follow_polls_until_completed_printing_each_change_once() -> None:
    transport = scripted(
        [
            (environment(updated=0, reason="starting"), {"d-2": deployment("pending")}),
            (environment(updated=0, reason="starting"), {"d-2": deployment("pending")}),
            (environment(updated=2, reason="min-ready"), {"d-2": deployment()}),
            (environment(updated=4), {"d-2": deployment("completed")}),
        ]
    )
    progress, lines, clock = await run(transport, None)
    assert progress.is_completed
    assert [line.split(") ", 1)[1].split(":")[0] for line in lines] == [
        "pending",
        "running",
        "completed",
    ]
    assert "updated 4" in lines[-1]
    assert clock.sleeps == [rollout.POLL_S] * 3


async def test_follow_hands_over_to_the_deployment_that_superseded_the_one_followed() -> None:
    newer = deployment("completed", id_="d-3", revision=2)
    transport = scripted(
        [
            (environment(), {"d-2": deployment()}),
            (environment(updated=4), {"d-2": deployment("superseded", reason="r"), "d-3": newer}),
        ]
    )
    progress, lines, _ = await run(transport, "d-2")
    assert progress.deployment == "d-3"
    assert progress.is_completed
    assert "deployment d-2 was superseded by d-3 (r)" in lines


async def test_follow_ends_when_the_deployment_is_rolled_back() -> None:
    transport = scripted(
        [
            (environment(reason="backing-off"), {"d-2": deployment()}),
            (environment(reason="backing-off"), {"d-2": deployment("rolled_back", reason="x")}),
        ]
    )
    progress, lines, _ = await run(transport, "d-2")
    assert progress.is_failed
    assert "rolled_back" in lines[-1]


async def test_follow_once_looks_a_single_time() -> None:
    transport = scripted([(environment(), {"d-2": deployment()})])
    progress, lines, clock = await run(transport, "d-2", once=True)
    assert (progress.status, len(lines), clock.sleeps) == ("running", 1, [])


def test_the_live_view_draws_a_bar_of_updated_instances() -> None:
    buffer = io.StringIO()
    view = LiveView(Console(file=buffer, width=120, force_terminal=True, color_system=None))
    env = scheduler.EnvironmentPublic.model_validate(environment(updated=1, reason="starting"))
    view.show(progress_of(env, scheduler.DeploymentPublic.model_validate(deployment())))
    env = scheduler.EnvironmentPublic.model_validate(environment(updated=3))
    view.show(progress_of(env, scheduler.DeploymentPublic.model_validate(deployment())))
    view.close()
    drawn = buffer.getvalue()
    assert "web revision 2" in drawn
    assert "━" in drawn
    assert "3/4" in drawn
    assert "updated 3" in drawn
