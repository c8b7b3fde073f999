"""The BloxAws Lambda proxy (deploy/lambda/proxy.py) handling API Gateway REST proxy events and
forwarding them over real sockets on 127.0.0.1: to an echo server that shows what arrived, to a
real `blox scheduler`, to a port nobody listens on, to a server that hangs up and to one that
never answers.

Events have the shape of AWS's samples of the REST API proxy integration (the developer
guide's "Input format of a Lambda function for proxy integration" and SAM's `AwsProxy` event):
`resource`, `path`, `httpMethod`, `headers` / `multiValueHeaders`, `queryStringParameters` /
`multiValueQueryStringParameters`, `pathParameters`, `requestContext` (whose `path` carries the
stage), `body`, `isBase64Encoded`.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from blox.testing.ports import free_port
from tests.e2e.aws import until

pytestmark = pytest.mark.integration

PROXY = Path(__file__).resolve().parents[2] / "deploy" / "lambda" / "proxy.py"
BINARY = bytes(range(256))
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef"


@pytest.fixture(scope="module")
def proxy() -> ModuleType:
    """deploy/lambda/proxy.py, loaded as Lambda loads the inlined copy: a plain module."""
    spec = importlib.util.spec_from_file_location("blox_lambda_proxy", PROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rest_event(
    method: str,
    proxy_path: str,
    *,
    stage: str = "blox",
    base: str | None = None,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, list[str]] | None = None,
    body: bytes | str | None = None,
) -> dict[str, Any]:
    """An `ANY /{proxy+}` event as API Gateway sends it for `<base or /stage>/<proxy_path>`."""
    multi_headers = {
        "Accept": ["application/json"],
        "Host": ["abcdef1234.execute-api.us-east-1.amazonaws.com"],
        "User-Agent": ["blox-cli/0.1"],
        "X-Forwarded-For": ["203.0.113.7, 130.176.98.91"],
        "X-Forwarded-Proto": ["https"],
        "Authorization": ["AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/..."],
        "X-Amz-Security-Token": ["session-token"],
        "Connection": ["keep-alive"],
        **(headers or {}),
    }
    encoded = isinstance(body, bytes)
    prefix = base if base is not None else ""
    return {
        "resource": "/{proxy+}",
        "path": f"{prefix}/{proxy_path}",
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": proxy_path},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "resourceId": "a1b2c3",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"{base if base is not None else '/' + stage}/{proxy_path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userArn": "arn:aws:iam::123456789012:user/a"},
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        },
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": encoded,
    }


class Echo(BaseHTTPRequestHandler):
    """Answers what it received as JSON; a few paths answer otherwise (see `_answer`)."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/slow":
            self.release.wait(30)
            return self._send(200, "text/plain", b"late")
        if self.path == "/binary":
            return self._send(200, "image/png", BINARY)
        if self.path.startswith("/status/"):
            return self._send(int(self.path.rsplit("/", 1)[1]), "text/plain", b"said so\n")
        if self.path.startswith("/redirect"):
            target = self.path.removeprefix("/redirect")
            return self._send(307, "text/plain", b"", [("Location", target)])
        seen = {
            "method": self.command,
            "target": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body": base64.b64encode(body).decode(),
        }
        extra = [("X-Blox", "one"), ("X-Blox", "two"), ("Connection", "keep-alive")]
        return self._send(200, "application/json", json.dumps(seen).encode(), extra)

    def _send(
        self, status: int, kind: str, body: bytes, extra: list[tuple[str, str]] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Echo.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def to_echo(echo: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BLOX_ENDPOINT", echo)
    monkeypatch.setenv("BLOX_TIMEOUT_S", "0.5")
    return echo


def seen_by_upstream(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["statusCode"] == 200, answer
    assert answer["isBase64Encoded"] is False
    seen: dict[str, Any] = json.loads(answer["body"])
    return seen


def test_method_path_and_multi_value_query_reach_the_service_without_the_stage(
    proxy: ModuleType, to_echo: str
) -> None:
    event = rest_event(
        "GET", "v1/environments", query={"cluster": ["a", "b c"], "status": ["running"]}
    )
    seen = seen_by_upstream(proxy.handler(event, None))
    assert seen["method"] == "GET"
    assert seen["target"] == "/v1/environments?cluster=a&cluster=b+c&status=running"


def test_a_stage_named_like_the_api_prefix_is_not_stripped_from_the_service_path(
    proxy: ModuleType, to_echo: str
) -> None:
    event = rest_event("GET", "v1/ping", stage="v1")
    assert event["requestContext"]["path"] == "/v1/v1/ping"
    assert seen_by_upstream(proxy.handler(event, None))["target"] == "/v1/ping"


def test_a_custom_domain_base_path_is_not_forwarded(proxy: ModuleType, to_echo: str) -> None:
    event = rest_event("GET", "v1/ping", base="/blox-api")
    assert event["path"] == "/blox-api/v1/ping"
    assert seen_by_upstream(proxy.handler(event, None))["target"] == "/v1/ping"


def test_an_arn_in_the_path_arrives_whole_and_a_space_is_escaped(
    proxy: ModuleType, to_echo: str
) -> None:
    event = rest_event("GET", f"v1/tasks/my cluster/{TASK_ARN}")
    target = seen_by_upstream(proxy.handler(event, None))["target"]
    assert target == f"/v1/tasks/my%20cluster/{TASK_ARN}"


def test_sams_sample_shape_with_a_leading_slash_in_the_proxy_parameter_gives_one_slash(
    proxy: ModuleType, to_echo: str
) -> None:
    event = rest_event("GET", "v1/ping")
    event["pathParameters"] = {"proxy": "/v1/ping"}
    assert seen_by_upstream(proxy.handler(event, None))["target"] == "/v1/ping"


def test_the_doc_sample_shape_without_path_parameters_uses_the_path_and_every_value(
    proxy: ModuleType, to_echo: str
) -> None:
    event = {
        "version": "1.0",
        "resource": "/my/path",
        "path": "/my/path",
        "httpMethod": "GET",
        "headers": {"header1": "value1", "header2": "value2"},
        "multiValueHeaders": {"header1": ["value1"], "header2": ["value1", "value2"]},
        "queryStringParameters": {"parameter1": "value2", "parameter2": "value"},
        "multiValueQueryStringParameters": {
            "parameter1": ["value1", "value2"],
            "parameter2": ["value"],
        },
        "requestContext": {"path": "/my/path", "stage": "$default", "httpMethod": "GET"},
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
    }
    seen = seen_by_upstream(proxy.handler(event, None))
    assert seen["target"] == "/my/path?parameter1=value1&parameter1=value2&parameter2=value"
    assert ["header2", "value1, value2"] in seen["headers"]


def test_single_value_fields_are_used_when_the_multi_value_ones_are_absent(
    proxy: ModuleType, to_echo: str
) -> None:
    event = rest_event("GET", "v1/tasks")
    event["multiValueHeaders"] = None
    event["multiValueQueryStringParameters"] = None
    event["headers"] = {"X-Request": "1"}
    event["queryStringParameters"] = {"status": "RUNNING"}
    seen = seen_by_upstream(proxy.handler(event, None))
    assert seen["target"] == "/v1/tasks?status=RUNNING"
    assert ["x-request", "1"] in seen["headers"]


def test_host_hop_by_hop_and_sigv4_headers_are_dropped_the_rest_forwarded(
    proxy: ModuleType, to_echo: str
) -> None:
    seen = seen_by_upstream(proxy.handler(rest_event("GET", "v1/ping"), None))
    headers = dict(seen["headers"])
    assert headers["host"] == to_echo.removeprefix("http://")  # the load balancer's, not ours
    assert headers["x-forwarded-for"] == "203.0.113.7, 130.176.98.91"
    assert headers["user-agent"] == "blox-cli/0.1"
    assert "authorization" not in headers
    assert "x-amz-security-token" not in headers
    assert headers.get("connection") != "keep-alive"


def test_a_text_body_is_forwarded_as_utf8(proxy: ModuleType, to_echo: str) -> None:
    text = '{"name": "café", "instanceGroup": {"cluster": "default"}}'
    event = rest_event(
        "POST", "v1/environments", body=text, headers={"Content-Type": ["application/json"]}
    )
    seen = seen_by_upstream(proxy.handler(event, None))
    assert seen["method"] == "POST"
    assert base64.b64decode(seen["body"]) == text.encode("utf-8")
    assert dict(seen["headers"])["content-length"] == str(len(text.encode("utf-8")))


def test_a_body_without_a_content_type_gets_none_invented_on_the_way(
    proxy: ModuleType, to_echo: str
) -> None:
    seen = seen_by_upstream(proxy.handler(rest_event("POST", "v1/environments", body="{}"), None))
    headers = dict(seen["headers"])
    assert "content-type" not in headers
    assert headers["content-length"] == "2"


def test_a_base64_body_is_decoded_before_it_is_forwarded(proxy: ModuleType, to_echo: str) -> None:
    event = rest_event("PUT", "v1/blob", body=BINARY)
    assert event["isBase64Encoded"] is True
    seen = seen_by_upstream(proxy.handler(event, None))
    assert base64.b64decode(seen["body"]) == BINARY


def test_every_response_header_value_comes_back_without_hop_by_hop_ones(
    proxy: ModuleType, to_echo: str
) -> None:
    answer = proxy.handler(rest_event("GET", "v1/ping"), None)
    headers = answer["multiValueHeaders"]
    assert headers["X-Blox"] == ["one", "two"]
    assert headers["Content-Type"] == ["application/json"]
    assert "Connection" not in headers
    assert "Content-Length" not in headers


def test_a_binary_answer_is_returned_base64_encoded(proxy: ModuleType, to_echo: str) -> None:
    answer = proxy.handler(rest_event("GET", "binary"), None)
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == BINARY


@pytest.mark.parametrize("status", [400, 404, 409, 500, 503])
def test_an_error_status_of_the_service_is_passed_on_with_its_body(
    proxy: ModuleType, to_echo: str, status: int
) -> None:
    answer = proxy.handler(rest_event("GET", f"status/{status}"), None)
    assert answer["statusCode"] == status
    assert answer["body"] == "said so\n"
    assert answer["isBase64Encoded"] is False


def test_a_redirect_is_passed_on_with_the_location_under_the_stage(
    proxy: ModuleType, to_echo: str
) -> None:
    answer = proxy.handler(rest_event("GET", "redirect/v1/environments"), None)
    assert answer["statusCode"] == 307
    assert answer["multiValueHeaders"]["Location"] == ["/blox/v1/environments"]


def test_an_absolute_redirect_to_the_load_balancer_is_rewritten_for_the_caller(
    proxy: ModuleType, to_echo: str
) -> None:
    answer = proxy.handler(rest_event("GET", f"redirect{to_echo}/v1/x", base="/api"), None)
    assert answer["statusCode"] == 307
    assert answer["multiValueHeaders"]["Location"] == ["/api/v1/x"]


def test_an_answer_too_large_for_api_gateway_is_a_502_saying_so(
    proxy: ModuleType, to_echo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy, "MAX_BODY_BYTES", 100)
    answer = proxy.handler(rest_event("GET", "binary"), None)
    assert answer["statusCode"] == 502
    assert "larger" in json.loads(answer["body"])["message"]


def error_message(answer: dict[str, Any], status: int) -> str:
    assert answer["statusCode"] == status, answer
    assert answer["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert answer["isBase64Encoded"] is False
    message: str = json.loads(answer["body"])["message"]
    return message


def test_no_answer_within_the_timeout_is_a_504(proxy: ModuleType, to_echo: str) -> None:
    message = error_message(proxy.handler(rest_event("GET", "slow"), None), 504)
    assert "0.5 s" in message


def test_nobody_listening_is_a_502(proxy: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOX_ENDPOINT", f"127.0.0.1:{free_port()}")  # no scheme: http
    message = error_message(proxy.handler(rest_event("GET", "v1/ping"), None), 502)
    assert "unreachable" in message


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server that accepts each connection and closes it without a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            connection, _ = listener.accept()
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    socket.create_connection(listener.getsockname()).close()  # wake accept() so it sees stop
    thread.join()
    listener.close()


def test_a_connection_closed_without_an_answer_is_a_502(
    proxy: ModuleType, hangs_up: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOX_ENDPOINT", hangs_up)
    message = error_message(proxy.handler(rest_event("GET", "v1/ping"), None), 502)
    assert "connection" in message


def test_a_missing_endpoint_is_a_500_not_a_crash(
    proxy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BLOX_ENDPOINT", raising=False)
    assert "BLOX_ENDPOINT" in error_message(proxy.handler(rest_event("GET", "v1/ping")), 500)


def _pings(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/ping", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `blox scheduler` on its embedded store; no CSS or ECS (they are not asked)."""
    folder = tmp_path_factory.mktemp("scheduler")
    port, nobody = free_port(), free_port()
    with (folder / "scheduler.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "blox", "scheduler", "--bind", f"127.0.0.1:{port}"),
                *("--css-endpoint", f"127.0.0.1:{nobody}", "--data-dir", str(folder)),
                *("--ecs-endpoint-url", f"http://127.0.0.1:{nobody}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: process.poll() is None and _pings(url), what="blox scheduler to answer")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_the_real_scheduler_answers_through_the_proxy(
    proxy: ModuleType, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOX_ENDPOINT", scheduler)
    ping = proxy.handler(rest_event("GET", "v1/ping"), None)
    assert ping["statusCode"] == 200
    listed = proxy.handler(rest_event("GET", "v1/environments"), None)
    assert listed["statusCode"] == 200
    assert json.loads(listed["body"]) == {"items": []}


def test_the_real_schedulers_plain_text_errors_and_redirects_come_back_as_they_are(
    proxy: ModuleType, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOX_ENDPOINT", scheduler)
    refused = proxy.handler(rest_event("GET", "v1/environments", query={"x": ["1"]}), None)
    assert refused["statusCode"] == 400
    assert refused["body"] == "At least one of the filters provided is not supported\n"
    assert refused["multiValueHeaders"]["content-type"] == ["text/plain; charset=utf-8"]
    slashed = proxy.handler(rest_event("GET", "v1/environments/"), None)
    assert slashed["statusCode"] == 307
    assert slashed["multiValueHeaders"]["location"] == ["/blox/v1/environments"]
