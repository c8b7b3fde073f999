"""The BloxAws template read as data: the original's parameters, a launch template and not a
launch configuration, the event path of BloxLocal, least-privilege roles and security groups,
the task, the load balancer, the Lambda (whose inline code is deploy/lambda/proxy.py) and the
IAM-authorized API; cfn-lint finds nothing in it, and moto's CloudFormation creates it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cfnlint.api import lint  # type: ignore[import-untyped]
from moto import mock_aws

from tests.unit.deploy.artifacts import (
    AWS_TEMPLATE,
    PROXY,
    as_list,
    iam_actions,
    resources_of_type,
)

ORIGINAL_DEFAULTS = {
    "EcsAmiId": "",
    "KeyName": "",
    "EcsClusterName": "Blox",
    "QueueName": "blox_queue",
    "ApiStageName": "blox",
}
AL2023_AMI = "{{resolve:ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id}}"
EVENT_PATH = ["Queue", "DeadLetterQueue", "CloudWatchEvents", "QueuePolicy"]
TEMPLATE_BODY_LIMIT = 51_200  # bytes `create-stack --template-body` takes (beyond it: S3)


def task_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    return list(policy["PolicyDocument"]["Statement"])


def container(template: dict[str, Any], name: str) -> dict[str, Any]:
    definitions = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    (found,) = [c for c in definitions if c["Name"] == name]
    return dict(found)


def test_cfn_lint_finds_nothing_in_the_template_in_several_regions() -> None:
    matches = lint(AWS_TEMPLATE.read_text(), regions=["us-east-1", "eu-west-1", "ap-southeast-2"])
    assert [str(m) for m in matches] == []


def test_cfn_lint_catches_a_broken_template_so_the_lint_test_can_fail() -> None:
    broken = AWS_TEMPLATE.read_text().replace("Runtime: python3.13", "Runtime: python3.99")
    assert broken != AWS_TEMPLATE.read_text()
    assert lint(broken, regions=["us-east-1"])


def test_the_template_is_small_enough_to_pass_as_a_body_without_s3() -> None:
    assert len(AWS_TEMPLATE.read_bytes()) < TEMPLATE_BODY_LIMIT


def test_the_parameters_are_the_originals_with_their_defaults(aws_template: dict[str, Any]) -> None:
    parameters = aws_template["Parameters"]
    for name, default in ORIGINAL_DEFAULTS.items():
        assert parameters[name]["Default"] == default, name
    # v0.3's t2.micro is a previous generation with 1 GiB for etcd and two services.
    assert parameters["InstanceType"]["Default"] == "t3.small"
    assert "Default" not in parameters["BloxImage"]  # no guessed registry: the user names it
    assert re.fullmatch(parameters["BloxImage"]["AllowedPattern"], "r.example/blox-ecs:0.1.0")
    assert not re.fullmatch(parameters["BloxImage"]["AllowedPattern"], "r.example/blox-ecs")


def test_an_empty_ami_id_means_the_current_ecs_optimized_al2023_ami(
    aws_template: dict[str, Any],
) -> None:
    assert aws_template["Conditions"]["HasEcsAmiId"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EcsAmiId"}, ""]}]
    }
    data = aws_template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["ImageId"] == {"Fn::If": ["HasEcsAmiId", {"Ref": "EcsAmiId"}, AL2023_AMI]}


def test_instances_come_from_a_launch_template_never_a_launch_configuration(
    aws_template: dict[str, Any],
) -> None:
    kinds = {r["Type"] for r in aws_template["Resources"].values()}
    assert "AWS::AutoScaling::LaunchConfiguration" not in kinds
    assert "AWS::EC2::Instance" not in kinds
    (group,) = resources_of_type(aws_template, "AWS::AutoScaling::AutoScalingGroup").values()
    assert group["Properties"]["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": "LaunchTemplate"},
        "Version": {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]},
    }
    assert group["Properties"]["VPCZoneIdentifier"] == [
        {"Ref": "PublicSubnet1"},
        {"Ref": "PublicSubnet2"},
    ]
    data = aws_template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    assert all(m["Ebs"]["Encrypted"] is True for m in data["BlockDeviceMappings"])


def test_the_two_public_subnets_are_in_two_availability_zones(aws_template: dict[str, Any]) -> None:
    subnets = resources_of_type(aws_template, "AWS::EC2::Subnet")
    zones = [s["Properties"]["AvailabilityZone"] for s in subnets.values()]
    assert zones == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in (0, 1)]
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is True for s in subnets.values())


def test_the_event_path_is_the_local_stacks_verbatim(
    aws_template: dict[str, Any], local_template: dict[str, Any]
) -> None:
    for name in EVENT_PATH:
        assert aws_template["Resources"][name] == local_template["Resources"][name], name
    for name in ("QueueName", "MaxReceiveCount", "MessageRetentionPeriod"):
        assert (
            aws_template["Parameters"][name]["Default"]
            == (local_template["Parameters"][name]["Default"])
        )
    queues = resources_of_type(aws_template, "AWS::SQS::Queue").values()
    assert [q["Properties"]["SqsManagedSseEnabled"] for q in queues] == [True, True]


def test_the_lambda_runs_a_current_python_in_the_vpc_against_the_load_balancer(
    aws_template: dict[str, Any],
) -> None:
    (function,) = resources_of_type(aws_template, "AWS::Lambda::Function").values()
    properties = function["Properties"]
    version = re.fullmatch(r"python(\d+)\.(\d+)", properties["Runtime"])
    assert version is not None
    assert (int(version[1]), int(version[2])) >= (3, 12)
    assert properties["Handler"] == "index.handler"
    assert properties["VpcConfig"]["SubnetIds"] == [
        {"Ref": "PublicSubnet1"},
        {"Ref": "PublicSubnet2"},
    ]
    assert properties["Environment"]["Variables"]["BLOX_ENDPOINT"] == {
        "Fn::Sub": "http://${LoadBalancer.DNSName}"
    }
    assert properties["Timeout"] < 30  # API Gateway answers 504 itself after 29 s


def test_the_inline_lambda_code_is_deploy_lambda_proxy_py_verbatim(
    aws_template: dict[str, Any],
) -> None:
    function = aws_template["Resources"]["ProxyFunction"]
    assert function["Properties"]["Code"]["ZipFile"] == PROXY.read_text(), (
        "deploy/lambda/proxy.py changed: paste it again under ProxyFunction's Code.ZipFile"
    )


def test_the_api_is_any_on_proxy_plus_with_iam_auth_and_lambda_proxy_integration(
    aws_template: dict[str, Any],
) -> None:
    (resource,) = resources_of_type(aws_template, "AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "{proxy+}"
    assert resource["Properties"]["ParentId"] == {"Fn::GetAtt": ["RestApi", "RootResourceId"]}
    (method,) = resources_of_type(aws_template, "AWS::ApiGateway::Method").values()
    properties = method["Properties"]
    assert (properties["HttpMethod"], properties["AuthorizationType"]) == ("ANY", "AWS_IAM")
    assert properties["Integration"]["Type"] == "AWS_PROXY"
    assert properties["Integration"]["IntegrationHttpMethod"] == "POST"
    assert "${ProxyFunction.Arn}/invocations" in properties["Integration"]["Uri"]["Fn::Sub"]
    (stage,) = resources_of_type(aws_template, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == {"Ref": "ApiStageName"}
    (permission,) = resources_of_type(aws_template, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    assert permission["Properties"]["SourceArn"]["Fn::Sub"].endswith(
        ":${RestApi}/${ApiStageName}/*/*"
    )
    assert aws_template["Outputs"]["RestApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStageName}"
    }


def test_the_task_role_names_every_action_and_scopes_what_ecs_and_sqs_can_scope(
    aws_template: dict[str, Any],
) -> None:
    known = iam_actions()
    for statement in task_role_statements(aws_template):
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource"} & statement.keys()
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
            service, name = action.lower().split(":")
            scopable = known[service][name].get("Resources", [])
            pinned = "ecs:cluster" in str(statement.get("Condition", {}))
            if scopable and not pinned:
                assert "*" not in as_list(statement["Resource"]), action


def test_the_task_role_reads_the_queue_dead_letters_poison_and_passes_only_blox_roles(
    aws_template: dict[str, Any],
) -> None:
    by_action = {
        action: statement
        for statement in task_role_statements(aws_template)
        for action in as_list(statement["Action"])
    }
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert by_action[action]["Resource"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert by_action["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for action in ("ecs:ListTasks", "ecs:StartTask"):
        assert by_action[action]["Condition"] == {
            "ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}
        }
    passing = by_action["iam:PassRole"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert passing["Resource"]["Fn::Sub"].endswith(":role/blox/*")
    trust = aws_template["Resources"]["TaskRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ecs-tasks.amazonaws.com"}]


def test_nothing_is_open_to_the_world_and_each_hop_admits_only_the_previous_one(
    aws_template: dict[str, Any],
) -> None:
    rules = {
        (
            r["Properties"]["GroupId"]["Ref"],
            r["Properties"].get("SourceSecurityGroupId", {}).get("Ref"),
        )
        for r in resources_of_type(aws_template, "AWS::EC2::SecurityGroupIngress").values()
    }
    assert rules == {
        ("LoadBalancerSecurityGroup", "LambdaSecurityGroup"),
        ("InstanceSecurityGroup", "LoadBalancerSecurityGroup"),
    }
    for group in resources_of_type(aws_template, "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]
    assert "0.0.0.0/0" not in str(resources_of_type(aws_template, "AWS::EC2::SecurityGroupIngress"))
    (balancer,) = resources_of_type(
        aws_template, "AWS::ElasticLoadBalancingV2::LoadBalancer"
    ).values()
    assert balancer["Properties"]["Scheme"] == "internal"


def test_one_task_runs_etcd_the_css_and_the_scheduler_with_the_original_flags(
    aws_template: dict[str, Any],
) -> None:
    etcd, css, scheduler = (container(aws_template, n) for n in ("etcd", "css", "scheduler"))
    assert etcd["Essential"] is True
    assert css["Command"][:7] == [
        *("css", "--bind", "0.0.0.0:3000", "--etcd-endpoint", "etcd:2379"),
        *("--queue", {"Ref": "Queue"}),
    ]
    assert scheduler["Command"][:7] == [
        *("scheduler", "--bind", "0.0.0.0:2000", "--css-endpoint", "css:3000"),
        *("--etcd-endpoint", "etcd:2379"),
    ]
    assert css["DependsOn"] == [{"ContainerName": "etcd", "Condition": "HEALTHY"}]
    assert [p["ContainerPort"] for p in css["PortMappings"] + scheduler["PortMappings"]] == [
        3000,
        2000,
    ]
    for each in (css, scheduler):
        assert "/healthz" in each["HealthCheck"]["Command"][-1]


def test_the_load_balancer_checks_the_schedulers_ping_and_sends_css_reads_to_the_css(
    aws_template: dict[str, Any],
) -> None:
    resources = aws_template["Resources"]
    assert resources["SchedulerTargetGroup"]["Properties"]["HealthCheckPath"] == "/v1/ping"
    assert resources["SchedulerTargetGroup"]["Properties"]["Port"] == 2000
    assert resources["CssTargetGroup"]["Properties"]["Port"] == 3000
    (condition,) = resources["CssListenerRule"]["Properties"]["Conditions"]
    assert "/v1/tasks/*" in condition["PathPatternConfig"]["Values"]
    assert "/v1/environments" not in str(condition)
    balancers = resources["Service"]["Properties"]["LoadBalancers"]
    assert {(b["ContainerName"], b["ContainerPort"]) for b in balancers} == {
        ("scheduler", 2000),
        ("css", 3000),
    }


@pytest.fixture
def moto_stack() -> Iterator[dict[str, Any]]:
    """The template created by moto's CloudFormation in this process (no sockets)."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        cloudformation = session.client("cloudformation")
        cloudformation.create_stack(
            StackName="BloxAws",
            TemplateBody=AWS_TEMPLATE.read_text(),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[
                {"ParameterKey": "BloxImage", "ParameterValue": "r.example/blox-ecs:0.1.0"},
                {"ParameterKey": "EcsAmiId", "ParameterValue": "ami-12c6146b"},
            ],
        )
        (stack,) = cloudformation.describe_stacks(StackName="BloxAws")["Stacks"]
        yield {"stack": stack, "session": session}


