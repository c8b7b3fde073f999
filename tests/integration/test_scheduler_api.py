"""The scheduler's v0.3 API over real HTTP, on SQLite and on etcd: acceptance scenarios 1-10,
then every error text.

The API runs under uvicorn on 127.0.0.1 (`Served`, on a thread with its own loop and a SQLite
store), its catalog an `EcsClientCatalog` on the simulator over HTTP. One module-scoped server
serves every test; each test uses names of its own. The additions (update, revisions,
rollback, pause, force delete, status) are in test_scheduler_additions.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from blox.clock import ManualClock, SystemClock
from blox.contract import texts
from blox.ecs import EcsClient, RetryPolicy
from blox.scheduler.api import create_app
from blox.scheduler.catalog import EcsClientCatalog
from blox.sim.server import BackgroundServer
from blox.sim.state import EcsState, SimConfig
from blox.sim.throttle import Throttle
from blox.store import Store, open_store
from blox.testing.etcd import EtcdServer
from blox.testing.ports import free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
REGION, ACCOUNT = "us-east-1", "123456789012"
ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
JSON = "application/json; charset=UTF-8"
TEXT = "text/plain; charset=utf-8"
WEB = {"family": "web", "containerDefinitions": [{"name": "main", "image": "nginx", "memory": 64}]}
BODY = {"name": "x", "instanceGroup": {"cluster": "alpha"}, "taskDefinition": "web:1"}
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def populate(state: EcsState) -> None:
    """Clusters alpha, beta, gamma (ACTIVE) and gone (INACTIVE); web:1..3, web:3 deregistered."""
    for name in ("alpha", "beta", "gamma", "gone"):
        state.create_cluster(name=name)
    state.delete_cluster(cluster="gone")
    for _ in range(3):
        state.register_task_definition(WEB)
    state.deregister_task_definition(ref="web:3")


class Served:
    """The scheduler API under uvicorn on 127.0.0.1, on a thread with its own loop and store."""

    def __init__(self, sim_url: str, store_url: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.sim_url = sim_url
        self.store_url = store_url
        self.store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.store = await open_store(self.store_url, clock=SystemClock())
        with pytest.MonkeyPatch.context() as env:  # dummy credentials, never the machine's
            for name in CREDENTIAL_ENV:
                env.delenv(name, raising=False)
            env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
            env.setenv("AWS_CONFIG_FILE", os.devnull)
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
            ecs = EcsClient.create(
                region=REGION,
                endpoint_url=self.sim_url,
                clock=SystemClock(),
                policy=RetryPolicy(base_s=0.01, cap_s=0.1, max_attempts=5),
            )
        app = create_app(store=self.store, catalog=EcsClientCatalog(ecs))
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve()
        finally:
            ecs.close()
            await self.store.close()

    def run(self, make: Callable[[Store], Awaitable[T]]) -> T:
        """Run `make(store)` on the server's loop (the store belongs to it); its result."""
        assert self._loop is not None and self.store is not None
        store = self.store

        async def call() -> T:
            return await make(store)

        future: Future[T] = asyncio.run_coroutine_threadsafe(call(), self._loop)
        return future.result(10)

    def __enter__(self) -> Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server is not None and self._server.started):
            assert time.monotonic() < deadline, "the scheduler API did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    state = EcsState(clock=ManualClock(), config=SimConfig(region=REGION, account=ACCOUNT, seed=6))
    throttle = Throttle(clock=SystemClock(), rates={}, default=(10_000.0, 10_000.0))
    with BackgroundServer(state, port=free_port(), throttle=throttle) as server:
        server.call(lambda: populate(server.state))
        yield server


