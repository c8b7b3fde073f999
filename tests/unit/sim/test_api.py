"""The ECS JSON wire in process: dispatch, request validation, error bodies, response shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from blox.clock import ManualClock
from blox.sim import errors
from blox.sim.api import TARGET_PREFIX, EcsApi, load_model, render
from blox.sim.app import create_app
from blox.sim.state import EcsState

from .botocore_shapes import check_response
from .conftest import task_definition

MODEL = load_model()


@pytest.fixture
def api(clock: ManualClock) -> EcsApi:
    return EcsApi(EcsState(clock=clock), model=MODEL)


@pytest.fixture
async def http(api: EcsApi) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(api.state, api=api))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def call(api: EcsApi, operation: str, **params: Any) -> dict[str, Any]:
    """Run one operation and check its body against botocore's output shape."""
    body = render(api.call(operation, json.dumps(params).encode()))
    check_response(body, MODEL.operation_model(operation).output_shape)
    result: dict[str, Any] = json.loads(body)
    return result


def test_every_operation_answers_in_botocores_output_shape(api: EcsApi, clock: ManualClock) -> None:
    call(api, "CreateCluster", clusterName="c1")
    call(api, "RegisterTaskDefinition", **task_definition("web", cpu=10, memory=10, ports=[80]))
    call(api, "DescribeTaskDefinition", taskDefinition="web")
    call(api, "ListTaskDefinitions", familyPrefix="w")
    instance = call(api, "RegisterContainerInstance", cluster="c1")["containerInstance"]
    arn = instance["containerInstanceArn"]
    call(
        api,
        "PutAttributes",
        cluster="c1",
        attributes=[{"name": "a", "value": "b", "targetId": arn}],
    )
    call(api, "ListAttributes", cluster="c1", targetType="container-instance", attributeName="a")
    task = call(api, "StartTask", cluster="c1", taskDefinition="web", containerInstances=[arn, "x"])
    call(api, "RunTask", cluster="c1", taskDefinition="web", count=2)
    clock._elapsed = 10
    api.state.tick()
    call(api, "DescribeTasks", cluster="c1", tasks=[task["tasks"][0]["taskArn"], "missing"])
    call(api, "ListTasks", cluster="c1", maxResults=1)
    call(api, "StopTask", cluster="c1", task=task["tasks"][0]["taskArn"], reason="done")
    clock._elapsed = 20
    api.state.tick()
    call(api, "DescribeTasks", cluster="c1", tasks=[task["tasks"][0]["taskArn"]])
    call(
        api,
        "UpdateContainerInstancesState",
        cluster="c1",
        containerInstances=[arn],
        status="DRAINING",
    )
    call(api, "DescribeContainerInstances", cluster="c1", containerInstances=[arn, "missing"])
    call(api, "ListContainerInstances", cluster="c1", status="DRAINING")
    call(api, "DeregisterContainerInstance", cluster="c1", containerInstance=arn, force=True)
    call(api, "DeregisterTaskDefinition", taskDefinition="web:1")
    call(api, "DescribeClusters", clusters=["c1", "nope"])
    call(api, "ListClusters")
    call(api, "DeleteCluster", cluster="c1")


@pytest.mark.parametrize(
    ("target", "body", "status", "type_name"),
    [
        pytest.param(
            "ListClusters", b"{not json", 400, "SerializationException", id="malformed json"
        ),
        pytest.param("Nope", b"{}", 400, "UnknownOperationException", id="unknown operation"),
        pytest.param(None, b"{}", 400, "UnknownOperationException", id="no target header"),
        pytest.param(
            "ListTasks", b'{"maxResults": "ten"}', 400, "SerializationException", id="wrong type"
        ),
        pytest.param(
            "ListTasks", b'{"maxResults": true}', 400, "SerializationException", id="bool for int"
        ),
        pytest.param(
            "DescribeTasks", b"{}", 400, "InvalidParameterException", id="missing required"
        ),
        pytest.param(
            "ListTasks",
            b'{"desiredStatus": "GONE"}',
            400,
            "InvalidParameterException",
            id="bad enum",
        ),
        pytest.param(
            "ListTasks",
            b'{"cluster": "nope"}',
            400,
            "ClusterNotFoundException",
            id="unknown cluster",
        ),
        pytest.param(
            "ListTasks",
            b'{"maxResults": 101}',
            400,
            "InvalidParameterException",
            id="page over 100",
        ),
        pytest.param("ListTasks", b"[]", 400, "SerializationException", id="array body"),
        pytest.param(
            "DescribeTaskDefinition",
            b'{"taskDefinition": "x"}',
            400,
            "ClientException",
            id="unknown task definition",
        ),
    ],
)
async def test_bad_requests_get_the_ecs_error_body(
    http: httpx.AsyncClient, target: str | None, body: bytes, status: int, type_name: str
) -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = TARGET_PREFIX + target
    response = await http.post("/", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["__type"] == type_name
    assert response.json()["message"]
    assert response.headers["content-type"].startswith("application/x-amz-json-1.1")


async def test_an_unexpected_exception_becomes_a_500_server_exception(
    http: httpx.AsyncClient,
    api: EcsApi,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(**_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(api.state, "create_cluster", explode)
    headers = {"X-Amz-Target": TARGET_PREFIX + "CreateCluster"}
    response = await http.post("/", content=b"{}", headers=headers)
    assert (response.status_code, response.json()["__type"]) == (500, "ServerException")
    assert "boom" in caplog.text


def test_errors_subclass_the_blox_categories() -> None:
    from blox import errors as blox_errors

    assert issubclass(errors.ClusterNotFound, blox_errors.NotFound)
    assert issubclass(errors.Throttled, blox_errors.Temporary)
    assert issubclass(errors.InvalidParameter, blox_errors.Permanent)
