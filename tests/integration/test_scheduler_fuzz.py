"""Schemathesis fuzz of the scheduler API from its own /openapi.json, over real HTTP on 127.0.0.1.

As test_css_fuzz: every generated request must get a documented status and content type, a
body matching the schema, no 5xx, no Python stack trace, and for any error a plain-text line
that is one of the scheduler's texts (`blox.contract.texts`, templates matched with any value
in their fields) or a domain model message about a field ("… must …"). The server is
test_scheduler_api's (`Served`: uvicorn, SQLite, the simulator as ECS). The run is bounded
and derandomized. What the fuzz found is pinned at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from blox.contract import texts
from blox.sim.server import BackgroundServer
from tests.integration.test_scheduler_api import Served
from tests.integration.test_scheduler_api import sim as sim  # the simulator fixture

pytestmark = pytest.mark.integration

AnyCase = schemathesis.Case[Any]

MAX_EXAMPLES = 100  # per operation and mode: 2,000 requests in all, seconds on one core
SEED = 20170601
OPERATIONS = [
    "GET /v1/ping",
    "POST /v1/environments",
    "GET /v1/environments",
    "GET /v1/environments/{name}",
    "PATCH /v1/environments/{name}",
    "DELETE /v1/environments/{name}",
    "GET /v1/environments/{name}/revisions",
    "GET /v1/environments/{name}/revisions/{number}",
    "POST /v1/environments/{name}/rollback",
    "POST /v1/environments/{name}/pause",
    "POST /v1/environments/{name}/resume",
    "POST /v1/environments/{name}/deployments",
    "GET /v1/environments/{name}/deployments",
    "GET /v1/environments/{name}/deployments/{deployment_id}",
]
TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+')
TEXT = "text/plain; charset=utf-8"


def _template(text: str) -> str:
    """A regex for one text: literal, but any value where the template has a field."""
    parts = re.split(r"\{[a-z_]+\}", text)
    return ".*".join(re.escape(part) for part in parts)


ERROR_LINE = re.compile(
    "|".join(
        [_template(v) for k, v in vars(texts).items() if k.isupper() and isinstance(v, str)]
        + [r".* must .*"]  # blox.model.daemon's DaemonInvalid: a field out of its rules
    ),
    re.DOTALL,
)


@pytest.fixture(scope="module")
def served(sim: BackgroundServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(sim.url, f"sqlite:{tmp_path_factory.mktemp('fuzz') / 'scheduler.db'}") as server:
        yield server


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.trust_env = False
        yield opened


@pytest.fixture(scope="module")
def api_schema(served: Served, session: requests.Session) -> schemathesis.BaseSchema:
    document = session.get(f"{served.url}/openapi.json", timeout=10).json()
    config = schemathesis.Config.from_dict({"base-url": served.url, "seed": SEED})
    return schemathesis.openapi.from_dict(document, config=config)


def no_stack_trace(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase
) -> None:
    """No body shows a Python traceback, whatever the status."""
    text = response.content.decode("utf-8", "replace")
    assert not TRACE.search(text), f"the body shows a stack trace: {text[:300]!r}"


def a_known_error_text(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase
) -> None:
    """Every error is plain text: one of the scheduler's texts, and a newline."""
    if response.status_code >= 400:
        assert response.headers.get("content-type") == [TEXT], response.headers
        body = response.content.decode()
        assert body.endswith("\n") and ERROR_LINE.fullmatch(body[:-1]), body[:300]


def test_the_schema_documents_exactly_the_operations_fuzzed_here(
    api_schema: schemathesis.BaseSchema,
) -> None:
    labels = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.add(result.ok().label)
    assert labels == set(OPERATIONS)


# Path parameters are any string, so no negative value exists for them: only operations with
# a body or query parameters (which can be left out, repeated or mistyped) get negative cases.
NEGATIVE = [
    "POST /v1/environments",
    "GET /v1/environments",
    "PATCH /v1/environments/{name}",
    "DELETE /v1/environments/{name}",
    "POST /v1/environments/{name}/rollback",
    "POST /v1/environments/{name}/deployments",
]
CASES = [(GenerationMode.POSITIVE, label) for label in OPERATIONS] + [
    (GenerationMode.NEGATIVE, label) for label in NEGATIVE
]


@pytest.mark.parametrize(("mode", "label"), CASES, ids=[f"{m.value} {o}" for m, o in CASES])
def test_no_input_gets_a_5xx_a_stack_trace_or_an_answer_off_the_schema(
    api_schema: schemathesis.BaseSchema,
    session: requests.Session,
    label: str,
    mode: GenerationMode,
) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: AnyCase) -> None:
        case.call_and_validate(
            session=session,
            allow_redirects=False,
            additional_checks=[no_stack_trace, a_known_error_text],
            excluded_checks=[positive_data_acceptance],
        )

    fuzz()


# What the fuzz found, pinned ----------------------------------------------------------------


def test_fuzz_findings_stay_fixed(served: Served, session: requests.Session) -> None:
    # A body that is not UTF-8 reached Starlette's own "400 Bad Request", not one of our texts.
    for method, path in (("POST", "/v1/environments"), ("PATCH", "/v1/environments/x")):
        response = session.request(
            method,
            served.url + path,
            data=b"\xff\xfe{",
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert (response.status_code, response.text) == (
            400,
            texts.INVALID_REQUEST.format(detail="the body is not valid JSON") + "\n",
        )
