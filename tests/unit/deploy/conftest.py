"""Fixtures of the deploy tests: both CloudFormation templates, parsed once per session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.deploy.artifacts import AWS_TEMPLATE, LOCAL_TEMPLATE, load_template


@pytest.fixture(scope="session")
def aws_template() -> dict[str, Any]:
    return load_template(AWS_TEMPLATE)


@pytest.fixture(scope="session")
def local_template() -> dict[str, Any]:
    return load_template(LOCAL_TEMPLATE)
