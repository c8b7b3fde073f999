"""The SDK's errors become one CLI line with an exit status; every command takes the options."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from blox.cli import exits
from blox.cli.session import Session, client_command, talking_to
from blox.client import errors as client_errors


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (
            client_errors.HttpNotFound(404, "Environment web does not exist"),
            "HTTP 404 from scheduler: Environment web does not exist",
            exits.FAILED,
        ),
        (
            client_errors.HttpInvalid(400, "Invalid request: constraint 'x' must look like"),
            "HTTP 400 from scheduler: Invalid request: constraint 'x' must look like",
            exits.FAILED,
        ),
        (
            client_errors.HttpUnauthorized(403, "Missing Authentication Token"),
            "HTTP 403 from scheduler: Missing Authentication Token (check --sigv4-region",
            exits.FAILED,
        ),
        (
            client_errors.ConnectFailed("GET /v1/ping: ConnectError: refused"),
            "cannot reach the scheduler at http://127.0.0.1:9 (GET /v1/ping: ConnectError: "
            "refused): start it with `blox up` (or `blox scheduler`), or point "
            "--scheduler-endpoint or BLOX_SCHEDULER_ENDPOINT at a running one",
            exits.UNREACHABLE,
        ),
        (
            client_errors.ResponseInvalid("GET /v1/environments: not a v0.3 EnvironmentsPage"),
            "the scheduler at http://127.0.0.1:9 answered something that is not its API",
            exits.FAILED,
        ),
    ],
    ids=["404", "400", "403", "refused", "not the API"],
)
def test_an_sdk_error_becomes_one_line_naming_the_server(
    error: client_errors.ClientError, line: str, code: int
) -> None:
    with pytest.raises(exits.CliError) as caught, talking_to("scheduler", "http://127.0.0.1:9"):
        raise error
    assert str(caught.value).startswith(line)
    assert "\n" not in str(caught.value)
    assert exits.code_of(caught.value) == code
    assert caught.value.__cause__ is error


def test_exit_statuses_of_errors_raised_outside_a_session() -> None:
    assert exits.code_of(client_errors.ServerUnreachable("x")) == exits.UNREACHABLE
    assert exits.code_of(exits.RolloutFailed("x")) == exits.ROLLOUT_FAILED
    assert exits.code_of(exits.UsageInvalid("x")) == exits.USAGE
    assert exits.code_of(client_errors.HttpNotFound(404, "x")) == exits.FAILED


def test_a_client_command_takes_the_common_options_anywhere_and_resolves_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("BLOX_CSS_ENDPOINT", "css.example:3000")
    for name in ("BLOX_CONFIG", "BLOX_PROFILE", "BLOX_OUTPUT", "BLOX_SCHEDULER_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    seen: list[tuple[Session, str, int]] = []

    def show(session: Session, name: str = typer.Argument(...), limit: int = 3) -> None:
        seen.append((session, name, limit))

    command = client_command(show)
    assert list(inspect.signature(command).parameters) == [
        "name",
        "limit",
        "css_endpoint",
        "scheduler_endpoint",
        "profile",
        "output",
        "sigv4_region",
    ]
    app = typer.Typer()
    app.command()(command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["show", "-o", "yaml", "web", "--limit", "5"])
    assert result.exit_code == 0, result.output
    [(session, name, limit)] = seen
    assert (name, limit, session.output) == ("web", 5, "yaml")
    assert session.settings.css_endpoint == "http://css.example:3000"
    assert session.settings.scheduler_endpoint == "http://127.0.0.1:2000"
