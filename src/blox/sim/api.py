"""The ECS JSON 1.1 wire: `X-Amz-Target` dispatch to `EcsState` methods, JSON in and out.

Requests are checked against botocore's input shape first (`shapes.py`); responses carry
timestamps as epoch seconds. This module only translates: behaviour lives in `sim/state`,
HTTP in `sim/app.py`. Errors stay `SimError`s; `app.py` renders them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from blox.sim import errors, shapes
from blox.sim.state import EcsState
from blox.sim.state.paging import decode_token, encode_token, page_size

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
Params = dict[str, Any]
Handler = Callable[[EcsState, Params], Params]


def load_model() -> ServiceModel:
    """botocore's ECS service model (the reference for every shape)."""
    return botocore.session.get_session().get_service_model("ecs")


def render(body: Params) -> bytes:
    """JSON with datetimes as epoch seconds, as the ECS API sends them."""
    return json.dumps(body, default=_epoch, separators=(",", ":")).encode()


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _token(seq: int | None) -> Params:
    return {} if seq is None else {"nextToken": encode_token(seq)}


def _results(key: str, pair: tuple[list[Any], list[dict[str, str]]]) -> Params:
    return {key: pair[0], "failures": pair[1]}


def _create_cluster(state: EcsState, p: Params) -> Params:
    return {"cluster": state.create_cluster(name=p.get("clusterName"))}


def _delete_cluster(state: EcsState, p: Params) -> Params:
    return {"cluster": state.delete_cluster(cluster=p["cluster"])}


def _describe_clusters(state: EcsState, p: Params) -> Params:
    return _results("clusters", state.describe_clusters(refs=p.get("clusters")))


def _list_clusters(state: EcsState, p: Params) -> Params:
    arns = state.clusters.active_arns()
    start = decode_token(p.get("nextToken"))
    size = page_size(p.get("maxResults"), default=100)
    end = start + size
    return {"clusterArns": arns[start:end], **_token(end if end < len(arns) else None)}


def _register_task_definition(state: EcsState, p: Params) -> Params:
    return {"taskDefinition": state.register_task_definition(p)}


def _describe_task_definition(state: EcsState, p: Params) -> Params:
    return {"taskDefinition": state.describe_task_definition(ref=p["taskDefinition"]), "tags": []}


def _deregister_task_definition(state: EcsState, p: Params) -> Params:
    return {"taskDefinition": state.deregister_task_definition(ref=p["taskDefinition"])}


def _list_task_definitions(state: EcsState, p: Params) -> Params:
    arns = state.task_definitions.list_arns(
        prefix=p.get("familyPrefix"),
        status=p.get("status", "ACTIVE"),
        descending=p.get("sort") == "DESC",
    )
    start = decode_token(p.get("nextToken"))
    end = start + page_size(p.get("maxResults"), default=100)
    return {"taskDefinitionArns": arns[start:end], **_token(end if end < len(arns) else None)}


def _register_container_instance(state: EcsState, p: Params) -> Params:
    instance = state.register_container_instance(
        cluster=p.get("cluster"),
        identity_document=p.get("instanceIdentityDocument"),
        total_resources=p.get("totalResources"),
        version_info=p.get("versionInfo"),
        attributes=p.get("attributes"),
    )
    return {"containerInstance": instance}


def _deregister_container_instance(state: EcsState, p: Params) -> Params:
    instance = state.deregister_container_instance(
        cluster=p.get("cluster"), instance=p["containerInstance"], force=p.get("force", False)
    )
    return {"containerInstance": instance}


def _describe_container_instances(state: EcsState, p: Params) -> Params:
    pair = state.describe_container_instances(
        cluster=p.get("cluster"), refs=p["containerInstances"]
    )
    return _results("containerInstances", pair)


def _list_container_instances(state: EcsState, p: Params) -> Params:
    if p.get("filter") is not None:
        raise errors.InvalidParameter("The cluster query language filter is not supported.")
    arns, last = state.list_container_instances(
        cluster=p.get("cluster"),
        status=p.get("status"),
        after=decode_token(p.get("nextToken")),
        limit=page_size(p.get("maxResults"), default=100),
    )
    return {"containerInstanceArns": arns, **_token(last)}


def _update_container_instances_state(state: EcsState, p: Params) -> Params:
    pair = state.update_container_instances_state(
        cluster=p.get("cluster"), refs=p["containerInstances"], status=p["status"]
    )
    return _results("containerInstances", pair)