# moto 5.2 creates no SecurityGroupEgress, QueuePolicy or ApiGateway::Stage (it warns).
@pytest.mark.filterwarnings("ignore:Tried to parse AWS.+not supported:UserWarning")
def test_moto_creates_the_stack_and_its_api_resolves_to_the_lambda(
    moto_stack: dict[str, Any],
) -> None:
    stack, session = moto_stack["stack"], moto_stack["session"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    url = re.fullmatch(
        r"https://(\w+)\.execute-api\.us-east-1\.amazonaws\.com/blox", outputs["RestApiUrl"]
    )
    assert url is not None
    api = session.client("apigateway")
    resources = api.get_resources(restApiId=url[1])["items"]
    (proxy,) = [r for r in resources if r.get("pathPart") == "{proxy+}"]
    method = api.get_method(restApiId=url[1], resourceId=proxy["id"], httpMethod="ANY")
    assert method["authorizationType"] == "AWS_IAM"
    assert method["methodIntegration"]["type"] == "AWS_PROXY"
    (function,) = session.client("lambda").list_functions()["Functions"]
    assert function["FunctionArn"] in method["methodIntegration"]["uri"]
    assert function["Environment"]["Variables"]["BLOX_ENDPOINT"] == (
        "http://" + outputs["LoadBalancerDnsName"]
    )
    ecs = session.client("ecs")
    (arn,) = ecs.list_task_definitions()["taskDefinitionArns"]
    definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert [c["name"] for c in definition["containerDefinitions"]] == ["etcd", "css", "scheduler"]
    (service_arn,) = ecs.list_services(cluster=outputs["EcsClusterName"])["serviceArns"]
    (service,) = ecs.describe_services(cluster="Blox", services=[service_arn])["services"]
    assert (service["taskDefinition"], service["desiredCount"]) == (arn, 1)
    (balancer,) = session.client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert (balancer["Scheme"], balancer["DNSName"]) == ("internal", outputs["LoadBalancerDnsName"])


@pytest.mark.filterwarnings("ignore:Tried to parse AWS.+not supported:UserWarning")
def test_moto_validates_the_template_and_rejects_a_broken_one() -> None:
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        answer = cloudformation.validate_template(TemplateBody=AWS_TEMPLATE.read_text())
        assert answer["Description"].startswith("Blox framework on AWS")
        broken = AWS_TEMPLATE.read_text().replace("Resources:", "Resourcez:", 1)
        with pytest.raises(cloudformation.exceptions.ClientError, match="ValidationError"):
            cloudformation.validate_template(TemplateBody=broken)
