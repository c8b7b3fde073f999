"""The BloxLocal stack on moto in server mode: created through CloudFormation by
`create_local_stack` and by the AWS CLI, its queues real, and ECS events routed by its rule.

moto 5.2 skips `AWS::SQS::QueuePolicy` with a UserWarning (issue 8); the policy's content is
tested in tests/unit/local/test_local_template.py instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from blox.errors import Invalid, Temporary, Unavailable
from blox.local import StackOutputs, create_local_stack
from blox.local.errors import (
    CloudFormationUnavailable,
    StackMismatch,
    StackRejected,
    StackTimedOut,
)
from blox.local.stack import template_text
from blox.testing.ports import free_port
from tests.e2e.aws import client, until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Tried to parse AWS.+SQS.+QueuePolicy:UserWarning"),
]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def cloudformation(moto_endpoint: str) -> Iterator[Any]:
    cfn = client("cloudformation", moto_endpoint)
    yield cfn
    cfn.close()


@pytest.fixture
def sqs(moto_endpoint: str) -> Iterator[Any]:
    queues = client("sqs", moto_endpoint)
    yield queues
    queues.close()


@pytest.fixture
def events(moto_endpoint: str) -> Iterator[Any]:
    bus = client("events", moto_endpoint)
    yield bus
    bus.close()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def stack(cloudformation: Any) -> StackOutputs:
    """A BloxLocal stack of its own (stack and queue names unique to the test)."""
    return create_local_stack(
        cloudformation, stack_name=unique("Blox"), parameters={"QueueName": unique("q_")}
    )


def status_of(cloudformation: Any, stack_name: str) -> str:
    return str(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])


def arn_of(sqs: Any, queue_url: str) -> str:
    """The ARN of the queue at `queue_url`: moto's CloudFormation gives AWS-style queue URLs
    (https://sqs.<region>.amazonaws.com/…) while GetQueueUrl gives its own host; both work."""
    answer = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


def drain_until(sqs: Any, queue_url: str, marker: str) -> list[dict[str, Any]]:
    """Every EventBridge envelope in the queue up to and including the one whose id is `marker`."""
    seen: list[dict[str, Any]] = []

    def marker_arrived() -> bool:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in got.get("Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return any(envelope["id"] == marker for envelope in seen)

    until(marker_arrived, what=f"event {marker} in {queue_url}")
    return seen


def test_the_default_stack_reaches_create_complete_with_the_original_names(
    cloudformation: Any, sqs: Any, events: Any
) -> None:
    outputs = create_local_stack(cloudformation)

    assert status_of(cloudformation, "BloxLocal") == "CREATE_COMPLETE"
    assert outputs.queue_name == "blox_queue"
    named = sqs.get_queue_url(QueueName="blox_queue")["QueueUrl"]
    assert arn_of(sqs, named) == arn_of(sqs, outputs.queue_url) == outputs.queue_arn
    dead_letters = sqs.get_queue_url(QueueName="blox_queue_dlq")["QueueUrl"]
    assert arn_of(sqs, dead_letters) == arn_of(sqs, outputs.dlq_url)
    assert events.describe_rule(Name="blox_queueEvents")["Arn"] == outputs.rule_arn


def test_calling_it_again_reuses_the_stack_and_returns_the_same_outputs(
    cloudformation: Any,
) -> None:
    name, queue = unique("Blox"), unique("q_")
    first = create_local_stack(cloudformation, stack_name=name, parameters={"QueueName": queue})
    again = create_local_stack(cloudformation, stack_name=name, parameters={"QueueName": queue})
    assert again == first
    stacks = cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == name] == ["CREATE_COMPLETE"]


def test_reusing_a_stack_with_other_parameters_is_refused_not_silently_accepted(
    cloudformation: Any,
) -> None:
    name = unique("Blox")
    create_local_stack(cloudformation, stack_name=name, parameters={"QueueName": unique("q_")})
    with pytest.raises(StackMismatch, match="QueueName") as caught:
        create_local_stack(cloudformation, stack_name=name, parameters={"QueueName": "other"})
    assert caught.value.stack_name == name


def test_the_outputs_point_at_a_working_queue_with_encryption_and_a_redrive_to_the_dlq(
    stack: StackOutputs, sqs: Any
) -> None:
    body = unique("hello-")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    received = until(
        lambda: sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0).get("Messages"),
        what="the message sent to the stack's queue",
    )
    assert [m["Body"] for m in received] == [body]

    attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])
    attributes = attributes["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == stack.queue_arn
    assert stack.queue_url.endswith(f"/{stack.queue_name}")
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert dlq["SqsManagedSseEnabled"] == "true"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 5,
    }


def test_max_receive_count_is_a_parameter(cloudformation: Any, sqs: Any) -> None:
    outputs = create_local_stack(
        cloudformation,
        stack_name=unique("Blox"),
        parameters={"QueueName": unique("q_"), "MaxReceiveCount": "3"},
    )
    attributes = sqs.get_queue_attributes(QueueUrl=outputs.queue_url, AttributeNames=["All"])
    assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 3