@pytest.fixture(scope="module", params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
def served(
    request: pytest.FixtureRequest, sim: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The API on SQLite, then on a real etcd server of its own (the session's holds other
    tests' environments, which the list scenarios would see)."""
    folder = tmp_path_factory.mktemp("scheduler")
    if request.param == "sqlite":
        with Served(sim.url, f"sqlite:{folder / 'scheduler.db'}") as server:
            yield server
        return
    etcd = EtcdServer(folder / "etcd")
    etcd.start()
    try:
        with Served(sim.url, etcd.url) as server:
            yield server
    finally:
        etcd.stop()


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, trust_env=False, timeout=10) as client:
        yield client


def create(
    api: httpx.Client,
    name: str,
    cluster: str = "alpha",
    task_definition: str = "web:1",
    **more: Any,
) -> httpx.Response:
    body = {"name": name, "instanceGroup": {"cluster": cluster}, "taskDefinition": task_definition}
    return api.post("/v1/environments", json={**body, **more})


def created(api: httpx.Client, name: str, **kwargs: Any) -> dict[str, Any]:
    response = create(api, name, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error(response: httpx.Response, status: int, text: str) -> None:
    assert (response.status_code, response.text) == (status, f"{text}\n")
    assert response.headers["content-type"] == TEXT


# -- acceptance scenarios 1-10 (shared/spec/acceptance-scenarios.md) -----------------------


def test_scenario_1_ping_answers_200(api: httpx.Client) -> None:
    response = api.get("/v1/ping")
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize("cluster", ["alpha", f"{ARN}:cluster/alpha"], ids=["name", "ARN"])
def test_scenario_2_an_environment_is_created_and_got_by_name(
    api: httpx.Client, cluster: str
) -> None:
    name = "s2-" + ("arn" if cluster.startswith("arn:") else "name")
    response = create(api, name, cluster=cluster)
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    body = response.json()
    assert body["name"] == name and body["health"] == "healthy"
    assert body["instanceGroup"] == {"cluster": f"{ARN}:cluster/alpha"}
    assert body["taskDefinition"] == f"{ARN}:task-definition/web:1"
    assert len(body["deploymentToken"]) == 36 and body["revision"] == 1
    v03 = {"name", "instanceGroup", "taskDefinition", "deploymentToken", "health"}
    additions = {"revision", "paused", "rollout", "historyLimit", "createdAt", "updatedAt"}
    assert set(body) == v03 | additions  # nothing of v0.3 missing, no None left in
    got = api.get(f"/v1/environments/{name}")
    assert got.status_code == 200 and got.json() == body


def test_scenario_3_creating_a_name_that_exists_fails_with_400(api: httpx.Client) -> None:
    created(api, "s3")
    assert_error(
        create(api, "s3", task_definition="web:2"), 400, texts.ENVIRONMENT_EXISTS.format(name="s3")
    )


def test_scenario_4_creating_on_an_inactive_cluster_fails_with_404(api: httpx.Client) -> None:
    assert_error(create(api, "s4", cluster="gone"), 404, texts.CLUSTER_INACTIVE)
    assert_error(create(api, "s4", cluster=f"{ARN}:cluster/gone"), 404, texts.CLUSTER_INACTIVE)
    assert_error(create(api, "s4", cluster="never"), 404, "Cluster never does not exist")
    assert api.get("/v1/environments/s4").status_code == 404


def test_scenario_5_creating_with_a_deregistered_task_definition_fails_with_404(
    api: httpx.Client,
) -> None:
    assert_error(create(api, "s5", task_definition="web:3"), 404, texts.TASK_DEFINITION_INACTIVE)
    assert_error(
        create(api, "s5", task_definition=f"{ARN}:task-definition/web:3"),
        404,
        texts.TASK_DEFINITION_INACTIVE,
    )
    assert_error(
        create(api, "s5", task_definition="nope:1"), 404, "TaskDefinition nope:1 does not exist"
    )
    assert api.get("/v1/environments/s5").status_code == 404


@pytest.mark.parametrize("name", ["", " ", "has space", "x" * 31, "dot.ted"])
def test_scenario_6_creating_with_a_blank_or_bad_name_fails_with_400(
    api: httpx.Client, name: str
) -> None:
    response = create(api, name)
    assert response.status_code == 400 and response.headers["content-type"] == TEXT
    assert response.text.startswith("Invalid request: name: String should match pattern")


def test_scenario_7_list_returns_the_environment_and_filters_by_a_second_cluster(
    api: httpx.Client,
) -> None:
    created(api, "s7-alpha")
    created(api, "s7-gamma", cluster="gamma")
    everything = api.get("/v1/environments")
    assert everything.status_code == 200 and everything.headers["content-type"] == JSON
    assert {"s7-alpha", "s7-gamma"} <= {e["name"] for e in everything.json()["items"]}
    for cluster in ("gamma", f"{ARN}:cluster/gamma"):
        filtered = api.get("/v1/environments", params={"cluster": cluster})
        assert [e["name"] for e in filtered.json()["items"]] == ["s7-gamma"]
    other_account = "arn:aws:ecs:us-east-1:999999999999:cluster/gamma"
    assert api.get("/v1/environments", params={"cluster": other_account}).json() == {"items": []}


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("cluster=bad%20name", texts.INVALID_CLUSTER),
        ("cluster=arn:aws:ecs:us-east-1:123456789012:task/x", texts.INVALID_CLUSTER),
        ("status=healthy", texts.SCHEDULER_FILTERS_UNSUPPORTED),
        ("nextToken=abc", texts.SCHEDULER_FILTERS_UNSUPPORTED),
        ("cluster=alpha&cluster=beta", texts.FILTERS_REPEATED),
        ("cluster=alpha&cluster=alpha&other=1", texts.SCHEDULER_FILTERS_UNSUPPORTED),
    ],
    ids=["bad name", "task ARN", "unsupported", "nextToken", "repeated", "unsupported first"],
)
def test_scenario_8_a_bad_unsupported_or_repeated_filter_fails_with_400(
    api: httpx.Client, query: str, text: str
) -> None:
    assert_error(api.get(f"/v1/environments?{query}"), 400, text)


def test_scenario_9_a_deleted_environment_is_gone_and_deleting_again_succeeds(
    api: httpx.Client,
) -> None:
    created(api, "s9")
    first = api.delete("/v1/environments/s9")
    assert (first.status_code, first.content) == (200, b"")
    assert_error(api.get("/v1/environments/s9"), 404, "Environment s9 does not exist")
    assert "s9" not in {e["name"] for e in api.get("/v1/environments").json()["items"]}
    assert api.delete("/v1/environments/s9").status_code == 200
    assert api.delete("/v1/environments/never-was").status_code == 200


def test_scenario_10_a_deployment_is_made_fetched_listed_and_its_token_checked(
    api: httpx.Client,
) -> None:
    token = created(api, "s10")["deploymentToken"]
    response = api.post(f"/v1/environments/s10/deployments?deploymentToken={token}")
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    deployment = response.json()
    assert deployment["status"] == "pending" and deployment["environmentName"] == "s10"
    assert deployment["taskDefinition"] == f"{ARN}:task-definition/web:1"
    assert deployment["failedInstances"] == [] and deployment["revision"] == 1
    v03 = {"id", "status", "taskDefinition", "environmentName", "failedInstances"}
    assert set(deployment) == v03 | {"revision", "createdAt", "updatedAt"}
    assert api.get(f"/v1/environments/s10/deployments/{deployment['id']}").json() == deployment
    assert api.get("/v1/environments/s10/deployments").json() == {"items": [deployment]}
    again = api.post(f"/v1/environments/s10/deployments?deploymentToken={token}")
    assert_error(again, 400, texts.DEPLOYMENT_EXISTS.format(token=token))
    wrong = "0f0f0f0f-0000-4000-8000-000000000000"
    outdated = api.post(f"/v1/environments/s10/deployments?deploymentToken={wrong}")
    assert_error(outdated, 400, texts.TOKEN_OUTDATED.format(token=wrong, current=token))


# -- every error text ----------------------------------------------------------------------


def test_scenario_17_deployments_of_an_unknown_environment_or_id_are_404_and_newest_first(
    api: httpx.Client,
) -> None:
    token = "0f0f0f0f-0000-4000-8000-000000000000"
    gone = texts.ENVIRONMENT_NOT_FOUND.format(name="ghost")
    assert_error(api.post(f"/v1/environments/ghost/deployments?deploymentToken={token}"), 404, gone)
    assert_error(api.get("/v1/environments/ghost/deployments"), 404, gone)
    assert_error(api.get("/v1/environments/ghost/deployments/x"), 404, gone)
    created(api, "e404")
    missing = api.get("/v1/environments/e404/deployments/nope")
    assert_error(missing, 404, texts.DEPLOYMENT_NOT_FOUND.format(id="nope", name="e404"))
    assert api.get("/v1/environments/e404/deployments").json() == {"items": []}
    first = api.post(
        "/v1/environments/e404/deployments",
        params={"deploymentToken": api.get("/v1/environments/e404").json()["deploymentToken"]},
    ).json()
    second = api.post("/v1/environments/e404/rollback", json={"revision": 1}).json()
    listed = api.get("/v1/environments/e404/deployments").json()["items"]
    assert [d["id"] for d in listed] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", texts.TOKEN_MISSING),
        ("?deploymentToken=", texts.TOKEN_INVALID.format(token="")),
        ("?deploymentToken=NOT-A-UUID", texts.TOKEN_INVALID.format(token="NOT-A-UUID")),
        (
            "?deploymentToken=0F0F0F0F-0000-4000-8000-000000000000",
            texts.TOKEN_INVALID.format(token="0F0F0F0F-0000-4000-8000-000000000000"),
        ),
        ("?deploymentToken=a&deploymentToken=b", texts.TOKEN_REPEATED),
    ],
    ids=["missing", "empty", "not a UUID", "upper case", "repeated"],
)
def test_a_missing_or_malformed_token_is_a_clear_400(
    api: httpx.Client, query: str, text: str
) -> None:
    create(api, "tok")  # the first case creates it; the others find it there (400, ignored)
    assert_error(api.post(f"/v1/environments/tok/deployments{query}"), 400, text)


