"""The documentation says what the code does: the configuration reference is generated from
the `blox` command, and every `blox` command line the README and the tour show parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from blox.cli import reference
from blox.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("README.md", "docs/tour.md")
_FENCE = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def test_the_configuration_reference_is_the_code_s() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference.render(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m blox.cli.reference > docs/configuration.md`"
    )


def _command_lines(page: str) -> list[str]:
    """The `blox …` lines of the page's sh blocks, continuations joined, comments dropped."""
    lines = []
    for block in _FENCE.findall((ROOT / page).read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for end, word in enumerate(words):  # the command ends at a shell operator
                if word in {"&", "&&", "|", ";"}:
                    words = words[:end]
                    break
            if words[:1] in (["blox"], [".venv/bin/blox"]) or words[:2] == ["./dev.sh", "up"]:
                lines.append(shlex.join(words[1:]))
    return lines


DOCUMENTED = [(page, line) for page in PAGES for line in _command_lines(page)]


def test_the_pages_show_blox_commands() -> None:
    assert len(DOCUMENTED) >= 15  # the tour's and the README's; a broken fence finds none


@pytest.mark.parametrize(("page", "line"), DOCUMENTED, ids=[line for _, line in DOCUMENTED])
def test_a_documented_command_line_parses(page: str, line: str) -> None:
    """Each command exists and takes the options shown, with values of the right type."""
    command: Any = typer.main.get_command(app)
    words = shlex.split(line)
    while hasattr(command, "commands") and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"{page}: `blox {line}` names no command"
    command.make_context("blox", words)  # raises a usage error for an unknown or bad option
