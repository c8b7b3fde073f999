"""ECS ARNs parse into their parts and format back to the same text, in every partition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import blox.model
from blox import errors
from blox.model import arn

ACCOUNT = "111122223333"

VALID = [
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:cluster/fleet-a",
        ("aws", "us-east-1", "cluster", "fleet-a", "fleet-a"),
        id="cluster in aws",
    ),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:task/fleet-a/357f8a30d7761a1100ff311968bba316",
        ("aws", "us-east-1", "task", "fleet-a", "357f8a30d7761a1100ff311968bba316"),
        id="long task ARN names its cluster",
    ),
    pytest.param(
        "arn:aws-us-gov:ecs:us-gov-west-1:111122223333:task/332e1700-d4d9-4b91-ad76-394cd2637adf",
        ("aws-us-gov", "us-gov-west-1", "task", None, "332e1700-d4d9-4b91-ad76-394cd2637adf"),
        id="short task ARN in GovCloud has no cluster",
    ),
    pytest.param(
        "arn:aws-cn:ecs:cn-north-1:111122223333:container-instance/prod/0ae71c5f39e191095278da7bb8a0aece",
        ("aws-cn", "cn-north-1", "container-instance", "prod", "0ae71c5f39e191095278da7bb8a0aece"),
        id="long container instance ARN in China",
    ),
    pytest.param(
        "arn:aws-iso-b:ecs:us-isob-east-1:111122223333:container-instance/c1cd04ef-c401-436c-b180-1ad8228e0db6",
        (
            "aws-iso-b",
            "us-isob-east-1",
            "container-instance",
            None,
            "c1cd04ef-c401-436c-b180-1ad8228e0db6",
        ),
        id="short container instance ARN in an ISO partition",
    ),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:task-definition/log-shipper:7",
        ("aws", "us-east-1", "task-definition", None, "log-shipper:7"),
        id="task definition is family and revision",
    ),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:container/fleet-a/357f8a30d7761a1100ff311968bba316/"
        "9d3c1a5e-7b2f-4c8e-a1d6-5f0e2b7c9a41",
        (
            "aws",
            "us-east-1",
            "container",
            "fleet-a",
            "357f8a30d7761a1100ff311968bba316/9d3c1a5e-7b2f-4c8e-a1d6-5f0e2b7c9a41",
        ),
        id="long container ARN keeps the task id in the resource id",
    ),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:container/1c7b8655-e104-4d37-b77e-b9c6dac457b4",
        ("aws", "us-east-1", "container", None, "1c7b8655-e104-4d37-b77e-b9c6dac457b4"),
        id="short container ARN",
    ),
]

INVALID = [
    pytest.param("", "not an ECS ARN", id="empty"),
    pytest.param("fleet-a", "not an ECS ARN", id="a cluster name"),
    pytest.param("arn:aws:s3:::bucket", "not an ECS ARN", id="another service"),
    pytest.param(
        "arn:azure:ecs:us-east-1:111122223333:cluster/a", "not an ECS ARN", id="partition"
    ),
    pytest.param("arn:aws:ecs:us-east-1:1234:cluster/a", "not an ECS ARN", id="short account"),
    pytest.param("arn:aws:ecs:useast1:111122223333:cluster/a", "not an ECS ARN", id="bad region"),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:cluster/", "not an ECS ARN", id="no name"),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:cluster/a b", "malformed", id="space"),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:cluster/a\n", "not an ECS ARN", id="newline"),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:service/a/b", "unknown", id="service"),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:task/a/b/c", "malformed", id="3-part task"),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:task-definition/web", "malformed", id="no rev"
    ),
    pytest.param(
        "arn:aws:ecs:us-east-1:111122223333:task-definition/web:0", "malformed", id="rev 0"
    ),
    pytest.param("arn:aws:ecs:us-east-1:111122223333:container/a/b", "malformed", id="2-part ctr"),
]


@pytest.mark.parametrize(("text", "parts"), VALID)
def test_an_arn_parses_into_its_parts_and_formats_back(
    text: str, parts: tuple[str, str, str, str | None, str]
) -> None:
    parsed = arn.parse(text)
    assert (
        parsed.partition,
        parsed.region,
        parsed.resource_type,
        parsed.cluster,
        parsed.resource_id,
    ) == parts
    assert parsed.account == ACCOUNT
    assert arn.format(parsed) == str(parsed) == text


@pytest.mark.parametrize(("text", "problem"), INVALID)
def test_garbage_is_rejected_with_a_message_naming_it(text: str, problem: str) -> None:
    with pytest.raises(arn.ArnInvalid, match=problem):
        arn.parse(text)


def test_a_non_string_is_rejected_as_invalid_input() -> None:
    with pytest.raises(arn.ArnInvalid, match="must be a string") as caught:
        arn.parse(42)  # type: ignore[arg-type]
    assert isinstance(caught.value, errors.Invalid)


def test_a_cluster_arn_is_built_from_its_parts_and_checked() -> None:
    built = arn.cluster_arn(partition="aws-cn", region="cn-north-1", account=ACCOUNT, name="prod")
    assert built == "arn:aws-cn:ecs:cn-north-1:111122223333:cluster/prod"
    assert arn.parse(built).cluster == "prod"
    with pytest.raises(arn.ArnInvalid):
        arn.cluster_arn(partition="aws", region="us-east-1", account=ACCOUNT, name="no/slash")


def test_the_model_package_declares_its_surface() -> None:
    assert sorted(blox.model.__all__) == ["arn", "ecs", "errors", "events"]
    for name in blox.model.__all__:
        assert hasattr(blox.model, name)


def _text(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


@st.composite
def arns(draw: st.DrawFn) -> arn.Arn:
    """Any ARN of a known resource type, in either format."""
    kind = draw(st.sampled_from(arn.RESOURCE_TYPES))
    name = draw(_text(arn.NAME))
    cluster: str | None = draw(st.none() | st.just(name))
    resource_id = draw(_text(arn.RESOURCE_ID))
    if kind == "cluster":
        cluster, resource_id = name, name
    elif kind == "task-definition":
        cluster, resource_id = None, f"{name}:{draw(_text(arn.REVISION))}"
    elif kind == "container" and cluster is not None:
        resource_id = f"{draw(_text(arn.RESOURCE_ID))}/{resource_id}"
    return arn.Arn(
        partition=draw(st.sampled_from(["aws", "aws-cn", "aws-us-gov"]) | _text(arn.PARTITION)),
        region=draw(_text(arn.REGION)),
        account=draw(_text(arn.ACCOUNT)),
        resource_type=kind,
        cluster=cluster,
        resource_id=resource_id,
    )


@given(arns())
def test_every_arn_survives_a_format_parse_round_trip(value: arn.Arn) -> None:
    text = arn.format(value)
    assert arn.parse(text) == value
    assert arn.format(arn.parse(text)) == text
