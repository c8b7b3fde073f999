"""The shared HTTP core as the scheduler clients use it: what is retried, what is sent once.

httpx's MockTransport stands in for the network (no sockets): each test scripts the answers
or transport failures in order, and counts the requests that reached the "server".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from blox.client import (
    AsyncSchedulerClient,
    Backoff,
    ConnectFailed,
    HttpInvalid,
    HttpUnavailable,
    ResponseInvalid,
    SchedulerClient,
    ServerUnreachable,
)
from blox.client import scheduler_routes as routes
from blox.contract.scheduler import EnvironmentCreate, EnvironmentUpdate, InstanceGroupCreate

URL = "http://127.0.0.1:2000"
FAST = Backoff(base_s=0.01, cap_s=0.02, max_attempts=4)
ENV = {
    "name": "web",
    "instanceGroup": {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/a"},
    "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
    "deploymentToken": "2f1c9c0e-7a3b-4c55-9f7e-0d5e4b2a1c3d",
    "health": "healthy",
}
Step = httpx.Response | Exception


class Script:
    """Answers (or raises) each step in order and records every request it was sent."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class Sleeps:
    """Records sleeps; a Clock for the async client too."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return datetime(2017, 6, 1, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)


def ok(body: object = ENV) -> httpx.Response:
    return httpx.Response(200, json=body)


CREATE = EnvironmentCreate(
    name="web", instance_group=InstanceGroupCreate(cluster="a"), task_definition="web:1"
)
Change = Callable[[SchedulerClient], object]
CHANGES: dict[str, Change] = {
    "POST create": lambda c: c.create_environment(CREATE),
    "PATCH update": lambda c: c.update_environment("web", EnvironmentUpdate(history_limit=3)),
    "DELETE": lambda c: c.delete_environment("web"),
}


def blocking(script: Script, sleeps: Sleeps) -> SchedulerClient:
    return SchedulerClient(URL, backoff=FAST, sleep=sleeps, transport=httpx.MockTransport(script))


def test_a_get_is_retried_through_temporary_failures() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.Response(503, text="Server Error\n"),
        httpx.ReadTimeout("slow"),
        ok(),
    )
    sleeps = Sleeps()
    with blocking(script, sleeps) as client:
        assert client.environment("web").name == "web"
    assert len(script.requests) == 4 and len(sleeps.asked) == 3


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_is_sent_again_only_when_it_never_left(change: Change) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok())
    sleeps = Sleeps()
    with blocking(script, sleeps) as client:
        change(client)
    assert len(script.requests) == 3
    assert len({(r.method, str(r.url), r.content) for r in script.requests}) == 1


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (httpx.Response(503, text="Server Error\n"), HttpUnavailable),
        (httpx.Response(500, text="Server Error\n"), HttpUnavailable),
        (httpx.ReadTimeout("no answer"), ServerUnreachable),
        (httpx.RemoteProtocolError("dropped"), ServerUnreachable),
    ],
    ids=["503", "500", "read timeout", "dropped"],
)
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_that_may_have_arrived_is_never_sent_twice(
    change: Change, failure: Step, raised: type[Exception]
) -> None:
    script = Script(failure, ok())
    sleeps = Sleeps()
    with blocking(script, sleeps) as client, pytest.raises(raised):
        change(client)
    assert len(script.requests) == 1 and sleeps.asked == []


async def test_the_async_client_keeps_the_same_rules() -> None:
    script = Script(
        httpx.ConnectError("refused"), ok(), httpx.ReadTimeout("slow"), httpx.Response(503), ok()
    )
    sleeps = Sleeps()
    transport = httpx.MockTransport(script)
    async with AsyncSchedulerClient(URL, backoff=FAST, clock=sleeps, transport=transport) as c:
        assert (await c.create_environment(CREATE)).name == "web"  # connect failed: resent
        with pytest.raises(ServerUnreachable):
            await c.create_environment(CREATE)  # timed out: maybe created, not resent
        assert (await c.environment("web")).name == "web"  # a GET goes on after a 503
    assert [r.method for r in script.requests] == ["POST", "POST", "POST", "GET", "GET"]
    assert len(sleeps.asked) == 2


def test_a_connect_failure_that_lasts_gives_up_after_the_attempts() -> None:
    script = Script(*(httpx.ConnectError(str(n)) for n in range(FAST.max_attempts or 0)))
    with blocking(script, Sleeps()) as client, pytest.raises(ConnectFailed, match=r"^POST "):
        client.pause("web")
    assert len(script.requests) == FAST.max_attempts


def test_the_servers_line_and_status_are_kept() -> None:
    script = Script(httpx.Response(400, text="Environment web has no earlier revision\n"))
    with blocking(script, Sleeps()) as client, pytest.raises(HttpInvalid) as caught:
        client.rollback("web")
    assert (caught.value.status, caught.value.text) == (
        400,
        "Environment web has no earlier revision",
    )


def test_an_answer_that_is_not_the_model_is_response_invalid() -> None:
    script = Script(ok({"items": "nope"}))
    expected = r"^GET /v1/environments/web/deployments: "
    with blocking(script, Sleeps()) as client, pytest.raises(ResponseInvalid, match=expected):
        client.deployments("web")


def test_requests_carry_the_wire_path_query_and_json_body() -> None:
    assert routes.deploy("a b", "t").path == "/v1/environments/a%20b/deployments"
    assert routes.deploy("web", "t").params == {"deploymentToken": "t"}
    assert routes.environment("x/y").path == "/v1/environments/x%2Fy"
    assert routes.deployment("web", "../x").path == "/v1/environments/web/deployments/..%2Fx"
    assert routes.delete_environment("web", force=False).params == {}
    assert routes.delete_environment("web", force=True).params == {"force": "true"}
    assert routes.environments(None).params == {} and routes.environments("a").params == {
        "cluster": "a"
    }
    assert routes.rollback("web", None).body == b"{}"
    assert json.loads(routes.rollback("web", 2).body or b"") == {"revision": 2}
    created = json.loads(routes.create_environment(CREATE).body or b"")
    assert created == {"name": "web", "instanceGroup": {"cluster": "a"}, "taskDefinition": "web:1"}
    assert routes.pause("web").body is None and routes.ping().path == "/v1/ping"


def test_a_json_body_is_sent_with_its_content_type() -> None:
    script = Script(ok())
    with blocking(script, Sleeps()) as client:
        client.update_environment("web", EnvironmentUpdate(task_definition="web:2"))
    (request,) = script.requests
    assert (request.method, request.url.path) == ("PATCH", "/v1/environments/web")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"taskDefinition": "web:2"}


@pytest.mark.parametrize("url", ["127.0.0.1:2000", "ftp://127.0.0.1", "http://"])
def test_a_scheduler_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="scheduler URL"):
        SchedulerClient(url)
    with pytest.raises(ValueError, match="scheduler URL"):
        AsyncSchedulerClient(url)
