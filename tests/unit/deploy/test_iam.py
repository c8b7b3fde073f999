"""The IAM policy documents of deploy/iam: well-formed, every action a real one, and enough to
create, update and delete each stack: every permission CloudFormation's handlers list for the
resource types of a template is allowed by its deploy policy, except those of features the
templates do not use (listed below with the reason). The caller policy fits the API's ARN and
the local run policy matches what the AWS task role may do.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.artifacts import (
    AWS_TEMPLATE,
    IAM,
    LOCAL_TEMPLATE,
    as_list,
    handler_permissions,
    iam_actions,
    load_template,
)

DOCUMENTS = sorted(IAM.glob("*.json"))
MANAGED_POLICY_LIMIT = 6144  # characters of a managed policy, whitespace aside
HANDLERS = ("create", "read", "update", "delete")
# Handler permissions for properties and features these templates leave unset.
UNUSED = {
    "kms:*": "no customer-managed keys (SQS-managed SSE, default EBS and log encryption)",
    "s3:*": "no template, code or API body in S3: the Lambda code is inline",
    "s3files:*": "no S3 file systems",
    "cognito-idp:*": "no Cognito listener actions",
    "elasticfilesystem:*": "no EFS mounts in the Lambda",
    "firehose:*": "no log delivery to Firehose",
    "cloudwatch:*": "no scaling alarms on the auto scaling group",
    "managed-fleets:*": "no managed fleets",
    "vpc-lattice:*": "no VPC Lattice target groups",
    "lambda:AssociateRuntimeAlias": "no runtime aliases",
    "lambda:PassCapacityProvider": "no Lambda capacity providers",
    "lambda:*CodeSigningConfig": "no code signing",
    "lambda:*FunctionConcurrency": "no reserved concurrency",
    "lambda:Put*Config": "no recursion, scaling or runtime-management settings",
    "lambda:PublishVersion": "no versions",
    "iam:PassRole": "granted in a statement of its own, limited by iam:PassedToService",
    "iam:CreateServiceLinkedRole": "granted in a statement of its own, per service",
    "iam:*RolePermissionsBoundary": "no permissions boundaries",
    "ssm:Get*": "only the ECS AMI parameter, in a statement of its own",
    "ec2:*VpnGateway": "no VPN gateways",
    "ec2:*SubnetCidrBlock": "no IPv6 or secondary CIDR blocks",
    "ec2:ModifyVpcTenancy": "default tenancy",
    "ec2:CreateVpcEncryptionControl": "no VPC encryption controls",
    "elasticloadbalancing:ModifyCapacityReservation": "no capacity reservations",
    "elasticloadbalancing:ModifyIpPools": "no IPAM pools",
    "elasticloadbalancing:SetIpAddressType": "IPv4 only",
    "autoscaling:*LoadBalancer*": "ECS registers targets, not the auto scaling group",
    "autoscaling:*TrafficSources": "ECS registers targets, not the auto scaling group",
    "autoscaling:*InstanceRefresh": "rolling updates through UpdatePolicy",
    "autoscaling:*LifecycleHook": "no lifecycle hooks",
    "autoscaling:*NotificationConfiguration": "no notifications",
    "autoscaling:*MetricsCollection": "no group metrics",
    "logs:*KmsKey": "no customer-managed keys",
    "logs:CreateLogDelivery": "no vended log deliveries",
    "logs:*DataProtectionPolicy": "no data protection policies",
    "logs:*IndexPolicy": "no field indexes",
    "logs:*ResourcePolicy": "no log resource policies",
    "logs:PutBearerTokenAuthentication": "no bearer tokens",
    "logs:PutLogGroupDeletionProtection": "no deletion protection",
    "ecs:PutAccountSetting*": "account settings are the account owner's",
    "ecs:PutClusterCapacityProviders": "no capacity providers",
    "ecs:StopServiceDeployment": "deployments roll back by circuit breaker",
    "apigateway:UpdateRestApiPolicy": "no REST API resource policy",
}


def matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allowed_actions(document: dict[str, Any]) -> list[str]:
    return [
        action
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    ]


def needed(template: Path) -> set[str]:
    """Every handler permission of the template's resource types, unused features aside."""
    kinds = {r["Type"] for r in load_template(template)["Resources"].values()}
    return {
        permission
        for kind in kinds
        for handler in HANDLERS
        for permission in handler_permissions(kind).get(handler, [])
        if not any(matches(pattern, permission) for pattern in UNUSED)
    }