def test_a_second_deployment_while_one_is_in_progress_is_refused_with_its_id(
    api: httpx.Client,
) -> None:
    token = created(api, "busy")["deploymentToken"]
    first = api.post(f"/v1/environments/busy/deployments?deploymentToken={token}").json()
    updated = api.patch("/v1/environments/busy", json={"taskDefinition": "web:2"})
    new_token = updated.json()["deploymentToken"]
    busy = api.post(f"/v1/environments/busy/deployments?deploymentToken={new_token}")
    assert_error(busy, 400, texts.DEPLOYMENT_IN_PROGRESS.format(id=first["id"]))


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"{", "Invalid request: the body is not valid JSON"),
        (b"\xff\xfe{", "Invalid request: the body is not valid JSON"),
        (b"", "Invalid request: a JSON body is required"),
        (
            b"[]",
            "Invalid request: body: Input should be a valid dictionary or object to extract "
            "fields from",
        ),
        (
            b'{"name": "x", "taskDefinition": "web:1"}',
            "Invalid request: instanceGroup: Field required",
        ),
        (
            json.dumps({**BODY, "x": 1}).encode(),
            "Invalid request: x: unknown field",
        ),
        (
            json.dumps({**BODY, "instanceGroup": {"cluster": "bad name"}}).encode(),
            texts.INVALID_CLUSTER,
        ),
    ],
    ids=[
        "broken JSON",
        "not UTF-8",
        "no body",
        "not an object",
        "no instanceGroup",
        "unknown field",
        "cluster",
    ],
)
def test_a_malformed_create_body_is_a_400_saying_what_is_wrong(
    api: httpx.Client, body: bytes, text: str
) -> None:
    response = api.post(
        "/v1/environments", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, text)


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        ({"rollout": {"maxUnavailable": "150%"}}, "maxUnavailable must not exceed 100%"),
        ({"rollout": {"maxSurge": -1}}, "maxSurge must be a count or a percentage"),
        ({"rollout": {"maxSurge": True}}, "rollout.maxSurge.int: Input should be a valid integer"),
        ({"rollout": {"progressDeadlineSeconds": 0}}, "rollout.progressDeadlineSeconds: Input"),
        ({"rollout": {"minReadySeconds": -1}}, "rollout.minReadySeconds: Input should be greater"),
        ({"historyLimit": 0}, "historyLimit: Input should be greater than or equal to 1"),
        ({"instanceGroup": {"cluster": "alpha", "constraints": ["stack = prod"]}}, "constraint"),
    ],
    ids=["share over 100%", "negative share", "bool share", "zero deadline", "negative ready",
         "zero history", "bad constraint"],
)  # fmt: skip
def test_bad_new_fields_on_create_get_a_clear_400(
    api: httpx.Client, extra: dict[str, Any], text: str
) -> None:
    response = create(api, "bad-fields", **extra)
    assert response.status_code == 400 and response.headers["content-type"] == TEXT
    assert text in response.text and response.text.endswith("\n")
    assert api.get("/v1/environments/bad-fields").status_code == 404