def _put_attributes(state: EcsState, p: Params) -> Params:
    state.put_attributes(cluster=p.get("cluster"), attributes=p["attributes"])
    return {"attributes": p["attributes"]}


def _list_attributes(state: EcsState, p: Params) -> Params:
    if p["targetType"] != "container-instance":
        raise errors.InvalidParameter("targetType must be container-instance.")
    found = state.list_attributes(
        cluster=p.get("cluster"), name=p.get("attributeName"), value=p.get("attributeValue")
    )
    start = decode_token(p.get("nextToken"))
    end = start + page_size(p.get("maxResults"), default=100)
    return {"attributes": found[start:end], **_token(end if end < len(found) else None)}


def _start_task(state: EcsState, p: Params) -> Params:
    pair = state.start_task(
        cluster=p.get("cluster"),
        task_definition=p["taskDefinition"],
        instances=p["containerInstances"],
        started_by=p.get("startedBy"),
        group=p.get("group"),
    )
    return _results("tasks", pair)


def _run_task(state: EcsState, p: Params) -> Params:
    if p.get("launchType", "EC2") != "EC2" or p.get("capacityProviderStrategy"):
        raise errors.InvalidParameter("Only the EC2 launch type is supported by this simulator.")
    pair = state.run_task(
        cluster=p.get("cluster"),
        task_definition=p["taskDefinition"],
        count=p.get("count", 1),
        started_by=p.get("startedBy"),
        group=p.get("group"),
    )
    return _results("tasks", pair)


def _stop_task(state: EcsState, p: Params) -> Params:
    return {
        "task": state.stop_task(cluster=p.get("cluster"), task=p["task"], reason=p.get("reason"))
    }


def _describe_tasks(state: EcsState, p: Params) -> Params:
    return _results("tasks", state.describe_tasks(cluster=p.get("cluster"), refs=p["tasks"]))


def _list_tasks(state: EcsState, p: Params) -> Params:
    if p.get("serviceName") is not None or p.get("launchType") not in (None, "EC2"):
        return {"taskArns": []}  # no services and no Fargate in the simulator
    arns, last = state.list_tasks(
        cluster=p.get("cluster"),
        container_instance=p.get("containerInstance"),
        family=p.get("family"),
        started_by=p.get("startedBy"),
        desired_status=p.get("desiredStatus"),
        after=decode_token(p.get("nextToken")),
        limit=page_size(p.get("maxResults"), default=100),
    )
    return {"taskArns": arns, **_token(last)}


HANDLERS: dict[str, Handler] = {
    "CreateCluster": _create_cluster,
    "DeleteCluster": _delete_cluster,
    "DescribeClusters": _describe_clusters,
    "ListClusters": _list_clusters,
    "RegisterTaskDefinition": _register_task_definition,
    "DeregisterTaskDefinition": _deregister_task_definition,
    "DescribeTaskDefinition": _describe_task_definition,
    "ListTaskDefinitions": _list_task_definitions,
    "RegisterContainerInstance": _register_container_instance,
    "DeregisterContainerInstance": _deregister_container_instance,
    "DescribeContainerInstances": _describe_container_instances,
    "ListContainerInstances": _list_container_instances,
    "UpdateContainerInstancesState": _update_container_instances_state,
    "PutAttributes": _put_attributes,
    "ListAttributes": _list_attributes,
    "StartTask": _start_task,
    "RunTask": _run_task,
    "StopTask": _stop_task,
    "DescribeTasks": _describe_tasks,
    "ListTasks": _list_tasks,
}


class EcsApi:
    """Turns one (X-Amz-Target, body) pair into a response dict, or raises a SimError."""

    def __init__(self, state: EcsState, *, model: ServiceModel | None = None) -> None:
        self.state = state
        self.model = model or load_model()

    def operation(self, target: str | None) -> str:
        """The operation name in an `X-Amz-Target` header; UnknownOperationException if none."""
        name = (target or "").removeprefix(TARGET_PREFIX)
        if not target or not target.startswith(TARGET_PREFIX) or name not in HANDLERS:
            raise errors.UnknownOperation(f"Operation {target or '(none)'} is not supported.")
        return name

    def call(self, operation: str, body: bytes) -> Params:
        """Parse, validate and run one operation."""
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise errors.SerializationFault("Request body is not valid JSON.") from exc
        input_shape = self.model.operation_model(operation).input_shape
        if input_shape is not None:
            shapes.validate(params, input_shape)
        return HANDLERS[operation](self.state, params)
