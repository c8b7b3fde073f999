"""The BloxLocal stack: create it from the packaged template through CloudFormation, or reuse it.

`create_local_stack` is what `blox up` (blox.local.compose, in a thread: it blocks) calls on
moto, and what a user may call on real AWS; `deploy/cloudformation/blox-local.yaml` is the same
template for the AWS CLI. It never deletes or updates a stack: a stack in a failed state is
reported with its cause and left for a human, as CloudFormation's console would.

Assumptions / invariants:
- The stack is looked up by name first, so calling twice creates it once and returns the same
  outputs; a racing creator (AlreadyExistsException) is waited for, not fought.
- The wait is bounded by `wait_s`; only in-progress statuses sleep, `poll_s` each time.
- Which status means what is decided by the pure `next_step`; the cause of a failure by the
  pure `first_failure` over the stack's events (the oldest failed resource is the root cause;
  CloudFormation cancels its siblings after it).
- botocore's exceptions are translated here into `blox.local.errors`, never passed on.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.parsers import ResponseParserError

from blox.local.errors import (
    CloudFormationUnavailable,
    StackDenied,
    StackFailed,
    StackMismatch,
    StackRejected,
    StackTimedOut,
)

__all__ = [
    "DEFAULT_STACK_NAME",
    "Failure",
    "Step",
    "StackOutputs",
    "create_local_stack",
    "first_failure",
    "next_step",
    "outputs_of",
    "template_text",
]

DEFAULT_STACK_NAME = "BloxLocal"
TEMPLATE = "templates/blox-local.yaml"

# Statuses of a stack whose resources exist as its template says (CloudFormation's docs).
_READY = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
# In progress, but already known to have failed, or never going to finish by itself.
_FAILED_IN_PROGRESS = frozenset({"ROLLBACK_IN_PROGRESS", "REVIEW_IN_PROGRESS"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable"}
)


class Step(enum.Enum):
    """What to do about a stack in a given status."""

    CREATE = "create"
    WAIT = "wait"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class StackOutputs:
    """The outputs of a BloxLocal stack: where the CSS reads events, and what feeds it."""

    queue_url: str
    queue_name: str
    queue_arn: str
    dlq_url: str
    rule_arn: str


# StackOutputs field → the template's output key.
_OUTPUT_KEYS = {
    "queue_url": "QueueUrl",
    "queue_name": "QueueName",
    "queue_arn": "QueueArn",
    "dlq_url": "DeadLetterQueueUrl",
    "rule_arn": "RuleArn",
}


def template_text() -> str:
    """The BloxLocal template shipped in the package (the one deploy/cloudformation links to)."""
    return resources.files("blox.local").joinpath(TEMPLATE).read_text(encoding="utf-8")


def next_step(status: str | None) -> Step:
    """Decide from a stack's status (None: no such stack) what `create_local_stack` does next."""
    if status is None or status == "DELETE_COMPLETE":
        return Step.CREATE
    if status in _READY:
        return Step.READY
    if status in _FAILED_IN_PROGRESS:
        return Step.FAILED
    if status.endswith(("_IN_PROGRESS", "_PENDING")):
        return Step.WAIT
    return Step.FAILED


@dataclass(frozen=True)
class Failure:
    """The root cause of a failed stack, as its events tell it."""

    resource: str | None
    resource_type: str | None
    reason: str | None


def first_failure(events: Sequence[Mapping[str, Any]]) -> Failure:
    """The oldest failed resource in `events` (newest first, as DescribeStackEvents returns them).

    Falls back to the stack's own failed event, then to an empty `Failure`.
    """
    stack_level: Failure | None = None
    for event in reversed(events):
        if not str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            continue
        failure = Failure(
            resource=event.get("LogicalResourceId"),
            resource_type=event.get("ResourceType"),
            reason=event.get("ResourceStatusReason"),
        )
        if event.get("ResourceType") != "AWS::CloudFormation::Stack":
            return failure
        stack_level = stack_level or failure
    return stack_level or Failure(None, None, None)


def outputs_of(stack: Mapping[str, Any]) -> StackOutputs:
    """Read a described stack's outputs; StackMismatch when one of ours is missing."""
    name = str(stack.get("StackName", DEFAULT_STACK_NAME))
    values = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or ()}
    missing = [key for key in _OUTPUT_KEYS.values() if not values.get(key)]
    if missing:
        raise StackMismatch(
            f"stack {name} has no output {', '.join(missing)}: it was not created from the "
            "BloxLocal template of this version; delete it or choose another stack name",
            stack_name=name,
        )
    return StackOutputs(**{field: values[key] for field, key in _OUTPUT_KEYS.items()})