def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((IAM / name).read_text())
    return loaded


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_each_document_is_a_well_formed_policy_of_real_actions(path: Path) -> None:
    text = path.read_text()
    policy = json.loads(text)
    assert policy["Version"] == "2012-10-17"
    assert len("".join(text.split())) <= MANAGED_POLICY_LIMIT
    known = iam_actions()
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Effect"] == "Allow"
        assert statement["Resource"]
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            assert service == service.lower() and name, action
            assert "*" not in service
            assert [a for a in known[service] if matches(name, a)], f"{action} is no IAM action"


@pytest.mark.parametrize(
    ("policy", "template", "stack"),
    [
        pytest.param("deploy-local.json", LOCAL_TEMPLATE, "BloxLocal", id="local"),
        pytest.param("deploy-aws.json", AWS_TEMPLATE, "BloxAws", id="aws"),
    ],
)
def test_the_deploy_policy_covers_every_resource_type_of_its_template(
    policy: str, template: Path, stack: str
) -> None:
    allowed = allowed_actions(document(policy))
    missing = sorted(p for p in needed(template) if not any(matches(a, p) for a in allowed))
    assert missing == []
    (manage,) = [s for s in document(policy)["Statement"] if s["Sid"] == "ManageTheStack"]
    assert manage["Resource"] == f"arn:aws:cloudformation:*:*:stack/{stack}/*"
    for action in ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStackEvents"):
        assert any(matches(a, f"cloudformation:{action}") for a in as_list(manage["Action"]))


def test_the_coverage_check_fails_when_a_resource_type_is_not_covered() -> None:
    allowed = allowed_actions(document("deploy-local.json"))
    aws_only = needed(AWS_TEMPLATE) - needed(LOCAL_TEMPLATE)
    assert "ec2:CreateVpc" in aws_only
    assert not any(matches(a, "ec2:CreateVpc") for a in allowed)


def test_every_sqs_resource_type_of_the_local_template_has_its_create_action() -> None:
    kinds = {r["Type"] for r in load_template(LOCAL_TEMPLATE)["Resources"].values()}
    allowed = allowed_actions(document("deploy-local.json"))
    assert {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"} <= kinds
    for action in ("sqs:CreateQueue", "sqs:SetQueueAttributes", "events:PutRule"):
        assert any(matches(a, action) for a in allowed), action


def test_broad_deploy_statements_work_only_through_cloudformation_and_roles_stay_narrow() -> None:
    statements = {s["Sid"]: s for s in document("deploy-aws.json")["Statement"]}
    reads = ("cloudformation:ValidateTemplate", "*:Describe*", "*:Get*", "*:List*")
    for statement in statements.values():
        writes = [a for a in as_list(statement["Action"]) if not any(matches(r, a) for r in reads)]
        if statement["Resource"] == "*" and writes:
            assert statement.get("Condition"), statement["Sid"]
    broad = statements["NetworkInstancesLoadBalancerAndEcsThroughCloudFormation"]
    assert broad["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:CalledVia": ["cloudformation.amazonaws.com"]}
    }
    passing = statements["PassStackRolesToTheirServices"]
    assert passing["Action"] == ["iam:PassRole"]
    assert passing["Condition"]["StringEquals"]["iam:PassedToService"]
    linked = statements["ServiceLinkedRolesOfEcsElbAndAutoScaling"]
    assert linked["Condition"]["StringEquals"]["iam:AWSServiceName"]
    roles = statements["StackRolesAndInstanceProfile"]
    assert all(r.startswith("arn:aws:iam::*:") and "BloxAws-" in r for r in roles["Resource"])


def test_the_caller_policy_invokes_only_the_stacks_api_stage() -> None:
    (statement,) = document("api-caller.json")["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    template = load_template(AWS_TEMPLATE)
    arn = template["Outputs"]["ApiInvokeArn"]["Value"]["Fn::Sub"]
    shape = (
        arn.replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", "REGION")
        .replace("${AWS::AccountId}", "ACCOUNT_ID")
        .replace("${RestApi}", "REST_API_ID")
        .replace("${ApiStageName}", template["Parameters"]["ApiStageName"]["Default"])
    )
    assert statement["Resource"] == shape


def test_running_locally_needs_what_the_aws_task_role_has_plus_queue_url_lookups() -> None:
    (role_policy,) = load_template(AWS_TEMPLATE)["Resources"]["TaskRole"]["Properties"]["Policies"]
    task_role = set(allowed_actions(role_policy["PolicyDocument"]))
    local = set(allowed_actions(document("run-local.json")))
    assert local == task_role | {"sqs:GetQueueUrl"}
