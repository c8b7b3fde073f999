"""The pure parts of `create_local_stack`: what each stack status leads to, which event names
the cause of a failure, and reading outputs. CloudFormation on moto never fails a stack, so
the failure path is checked here on real DescribeStackEvents shapes."""

from __future__ import annotations

from typing import Any

import pytest

from blox.errors import Conflict
from blox.local.errors import StackMismatch
from blox.local.stack import Failure, Step, first_failure, next_step, outputs_of

STACK = "AWS::CloudFormation::Stack"


@pytest.mark.parametrize(
    ("status", "step"),
    [
        pytest.param(None, Step.CREATE, id="no stack: create it"),
        pytest.param("DELETE_COMPLETE", Step.CREATE, id="a deleted stack: create anew"),
        pytest.param("CREATE_COMPLETE", Step.READY, id="created: read its outputs"),
        pytest.param("UPDATE_COMPLETE", Step.READY, id="updated by hand: still ours"),
        pytest.param("UPDATE_ROLLBACK_COMPLETE", Step.READY, id="update rolled back: usable"),
        pytest.param("CREATE_IN_PROGRESS", Step.WAIT, id="being created: wait"),
        pytest.param("UPDATE_IN_PROGRESS", Step.WAIT, id="being updated: wait"),
        pytest.param("DELETE_IN_PROGRESS", Step.WAIT, id="being deleted: wait, then create"),
        pytest.param("CREATE_PENDING", Step.WAIT, id="moto's pending: wait"),
        pytest.param("CREATE_FAILED", Step.FAILED, id="create failed"),
        pytest.param("ROLLBACK_IN_PROGRESS", Step.FAILED, id="rolling back: already failed"),
        pytest.param("ROLLBACK_COMPLETE", Step.FAILED, id="rolled back: a human deletes it"),
        pytest.param("ROLLBACK_FAILED", Step.FAILED, id="rollback failed"),
        pytest.param("DELETE_FAILED", Step.FAILED, id="delete failed"),
        pytest.param("REVIEW_IN_PROGRESS", Step.FAILED, id="change set never executed"),
        pytest.param("SOMETHING_NEW", Step.FAILED, id="an unknown status is not waited on"),
    ],
)
def test_each_stack_status_leads_to_one_step(status: str | None, step: Step) -> None:
    assert next_step(status) is step


def event(logical: str, kind: str, status: str, reason: str | None = None) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "StackName": "BloxLocal",
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
    }
    if reason is not None:
        shaped["ResourceStatusReason"] = reason
    return shaped


def test_the_oldest_failed_resource_is_the_cause_not_the_siblings_cancelled_after_it() -> None:
    newest_first = [
        event("BloxLocal", STACK, "ROLLBACK_COMPLETE"),
        event("Queue", "AWS::SQS::Queue", "DELETE_COMPLETE"),
        event("BloxLocal", STACK, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed"),
        event("Queue", "AWS::SQS::Queue", "CREATE_FAILED", "Resource creation cancelled"),
        event("DeadLetterQueue", "AWS::SQS::Queue", "CREATE_FAILED", "blox_queue_dlq exists"),
        event("Queue", "AWS::SQS::Queue", "CREATE_IN_PROGRESS"),
        event("DeadLetterQueue", "AWS::SQS::Queue", "CREATE_IN_PROGRESS"),
        event("BloxLocal", STACK, "CREATE_IN_PROGRESS", "User Initiated"),
    ]
    assert first_failure(newest_first) == Failure(
        "DeadLetterQueue", "AWS::SQS::Queue", "blox_queue_dlq exists"
    )


def test_a_failure_without_a_failed_resource_falls_back_to_the_stack_event() -> None:
    newest_first = [
        event("BloxLocal", STACK, "DELETE_FAILED", "role is gone"),
        event("BloxLocal", STACK, "DELETE_IN_PROGRESS"),
    ]
    assert first_failure(newest_first) == Failure("BloxLocal", STACK, "role is gone")
    assert first_failure([]) == Failure(None, None, None)


def test_a_stack_without_our_outputs_is_a_mismatch_naming_what_is_missing() -> None:
    original = {  # the v0.3 stack had only these two
        "StackName": "BloxLocal",
        "Outputs": [
            {"OutputKey": "QueueName", "OutputValue": "blox_queue"},
            {"OutputKey": "QueueUrl", "OutputValue": "https://sqs/blox_queue"},
        ],
    }
    with pytest.raises(StackMismatch, match="QueueArn, DeadLetterQueueUrl, RuleArn") as caught:
        outputs_of(original)
    assert isinstance(caught.value, Conflict)
    assert caught.value.stack_name == "BloxLocal"
