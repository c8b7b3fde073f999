"""The scheduler API's blox-ecs additions over real HTTP: update (a new revision and token),
revisions, rollback, pause / resume, forced delete, the controller's status and deployment
changes as the API shows them, and Prometheus metrics when given.

Uses test_scheduler_api's servers (the simulator, and the API under uvicorn on SQLite).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from blox.clock import SystemClock
from blox.contract import texts
from blox.model.daemon import DeploymentStatus
from blox.obs import RequestMetrics
from blox.obs.metrics import exposition
from blox.scheduler import environments
from blox.scheduler.api import create_app
from blox.store import Store, keys, open_store
from tests.integration.test_scheduler_api import (
    ARN,
    assert_error,
    created,
)
from tests.integration.test_scheduler_api import api as api  # fixtures of that module
from tests.integration.test_scheduler_api import served as served
from tests.integration.test_scheduler_api import sim as sim

pytestmark = pytest.mark.integration

WEB = f"{ARN}:task-definition/web"


def deploy(api: httpx.Client, name: str, token: str) -> dict[str, Any]:
    response = api.post(f"/v1/environments/{name}/deployments", params={"deploymentToken": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def finish(served: Any, name: str, deployment_id: str, status: DeploymentStatus) -> None:
    """Move a deployment as the controller would."""

    async def move(store: Store) -> None:
        await environments.set_deployment_status(
            store, name, deployment_id=deployment_id, status=status, now=SystemClock().now()
        )

    served.run(move)


def test_an_update_makes_a_new_revision_with_a_new_token_that_deploys_it(
    api: httpx.Client, served: Any
) -> None:
    first = created(api, "upd")
    first_deployment = deploy(api, "upd", first["deploymentToken"])
    response = api.patch(
        "/v1/environments/upd",
        json={
            "taskDefinition": "web:2",
            "rollout": {"maxUnavailable": "10%", "minReadySeconds": 5},
            "instanceGroup": {"constraints": ["attribute:stack == prod"]},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["revision"], body["targetRevision"]) == (2, 1)
    assert body["taskDefinition"] == f"{WEB}:2"
    assert body["deploymentToken"] != first["deploymentToken"]
    assert body["instanceGroup"] == {
        "cluster": f"{ARN}:cluster/alpha",
        "constraints": ["attribute:stack == prod"],
    }
    assert body["rollout"] == {
        "maxUnavailable": "10%",
        "maxSurge": 0,
        "minReadySeconds": 5.0,
        "progressDeadlineSeconds": 600.0,
        "autoRollback": False,
    }
    assert body["activeDeployment"] == first_deployment["id"]
    finish(served, "upd", first_deployment["id"], DeploymentStatus.COMPLETED)
    second = deploy(api, "upd", body["deploymentToken"])
    assert (second["revision"], second["taskDefinition"]) == (2, f"{WEB}:2")
    listed = api.get("/v1/environments/upd/deployments").json()["items"]
    assert [d["id"] for d in listed] == [second["id"], first_deployment["id"]]
    assert listed[1]["status"] == "completed" and "finishedAt" in listed[1]
    assert api.get("/v1/environments/upd").json()["targetRevision"] == 2


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, texts.NOTHING_TO_UPDATE),
        ({"instanceGroup": {"cluster": "beta"}}, 400, "cannot be changed"),
        ({"taskDefinition": "web:3"}, 404, texts.TASK_DEFINITION_INACTIVE),
        ({"rollout": {"maxSurge": "x"}}, 400, "maxSurge must be a count or a percentage"),
        ({"revision": 3}, 400, "Invalid request: revision: unknown field"),
    ],
    ids=["nothing", "another cluster", "inactive task definition", "bad share", "unknown field"],
)
def test_a_bad_update_is_refused_and_changes_nothing(
    api: httpx.Client, body: dict[str, Any], status: int, text: str
) -> None:
    if api.get("/v1/environments/s-upd-bad").status_code == 404:
        created(api, "s-upd-bad")
    before = api.get("/v1/environments/s-upd-bad")
    response = api.patch("/v1/environments/s-upd-bad", json=body)
    assert response.status_code == status and text in response.text, response.text
    assert api.get("/v1/environments/s-upd-bad").json() == before.json()
    assert_error(
        api.patch("/v1/environments/ghost", json={"taskDefinition": "web:2"}),
        404,
        texts.ENVIRONMENT_NOT_FOUND.format(name="ghost"),
    )


def test_revisions_are_listed_newest_first_and_got_by_number(api: httpx.Client) -> None:
    created(api, "revs")
    api.patch("/v1/environments/revs", json={"taskDefinition": "web:2"})
    items = api.get("/v1/environments/revs/revisions").json()["items"]
    assert [(r["revision"], r["taskDefinition"]) for r in items] == [
        (2, f"{WEB}:2"),
        (1, f"{WEB}:1"),
    ]
    assert api.get("/v1/environments/revs/revisions/1").json() == items[1]
    assert_error(
        api.get("/v1/environments/revs/revisions/7"),
        404,
        texts.REVISION_NOT_FOUND.format(revision=7, name="revs"),
    )
    for bad in ("0", "x", "-1", "1e3"):
        assert_error(
            api.get(f"/v1/environments/revs/revisions/{bad}"),
            400,
            texts.INVALID_REVISION.format(value=bad),
        )
    assert_error(
        api.get("/v1/environments/ghost/revisions"), 404, "Environment ghost does not exist"
    )


def test_rollback_deploys_a_copy_of_the_previous_or_a_named_revision(api: httpx.Client) -> None:
    created(api, "back")
    assert_error(
        api.post("/v1/environments/back/rollback"),
        400,
        texts.NO_EARLIER_REVISION.format(name="back"),
    )
    updated = api.patch("/v1/environments/back", json={"taskDefinition": "web:2"}).json()
    running = deploy(api, "back", updated["deploymentToken"])
    rollback = api.post("/v1/environments/back/rollback")
    assert rollback.status_code == 200, rollback.text
    body = rollback.json()
    assert (body["revision"], body["taskDefinition"], body["status"]) == (3, f"{WEB}:1", "pending")
    superseded = api.get(f"/v1/environments/back/deployments/{running['id']}").json()
    assert superseded["status"] == "superseded"
    revision = api.get("/v1/environments/back/revisions/3").json()
    assert revision["rolledBackFrom"] == 2
    named = api.post("/v1/environments/back/rollback", json={"revision": 2}).json()
    assert (named["revision"], named["taskDefinition"]) == (4, f"{WEB}:2")
    assert_error(
        api.post("/v1/environments/back/rollback", json={"revision": 9}),
        404,
        texts.REVISION_NOT_FOUND.format(revision=9, name="back"),
    )
    bad = api.post("/v1/environments/back/rollback", json={"revision": 0})
    assert bad.status_code == 400 and "revision: Input should be greater" in bad.text


def test_pause_and_resume_show_in_the_environment(api: httpx.Client) -> None:
    created(api, "pausing")
    assert api.post("/v1/environments/pausing/pause").json()["paused"] is True
    assert api.get("/v1/environments/pausing").json()["paused"] is True
    assert api.post("/v1/environments/pausing/resume").json()["paused"] is False
    assert_error(api.post("/v1/environments/ghost/pause"), 404, "Environment ghost does not exist")


def test_a_deleted_name_is_taken_until_forced_and_force_must_be_true_or_false(
    api: httpx.Client,
) -> None:
    created(api, "del")
    assert_error(
        api.delete("/v1/environments/del?force=maybe"),
        400,
        texts.INVALID_FORCE.format(value="maybe"),
    )
    assert api.delete("/v1/environments/del?force=false").status_code == 200
    taken = api.post(
        "/v1/environments",
        json={"name": "del", "instanceGroup": {"cluster": "alpha"}, "taskDefinition": "web:1"},
    )
    assert_error(taken, 409, texts.ENVIRONMENT_DELETING.format(name="del"))
    assert api.delete("/v1/environments/del?force=true").status_code == 200
    again = created(api, "del", task_definition="web:2")
    assert again["revision"] == 1 and again["taskDefinition"] == f"{WEB}:2"


def test_the_controllers_status_and_deployment_outcome_show_through_the_api(
    api: httpx.Client, served: Any
) -> None:
    token = created(api, "watched")["deploymentToken"]
    deployment = deploy(api, "watched", token)
    status = environments.Status(
        desired=3, current=3, ready=2, updated=1, available=1, unavailable=2, misscheduled=1,
        current_revision=1, target_revision=1, reason="waiting for 2 tasks to be ready",
    )  # fmt: skip

    async def write(store: Store) -> bool:
        return await environments.write_status(store, "watched", status=status)

    assert served.run(write) is True
    shown = api.get("/v1/environments/watched").json()["status"]
    assert shown == {
        "desired": 3, "current": 3, "ready": 2, "updated": 1, "available": 1, "unavailable": 2,
        "misscheduled": 1, "currentRevision": 1, "targetRevision": 1,
        "reason": "waiting for 2 tasks to be ready",
    }  # fmt: skip
    finish(served, "watched", deployment["id"], DeploymentStatus.FAILED)
    environment = api.get("/v1/environments/watched").json()
    assert environment["health"] == "unhealthy" and "activeDeployment" not in environment
    failed = api.get(f"/v1/environments/watched/deployments/{deployment['id']}").json()
    assert failed["status"] == "failed"


def test_a_stored_record_this_code_cannot_read_is_a_500_without_a_trace(
    api: httpx.Client, served: Any
) -> None:
    async def corrupt(store: Store) -> int:
        return await store.put(keys.environment("corrupt"), b"\x00 not a record")

    served.run(corrupt)
    assert_error(api.get("/v1/environments/corrupt"), 500, texts.SERVER_ERROR)
    assert_error(api.get("/v1/environments"), 500, texts.SERVER_ERROR)
    assert api.delete("/v1/environments/corrupt").status_code == 500

    async def repair(store: Store) -> int | None:
        return await store.delete(keys.environment("corrupt"))

    served.run(repair)
    assert api.get("/v1/environments").status_code == 200


class Metrics:
    """A minimal `HttpMetrics`: request timings in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(self.registry, prefix="blox_scheduler", clock=SystemClock())

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        return exposition(self.registry, accept)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


async def test_given_metrics_every_request_is_timed_by_its_route(metrics: Metrics) -> None:
    store = await open_store("memory://")
    app = create_app(store=store, catalog=None, metrics=metrics)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scheduler") as client:
        assert (await client.get("/v1/environments/ghost")).status_code == 404
        assert (await client.get("/v1/ping")).status_code == 200
        scraped = await client.get("/metrics")
    await store.close()
    text = scraped.text
    assert scraped.status_code == 200
    assert 'route="/v1/environments/{name}",status="404"' in text
    assert 'route="/v1/ping",status="200"' in text
