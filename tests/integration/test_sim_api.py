"""The simulator over real HTTP on 127.0.0.1, driven by unchanged boto3 client and the AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from blox.clock import ManualClock, SystemClock
from blox.sim.server import BackgroundServer
from blox.sim.state import EcsState, LifecycleTiming, SimConfig
from blox.sim.throttle import Throttle
from blox.testing.ports import free_port
from tests.unit.sim.botocore_shapes import problems

pytestmark = pytest.mark.integration

Captured = list[tuple[str, Any, bytes]]
DEFINITION = {
    "family": "web",
    "containerDefinitions": [
        {
            "name": "main",
            "image": "nginx",
            "cpu": 128,
            "memory": 256,
            "portMappings": [{"containerPort": 80, "hostPort": 8080}],
        }
    ],
}


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    """The simulator on a free port; lifecycle in fake time, throttling on the real clock."""
    timing = LifecycleTiming(pending_s=(2.0, 4.0), stopping_s=(1.0, 1.0))
    state = EcsState(clock=ManualClock(), config=SimConfig(seed=1, timing=timing))
    throttle = Throttle(clock=SystemClock(), rates={}, default=(10_000.0, 10_000.0))
    with BackgroundServer(state, port=free_port(), throttle=throttle) as server:
        yield server


@pytest.fixture(scope="module")
def captured() -> Captured:
    """Every successful (operation, output shape, raw body) the sim sent to boto3."""
    return []


def make_client(sim: BackgroundServer, captured: Captured, **config: Any) -> Any:
    client = boto3.session.Session().client(
        "ecs",
        endpoint_url=sim.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )

    def record(http_response: Any, model: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            captured.append((model.name, model.output_shape, http_response.content))

    client.meta.events.register("after-call.ecs", record)
    return client


@pytest.fixture(scope="module")
def ecs(sim: BackgroundServer, captured: Captured) -> Iterator[Any]:
    client = make_client(sim, captured)
    yield client
    client.close()


@pytest.fixture(scope="module")
def fleet(ecs: Any) -> dict[str, Any]:
    """Cluster `fleet` with 3 instances and the `web` task definition."""
    ecs.create_cluster(clusterName="fleet")
    ecs.register_task_definition(**DEFINITION)
    arns = [
        ecs.register_container_instance(
            cluster="fleet",
            instanceIdentityDocument=json.dumps(
                {"instanceId": f"i-{n:017x}", "availabilityZone": "us-east-1b"}
            ),
        )["containerInstance"]["containerInstanceArn"]
        for n in range(3)
    ]
    return {"instances": arns}


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = excinfo.value.response["Error"]["Code"]
    return code


def test_clusters_are_created_described_listed_and_deleted(ecs: Any) -> None:
    ecs.create_cluster(clusterName="temp")
    described = ecs.describe_clusters(clusters=["temp", "absent"])
    assert described["clusters"][0]["clusterName"] == "temp"
    assert described["failures"][0]["reason"] == "MISSING"
    assert any(a.endswith("/temp") for a in ecs.list_clusters()["clusterArns"])
    assert ecs.delete_cluster(cluster="temp")["cluster"]["status"] == "INACTIVE"
    with pytest.raises(ClientError) as excinfo:
        ecs.list_tasks(cluster="temp")
    assert error_code(excinfo) == "ClusterNotFoundException"


def test_task_definitions_register_describe_list_and_deregister(ecs: Any) -> None:
    first = ecs.register_task_definition(
        family="batch", containerDefinitions=[{"name": "a", "image": "x", "memory": 8}]
    )
    ecs.register_task_definition(
        family="batch", containerDefinitions=[{"name": "a", "image": "x", "memory": 8}]
    )
    assert ecs.describe_task_definition(taskDefinition="batch")["taskDefinition"]["revision"] == 2
    ecs.deregister_task_definition(taskDefinition=first["taskDefinition"]["taskDefinitionArn"])
    arns = ecs.list_task_definitions(familyPrefix="batch")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[-1] for a in arns] == ["2"]
    with pytest.raises(ClientError) as excinfo:
        ecs.describe_task_definition(taskDefinition="nope:1")
    assert error_code(excinfo) == "ClientException"


def test_tasks_start_run_become_running_and_stop(
    ecs: Any, sim: BackgroundServer, fleet: dict[str, Any]
) -> None:
    started = ecs.start_task(
        cluster="fleet",
        taskDefinition="web",
        containerInstances=fleet["instances"][:1],
        startedBy="it",
    )
    ran = ecs.run_task(cluster="fleet", taskDefinition="web", count=3, startedBy="it")
    assert len(started["tasks"]) == 1
    assert len(ran["tasks"]) == 2  # host port 8080 leaves room for one task per instance
    assert {f["reason"] for f in ran["failures"]} == {"RESOURCE:PORTS"}
    sim.advance(5)
    arns = ecs.list_tasks(cluster="fleet", startedBy="it")["taskArns"]
    tasks = ecs.describe_tasks(cluster="fleet", tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}
    stopped = ecs.stop_task(cluster="fleet", task=arns[0], reason="Scaling down")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    sim.advance(2)
    final = ecs.describe_tasks(cluster="fleet", tasks=[arns[0]])["tasks"][0]
    assert (final["lastStatus"], final["stopCode"], final["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "Scaling down",
    )
    assert arns[0] in ecs.list_tasks(cluster="fleet", desiredStatus="STOPPED")["taskArns"]


def test_container_instances_drain_take_attributes_and_deregister(
    ecs: Any, fleet: dict[str, Any]
) -> None:
    extra = ecs.register_container_instance(cluster="fleet")["containerInstance"][
        "containerInstanceArn"
    ]
    ecs.update_container_instances_state(
        cluster="fleet", containerInstances=[extra], status="DRAINING"
    )
    assert ecs.list_container_instances(cluster="fleet", status="DRAINING")[
        "containerInstanceArns"
    ] == [extra]
    ecs.put_attributes(
        cluster="fleet", attributes=[{"name": "stack", "value": "prod", "targetId": extra}]
    )
    listed = ecs.list_attributes(
        cluster="fleet", targetType="container-instance", attributeName="stack"
    )
    assert listed["attributes"][0]["targetId"] == extra
    gone = ecs.deregister_container_instance(cluster="fleet", containerInstance=extra)
    assert gone["containerInstance"]["status"] == "INACTIVE"
    described = ecs.describe_container_instances(
        cluster="fleet", containerInstances=[extra, "missing"]
    )
    assert described["containerInstances"][0]["status"] == "INACTIVE"
    assert described["failures"] == [{"arn": "missing", "reason": "MISSING"}]


def test_paginators_walk_every_page_of_list_tasks_and_list_container_instances(
    ecs: Any, sim: BackgroundServer
) -> None:
    ecs.create_cluster(clusterName="pages")
    ecs.register_task_definition(
        family="tiny", containerDefinitions=[{"name": "a", "image": "x", "cpu": 1, "memory": 1}]
    )
    instances = [
        ecs.register_container_instance(cluster="pages")["containerInstance"][
            "containerInstanceArn"
        ]
        for _ in range(12)
    ]
    expected = []
    for _ in range(25):
        expected += [
            t["taskArn"]
            for t in ecs.start_task(
                cluster="pages", taskDefinition="tiny", containerInstances=instances[:10]
            )["tasks"]
        ]
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster="pages", PaginationConfig={"PageSize": 100}
    )
    assert [a for page in pages for a in page["taskArns"]] == expected
    pages = ecs.get_paginator("list_container_instances").paginate(
        cluster="pages", PaginationConfig={"PageSize": 5}
    )
    assert [a for page in pages for a in page["containerInstanceArns"]] == instances


@pytest.mark.parametrize(
    ("operation", "params", "code"),
    [
        pytest.param(
            "describe_tasks",
            {"cluster": "fleet", "tasks": ["t"] * 101},
            "InvalidParameterException",
            id="describe over 100",
        ),
        pytest.param(
            "run_task",
            {"cluster": "fleet", "taskDefinition": "web", "count": 11},
            "InvalidParameterException",
            id="count over 10",
        ),
        pytest.param(
            "start_task",
            {"cluster": "fleet", "taskDefinition": "web", "containerInstances": ["i"] * 11},
            "InvalidParameterException",
            id="start over 10",
        ),
        pytest.param(
            "run_task",
            {"cluster": "fleet", "taskDefinition": "web", "startedBy": "x" * 37},
            "InvalidParameterException",
            id="startedBy over 36",
        ),
        pytest.param(
            "run_task",
            {"cluster": "fleet", "taskDefinition": "nope"},
            "InvalidParameterException",
            id="unknown task definition",
        ),
        pytest.param(
            "stop_task",
            {"cluster": "fleet", "task": "nope"},
            "InvalidParameterException",
            id="unknown task",
        ),
        pytest.param(
            "list_tasks", {"cluster": "nope"}, "ClusterNotFoundException", id="unknown cluster"
        ),
        pytest.param(
            "list_tasks",
            {"cluster": "fleet", "nextToken": "bogus"},
            "InvalidParameterException",
            id="bad next token",
        ),
    ],
)
def test_bad_requests_fail_with_the_ecs_error_code(
    ecs: Any, fleet: dict[str, Any], operation: str, params: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        getattr(ecs, operation)(**params)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_client_without_retries_sees_throttling(
    sim: BackgroundServer, captured: Captured
) -> None:
    assert sim.throttle is not None
    throttle = sim.throttle
    sim.call(lambda: throttle.set_rate("ListClusters", capacity=2, rate_per_s=0))
    client = make_client(sim, captured, retries={"total_max_attempts": 1, "mode": "standard"})
    try:
        client.list_clusters()
        client.list_clusters()
        with pytest.raises(ClientError) as excinfo:
            client.list_clusters()
        assert error_code(excinfo) == "ThrottlingException"
    finally:
        sim.call(lambda: throttle.set_rate("ListClusters", capacity=10_000, rate_per_s=10_000))
        client.close()


def aws(sim: BackgroundServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    command = [
        str(Path(sys.executable).parent / "aws"),
        "ecs",
        *args,
        "--endpoint-url",
        sim.url,
        "--output",
        "json",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_aws_cli_drives_the_simulator(
    sim: BackgroundServer, fleet: dict[str, Any], tmp_path: Path
) -> None:
    listed = aws(sim, tmp_path, "list-container-instances", "--cluster", "fleet")
    assert listed.returncode == 0, listed.stderr
    assert set(fleet["instances"]) <= set(json.loads(listed.stdout)["containerInstanceArns"])
    described = aws(sim, tmp_path, "describe-clusters", "--clusters", "fleet")
    assert json.loads(described.stdout)["clusters"][0]["clusterName"] == "fleet"
    tasks = aws(sim, tmp_path, "list-tasks", "--cluster", "fleet", "--started-by", "it")
    assert json.loads(tasks.stdout)["taskArns"]
    missing = aws(sim, tmp_path, "list-tasks", "--cluster", "nope")
    assert missing.returncode != 0
    assert "ClusterNotFoundException" in missing.stderr


def test_every_response_the_sim_sent_fits_botocores_output_shape(captured: Captured) -> None:
    operations = {name for name, _, _ in captured}
    assert len(operations) >= 20
    for name, shape, body in captured:
        assert problems(json.loads(body), shape) == [], name


@pytest.mark.slow
def test_the_aws_cli_drives_every_operation(sim: BackgroundServer, tmp_path: Path) -> None:
    def run(*args: str) -> Any:
        result = aws(sim, tmp_path, *args)
        assert result.returncode == 0, f"aws ecs {' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else {}

    cluster = run("create-cluster", "--cluster-name", "cli")["cluster"]
    assert cluster["clusterName"] == "cli"
    assert "cli" in " ".join(run("list-clusters")["clusterArns"])
    assert run("describe-clusters", "--clusters", "cli")["clusters"][0]["status"] == "ACTIVE"
    definition = json.dumps({**DEFINITION, "family": "cli-web"})
    revision = run("register-task-definition", "--cli-input-json", definition)["taskDefinition"]
    assert revision["taskDefinitionArn"].endswith(":1")
    assert run("describe-task-definition", "--task-definition", "cli-web")["taskDefinition"]
    listed = run("list-task-definitions", "--family-prefix", "cli-web")["taskDefinitionArns"]
    assert listed == [revision["taskDefinitionArn"]]
    instance = run("register-container-instance", "--cluster", "cli")["containerInstance"]
    arn = instance["containerInstanceArn"]
    assert run("list-container-instances", "--cluster", "cli")["containerInstanceArns"] == [arn]
    described = run(
        "describe-container-instances", "--cluster", "cli", "--container-instances", arn
    )["containerInstances"]
    assert described[0]["agentConnected"] is True
    run(
        "put-attributes",
        "--cluster",
        "cli",
        "--attributes",
        f"name=stack,value=prod,targetId={arn}",
    )
    attributes = run(
        "list-attributes",
        "--cluster",
        "cli",
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
    )["attributes"]
    assert [a["targetId"] for a in attributes] == [arn]
    started = run(
        "start-task",
        "--cluster",
        "cli",
        "--task-definition",
        "cli-web",
        "--container-instances",
        arn,
        "--started-by",
        "cli-test",
    )["tasks"]
    ran = run("run-task", "--cluster", "cli", "--task-definition", "cli-web", "--count", "1")
    assert ran["failures"][0]["reason"] == "RESOURCE:PORTS"  # host port 8080 is taken
    tasks = run("list-tasks", "--cluster", "cli", "--started-by", "cli-test")["taskArns"]
    assert tasks == [started[0]["taskArn"]]
    assert run("describe-tasks", "--cluster", "cli", "--tasks", *tasks)["tasks"][0]["lastStatus"]
    stopped = run("stop-task", "--cluster", "cli", "--task", tasks[0], "--reason", "done")
    assert stopped["task"]["desiredStatus"] == "STOPPED"
    drained = run(
        "update-container-instances-state",
        "--cluster",
        "cli",
        "--container-instances",
        arn,
        "--status",
        "DRAINING",
    )
    assert drained["containerInstances"][0]["status"] == "DRAINING"
    gone = run(
        "deregister-container-instance", "--cluster", "cli", "--container-instance", arn, "--force"
    )["containerInstance"]
    assert gone["status"] == "INACTIVE"
    retired = run("deregister-task-definition", "--task-definition", "cli-web:1")
    assert retired["taskDefinition"]["status"] == "INACTIVE"
    assert run("delete-cluster", "--cluster", "cli")["cluster"]["status"] == "INACTIVE"
