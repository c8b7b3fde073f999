"""Schemathesis fuzz of the CSS API from its own /openapi.json, over real HTTP on 127.0.0.1.

The server (test_css_api's `Served`) holds the fixtures' story, so lists return real records.
Every generated request must get a documented status and content type, a body matching the
schema, no 5xx, no Python stack trace in any body, and, for any error, one of the v0.3 plain
texts. Schemathesis's `positive_data_acceptance` is left out: the schema types filters as plain
strings on purpose (the routes parse them, to answer v0.3's texts), so a schema-valid value
such as `cluster=` is rightly a 400. The run is bounded and derandomized: CI sees the same cases
every time. Streams are not in the schema on purpose (`routes_streams._IN_SCHEMA`);
test_css_streams covers them. What the fuzz found is pinned at the end.
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
from blox.css import errors as css_errors
from blox.css.api import errors as api_errors
from blox.errors import Invalid
from tests.integration.test_css_api import Served

pytestmark = pytest.mark.integration

AnyCase = schemathesis.Case[Any]

MAX_EXAMPLES = 120  # per operation and mode: 720 requests in all, seconds on one core
SEED = 20170601
OPERATIONS = [
    "GET /v1/tasks",
    "GET /v1/tasks/{path}",
    "GET /v1/instances",
    "GET /v1/instances/{path}",
]
TRACE = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+')
TEXT = "text/plain; charset=utf-8"
# Every v0.3 text (and blox-ecs's, in the same module) but the 500's.
ERROR_TEXTS = {
    f"{value}\n"
    for name, value in vars(texts).items()
    if name.isupper() and isinstance(value, str) and value != texts.UNEXPECTED_INTERNAL
}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with Served() as server:
        yield server


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.trust_env = False  # straight to 127.0.0.1, whatever proxy the environment names
        yield opened


@pytest.fixture(scope="module")
def api_schema(served: Served, session: requests.Session) -> schemathesis.BaseSchema:
    """The schema the server publishes, set up to call that server."""
    document = session.get(f"{served.url}/openapi.json", timeout=10).json()
    config = schemathesis.Config.from_dict({"base-url": served.url, "seed": SEED})
    return schemathesis.openapi.from_dict(document, config=config)


def no_stack_trace(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase
) -> None:
    """No body shows a Python traceback, whatever the status."""
    text = response.content.decode("utf-8", "replace")
    assert not TRACE.search(text), f"the body shows a stack trace: {text[:300]!r}"


def v03_error_text(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: AnyCase
) -> None:
    """Every error is one of v0.3's plain-text answers (css-api.md), nothing else."""
    if response.status_code >= 400:
        assert response.headers.get("content-type") == [TEXT], response.headers
        assert response.content.decode() in ERROR_TEXTS, response.content[:300]


def test_the_schema_documents_exactly_the_operations_fuzzed_here(
    api_schema: schemathesis.BaseSchema,
) -> None:
    labels = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself must be valid
        labels.add(result.ok().label)
    assert labels == set(OPERATIONS)


# A path parameter is any string, so no negative value exists for it: only the list routes
# (whose query parameters can be left out, repeated or mistyped) get negative cases.
CASES = [(GenerationMode.POSITIVE, label) for label in OPERATIONS] + [
    (GenerationMode.NEGATIVE, label) for label in OPERATIONS if "{" not in label
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
            allow_redirects=False,  # a redirect is an answer to check, not one to follow
            additional_checks=[no_stack_trace, v03_error_text],
            excluded_checks=[positive_data_acceptance],
        )

    fuzz()


# What the fuzz found, pinned ----------------------------------------------------------------


def test_every_request_error_of_the_css_has_a_text_of_its_own() -> None:
    def is_request_error(cls: object) -> bool:  # raised about the request: a CssError, Invalid
        return isinstance(cls, type) and all(
            issubclass(cls, k) for k in (css_errors.CssError, Invalid)
        )

    request_errors: list[type] = [c for c in vars(css_errors).values() if is_request_error(c)]
    assert css_errors.StatusInvalid in request_errors
    assert [cls.__name__ for cls in request_errors if cls not in api_errors.TEXTS] == []


@pytest.mark.parametrize(
    ("url", "status", "body"),
    [
        # urlsplit drops tabs and newlines: "/v1/tasks/\n" once looked like a trailing slash.
        ("/v1/tasks/%0A", 404, f"{texts.PAGE_NOT_FOUND}\n"),
        ("/v1/instances/fleet-a%09/", 307, ""),
        # A filter error added without its text in api/errors.py was a 500.
        ("/v1/tasks?group=", 400, f"{texts.INVALID_GROUP}\n"),
    ],
)
def test_fuzz_findings_stay_fixed(
    served: Served, session: requests.Session, url: str, status: int, body: str
) -> None:
    response = session.get(served.url + url, allow_redirects=False, timeout=10)
    assert (response.status_code, response.text) == (status, body)
    if status == 307:
        assert response.headers["location"] == "/v1/instances/fleet-a%09"