def test_ecs_state_changes_reach_the_queue_through_the_rule_and_other_events_do_not(
    stack: StackOutputs, sqs: Any, events: Any
) -> None:
    def put(source: str, detail_type: str) -> str:
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps({"k": 1})}
        answer = events.put_events(Entries=[entry])
        assert answer["FailedEntryCount"] == 0
        return str(answer["Entries"][0]["EventId"])

    ignored = [
        put("aws.ec2", "ECS Task State Change"),
        put("aws.ecs", "ECS Service Action"),
        put("blox.test", "ECS Container Instance State Change"),
    ]
    task = put("aws.ecs", "ECS Task State Change")
    instance = put("aws.ecs", "ECS Container Instance State Change")

    seen = drain_until(sqs, stack.queue_url, instance)
    assert [e["id"] for e in seen] == [task, instance]
    assert not {e["id"] for e in seen} & set(ignored)
    assert [(e["source"], e["detail-type"]) for e in seen] == [
        ("aws.ecs", "ECS Task State Change"),
        ("aws.ecs", "ECS Container Instance State Change"),
    ]


def test_a_broken_template_is_refused_with_cloudformations_reason(cloudformation: Any) -> None:
    name = unique("Broken")
    broken = template_text().replace("!GetAtt DeadLetterQueue.Arn", "!GetAtt Missing.Arn")
    with pytest.raises(StackRejected, match="Missing") as caught:
        create_local_stack(cloudformation, stack_name=name, template_body=broken)
    assert isinstance(caught.value, Invalid)
    assert name in str(caught.value)
    assert "ValidationError" in str(caught.value)


def test_a_bad_queue_name_parameter_is_refused_with_a_clear_error(cloudformation: Any) -> None:
    name = unique("BadName")
    with pytest.raises(StackRejected) as caught:
        create_local_stack(cloudformation, stack_name=name, parameters={"QueueName": "no spaces!"})
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)
    # moto rejects it in SQS (InvalidParameterValue); AWS by the template's AllowedPattern.
    assert "InvalidParameterValue" in str(caught.value) or "ValidationError" in str(caught.value)


def test_a_stack_that_stays_in_progress_ends_the_bounded_wait_with_a_timeout(
    cloudformation: Any,
) -> None:
    # moto leaves a stack whose resource failed in CREATE_IN_PROGRESS for good: a slow stack.
    name = unique("Stuck")
    stuck = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: a b\n"
    with pytest.raises(StackRejected):
        create_local_stack(cloudformation, stack_name=name, template_body=stuck)
    assert status_of(cloudformation, name) == "CREATE_IN_PROGRESS"

    slept: list[float] = []
    with pytest.raises(StackTimedOut, match=name) as caught:
        create_local_stack(
            cloudformation, stack_name=name, template_body=stuck, wait_s=10, sleep=slept.append
        )
    assert slept == [2.0] * 5  # polls every poll_s (2 s by default) until wait_s is spent
    assert isinstance(caught.value, Temporary)


def test_an_endpoint_that_does_not_answer_is_unavailable_not_a_botocore_trace() -> None:
    nowhere = boto3.session.Session().client(
        "cloudformation",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(CloudFormationUnavailable) as caught:
        create_local_stack(nowhere)
    assert isinstance(caught.value, Unavailable)
    assert isinstance(caught.value, Temporary)
    assert "BloxLocal" in str(caught.value)


def aws_cli(moto_endpoint: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`aws cloudformation …` against moto, from the repository root, with dummy credentials."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    command = [str(BIN / "aws"), "cloudformation", *args, "--endpoint-url", moto_endpoint]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_aws_cli_creates_the_deployed_template_to_create_complete(
    moto_endpoint: str, tmp_path: Path, sqs: Any
) -> None:
    name, queue = unique("BloxCli"), unique("cli_")
    created = aws_cli(
        moto_endpoint,
        tmp_path,
        *("create-stack", "--stack-name", name),
        *("--template-body", "file://deploy/cloudformation/blox-local.yaml"),
        *("--parameters", f"ParameterKey=QueueName,ParameterValue={queue}"),
    )
    assert created.returncode == 0, created.stderr
    assert f"stack/{name}/" in json.loads(created.stdout)["StackId"]

    waited = aws_cli(moto_endpoint, tmp_path, "wait", "stack-create-complete", "--stack-name", name)
    assert waited.returncode == 0, waited.stderr
    described = aws_cli(moto_endpoint, tmp_path, "describe-stacks", "--stack-name", name)
    (described_stack,) = json.loads(described.stdout)["Stacks"]
    assert described_stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described_stack["Outputs"]}
    assert outputs["QueueName"] == queue
    named = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert arn_of(sqs, named) == arn_of(sqs, outputs["QueueUrl"]) == outputs["QueueArn"]


def test_cfn_lint_passes_on_the_deployed_template_from_the_command_line() -> None:
    linted = subprocess.run(
        [str(BIN / "cfn-lint"), "deploy/cloudformation/blox-local.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (linted.returncode, linted.stdout) == (0, ""), linted.stdout + linted.stderr