def create_local_stack(
    cloudformation_client: Any,
    *,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: Mapping[str, str] | None = None,
    template_body: str | None = None,
    wait_s: float = 300.0,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> StackOutputs:
    """Create the BloxLocal stack (or reuse a complete one of that name) and return its outputs.

    `parameters` override the template's (QueueName, MaxReceiveCount, MessageRetentionPeriod);
    a reused stack must have the values given. `template_body` replaces the packaged template.
    Blocks until the stack is complete, at most about `wait_s`. Raises `LocalStackError`s.
    """
    wanted = dict(parameters or {})
    body = template_text() if template_body is None else template_body
    polls = max(1, math.ceil(wait_s / poll_s))
    waited = 0
    created = False
    with _translated(stack_name):
        # each pass either creates (at most a few times: a stack deleted under us) or waits.
        for _ in range(polls + 3):
            stack = _describe(cloudformation_client, stack_name)
            step = next_step(None if stack is None else str(stack["StackStatus"]))
            if stack is None or step is Step.CREATE:
                created = _create(cloudformation_client, stack_name, body, wanted) or created
            elif step is Step.READY:
                if not created:
                    _check_parameters(stack, wanted)
                return outputs_of(stack)
            elif step is Step.FAILED:
                raise _failed(cloudformation_client, stack)
            elif waited >= polls:
                break
            else:
                waited += 1
                sleep(poll_s)
    raise StackTimedOut(
        f"stack {stack_name} was not complete after {wait_s:g}s; watch it with "
        f"`aws cloudformation describe-stack-events --stack-name {stack_name}` and run again",
        stack_name=stack_name,
    )


def _describe(cloudformation: Any, stack_name: str) -> Mapping[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if _code(exc) == "ValidationError" and "does not exist" in _message(exc):
            return None
        raise
    return stacks[0] if stacks else None


def _create(cloudformation: Any, stack_name: str, body: str, wanted: Mapping[str, str]) -> bool:
    """Start creating the stack; False when someone else did first (then we wait for theirs)."""
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in wanted.items()],
            Tags=[{"Key": "blox:installation", "Value": "local"}],
        )
    except ClientError as exc:
        if _code(exc) == "AlreadyExistsException":
            return False
        raise
    return True


def _check_parameters(stack: Mapping[str, Any], wanted: Mapping[str, str]) -> None:
    """A reused stack must have been created with the parameter values asked for now."""
    actual = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters") or ()}
    differ = {k: v for k, v in wanted.items() if actual.get(k) != v}
    if differ:
        name = str(stack["StackName"])
        shown = ", ".join(f"{k}={actual.get(k)!r} (asked {v!r})" for k, v in differ.items())
        raise StackMismatch(
            f"stack {name} exists with other parameters: {shown}; "
            "delete it or choose another stack name",
            stack_name=name,
        )


def _failed(cloudformation: Any, stack: Mapping[str, Any]) -> StackFailed:
    """The error for a failed stack, naming the resource that failed first and why."""
    name, status = str(stack["StackName"]), str(stack["StackStatus"])
    pages = cloudformation.get_paginator("describe_stack_events").paginate(
        StackName=stack.get("StackId", name)
    )
    failure = first_failure([event for page in pages for event in page["StackEvents"]])
    reason = failure.reason or stack.get("StackStatusReason")
    cause = (
        f"resource {failure.resource} ({failure.resource_type}) failed: {reason}"
        if failure.resource and failure.resource_type != "AWS::CloudFormation::Stack"
        else f"reason: {reason or 'not given'}"
    )
    return StackFailed(
        f"stack {name} is {status}; {cause}. Delete it "
        f"(`aws cloudformation delete-stack --stack-name {name}`) and run again",
        stack_name=name,
        status=status,
        resource=failure.resource,
        reason=reason,
    )


@contextmanager
def _translated(stack_name: str) -> Iterator[None]:
    """botocore's exceptions → blox.local.errors, at this module's one boundary."""
    try:
        yield
    except ClientError as exc:
        code, message = _code(exc), _message(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"CloudFormation refused stack {stack_name}: {code}: {message}"
        if code in _DENIED_CODES or status in (401, 403):
            raise StackDenied(text, stack_name=stack_name) from exc
        if code in _UNAVAILABLE_CODES or status >= 500:
            raise CloudFormationUnavailable(text, stack_name=stack_name) from exc
        raise StackRejected(text, stack_name=stack_name) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StackDenied(
            f"no AWS credentials to create stack {stack_name}: {exc}", stack_name=stack_name
        ) from exc
    except ParamValidationError as exc:
        raise StackRejected(f"stack {stack_name}: {exc}", stack_name=stack_name) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        # ResponseParserError: an answer botocore cannot read, e.g. an HTML 500 page.
        raise CloudFormationUnavailable(
            f"CloudFormation did not answer for stack {stack_name}: {_first_line(exc)}",
            stack_name=stack_name,
        ) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _first_line(exc: Exception) -> str:
    """botocore appends whole response bodies to some messages; one line is enough to act on."""
    return next(iter(str(exc).splitlines()), type(exc).__name__)