def test_an_unknown_route_and_a_wrong_method_get_the_plain_texts(api: httpx.Client) -> None:
    assert_error(api.get("/v1/nothing"), 404, texts.PAGE_NOT_FOUND)
    assert_error(api.get("/v1/environments/a/b/c/d"), 404, texts.PAGE_NOT_FOUND)
    wrong = api.put("/v1/environments")
    assert_error(wrong, 405, texts.METHOD_NOT_ALLOWED)
    assert wrong.headers["allow"] == "GET, POST"
    assert api.put("/v1/environments/x").headers["allow"] == "DELETE, GET, PATCH"


def test_a_trailing_slash_is_redirected_with_its_query(api: httpx.Client) -> None:
    response = api.get("/v1/environments/?cluster=alpha")
    assert response.status_code == 307
    assert response.headers["location"] == "/v1/environments?cluster=alpha"


def test_an_unreachable_ecs_is_a_503_without_a_trace(tmp_path: Path, sim: BackgroundServer) -> None:
    dead = Served(f"http://127.0.0.1:{free_port()}", f"sqlite:{tmp_path / 'dead.db'}")
    with dead, httpx.Client(base_url=dead.url, trust_env=False, timeout=30) as client:
        assert_error(create(client, "unreachable"), 503, texts.SERVER_ERROR)
        assert client.get("/v1/environments").json() == {"items": []}


def test_health_and_readiness_answer_and_the_schema_documents_400_not_422(
    api: httpx.Client,
) -> None:
    assert api.get("/healthz").text == "ok"
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"]["ok"] is True
    assert api.get("/metrics").status_code == 404  # no metrics were given
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text  # the API's pages
    schema = api.get("/openapi.json").json()
    create_op = schema["paths"]["/v1/environments"]["post"]
    assert "422" not in create_op["responses"] and "400" in create_op["responses"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    name = schema["components"]["schemas"]["EnvironmentCreate"]["properties"]["name"]
    assert name["pattern"] == "^[a-zA-Z0-9-_]{1,30}$"
