"""The BloxLocal template read as data: who may touch the queue, what the rule matches, SSE,
redrive, outputs; and cfn-lint finds nothing in it.

moto 5.2 skips `AWS::SQS::QueuePolicy` when it creates the stack (issue 8), so the policy's
content is checked here, on the template itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint  # type: ignore[import-untyped]
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

from blox.local.stack import StackOutputs, outputs_of, template_text

REPO = Path(__file__).resolve().parents[3]
DEPLOYED = REPO / "deploy" / "cloudformation" / "blox-local.yaml"
PACKAGED = REPO / "src" / "blox" / "local" / "templates" / "blox-local.yaml"
DETAIL_TYPES = ["ECS Task State Change", "ECS Container Instance State Change"]
READ_OR_DELETE = ("sqs:receive", "sqs:delete", "sqs:purge", "sqs:changemessagevisibility")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The packaged template, short tags (!Ref, !GetAtt, !Sub) turned into their long forms."""
    parsed: dict[str, Any] = cfn_yaml.loads(template_text())
    return parsed


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_deploy_folder_links_to_the_packaged_template_by_a_relative_path() -> None:
    assert DEPLOYED.is_symlink()
    assert not os.path.isabs(os.readlink(DEPLOYED))
    assert DEPLOYED.resolve() == PACKAGED.resolve()
    assert DEPLOYED.read_text() == template_text()


def test_the_queue_policy_applies_to_the_blox_queue_only(template: dict[str, Any]) -> None:
    (policy,) = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    assert policy["Properties"]["Queues"] == [{"Ref": "Queue"}]
    assert [s["Resource"] for s in statements(template)] == [{"Fn::GetAtt": ["Queue", "Arn"]}]


def test_only_eventbridge_may_send_and_only_on_behalf_of_the_blox_rule(
    template: dict[str, Any],
) -> None:
    (statement,) = statements(template)
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["CloudWatchEvents", "Arn"]}}
    }


def test_no_statement_lets_anyone_else_in_or_lets_anyone_read_or_delete(
    template: dict[str, Any],
) -> None:
    for statement in statements(template):
        assert not {"NotPrincipal", "NotAction", "NotResource"} & statement.keys()
        principal = statement["Principal"]
        groups = [principal] if isinstance(principal, str) else list(principal.values())
        assert "*" not in [name for group in groups for name in as_list(group)]
        for action in (a.lower() for a in as_list(statement["Action"])):
            assert "*" not in action
            assert not action.startswith(READ_OR_DELETE)


def test_the_rule_matches_exactly_ecs_task_and_instance_state_changes(
    template: dict[str, Any],
) -> None:
    rule = template["Resources"]["CloudWatchEvents"]
    assert rule["Type"] == "AWS::Events::Rule"
    properties = rule["Properties"]
    assert properties["EventPattern"] == {"source": ["aws.ecs"], "detail-type": DETAIL_TYPES}
    assert properties["State"] == "ENABLED"
    assert properties["Name"] == {"Fn::Sub": "${QueueName}Events"}  # as the original's
    assert [t["Arn"] for t in properties["Targets"]] == [{"Fn::GetAtt": ["Queue", "Arn"]}]


def test_both_queues_are_encrypted_at_rest(template: dict[str, Any]) -> None:
    queues = resources_of_type(template, "AWS::SQS::Queue")
    assert set(queues) == {"Queue", "DeadLetterQueue"}
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_the_queue_redrives_to_the_dead_letter_queue_after_max_receive_count(
    template: dict[str, Any],
) -> None:
    properties = template["Resources"]["Queue"]["Properties"]
    assert properties["QueueName"] == {"Ref": "QueueName"}
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    parameters = template["Parameters"]
    assert parameters["MaxReceiveCount"]["Default"] == 5
    assert parameters["QueueName"]["Default"] == "blox_queue"


def test_the_outputs_are_what_create_local_stack_reads(template: dict[str, Any]) -> None:
    described = {
        "StackName": "BloxLocal",
        "Outputs": [{"OutputKey": k, "OutputValue": f"<{k}>"} for k in template["Outputs"]],
    }
    assert outputs_of(described) == StackOutputs(
        queue_url="<QueueUrl>",
        queue_name="<QueueName>",
        queue_arn="<QueueArn>",
        dlq_url="<DeadLetterQueueUrl>",
        rule_arn="<RuleArn>",
    )
    assert template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "Queue"}
    assert template["Outputs"]["RuleArn"]["Value"] == {"Fn::GetAtt": ["CloudWatchEvents", "Arn"]}


def test_cfn_lint_finds_nothing_in_the_template() -> None:
    matches = lint(template_text(), regions=["us-east-1"])
    assert [str(m) for m in matches] == []


def test_cfn_lint_catches_a_broken_policy_so_the_lint_test_can_fail() -> None:
    broken = template_text().replace("Action: sqs:SendMessage", "Action: sqs:SendMesage")
    assert broken != template_text()
    assert lint(broken, regions=["us-east-1"])
