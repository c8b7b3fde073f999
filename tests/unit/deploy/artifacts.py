"""What the deploy tests share: where the artifacts are, templates read as data (short tags
turned into their long forms), and cfn-lint's data on resource handlers and IAM actions."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import cfnlint  # type: ignore[import-untyped]
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
AWS_TEMPLATE = DEPLOY / "cloudformation" / "blox-aws.yaml"
LOCAL_TEMPLATE = DEPLOY / "cloudformation" / "blox-local.yaml"
PROXY = DEPLOY / "lambda" / "proxy.py"
IAM = DEPLOY / "iam"
CFNLINT_DATA = Path(cfnlint.__file__).parent / "data"


def load_template(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = cfn_yaml.loads(path.read_text())
    return parsed


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@functools.cache
def handler_permissions(kind: str) -> dict[str, list[str]]:
    """What CloudFormation's handlers of resource type `kind` may call, by handler
    (create, read, update, delete, list), from the registry schemas cfn-lint ships."""
    schemas = CFNLINT_DATA / "schemas"
    digests = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    schema = json.loads((schemas / "resources" / f"{digests[kind]}.json").read_text())
    return {
        name: list(handler.get("permissions", []))
        for name, handler in schema.get("handlers", {}).items()
    }


@functools.cache
def iam_actions() -> dict[str, dict[str, Any]]:
    """Every IAM action cfn-lint knows, by service prefix: {"sqs": {"sendmessage": {...}}}."""
    policies = json.loads((CFNLINT_DATA / "AdditionalSpecs" / "Policies.json").read_text())
    return {service: spec.get("Actions", {}) for service, spec in policies.items()}
