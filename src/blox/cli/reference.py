"""The configuration reference (docs/configuration.md), generated from the `blox` command itself.

`render()` walks every command and sub-command of `blox.cli.main.app` and writes, for each, its
summary and a table of its arguments and options (flags, environment variable, default, help).
`python -m blox.cli.reference > docs/configuration.md` regenerates the file; a test fails when
the committed file and the code disagree, so the reference can never go stale.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

__all__ = ["render"]

HEADER = """# Configuration reference

Every command of `blox`, its options, their environment variables and defaults. Generated from
the code by `python -m blox.cli.reference > docs/configuration.md` (a test checks that it is up
to date). The client commands also read a profile from the config file: see
[the tour](tour.md#profiles).
"""


def render() -> str:
    """The whole reference as Markdown."""
    from blox.cli.main import app  # here: main imports this module's neighbours

    root = typer.main.get_command(app)
    sections = [HEADER]
    for path, command in _walk(root, ("blox",)):
        sections.append(_section(path, command))
    return "\n".join(sections)


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under `command` (itself first), in name order, with its full path.

    Typer ships its own click, so commands and parameters are read by their attributes.
    """
    found = [(path, command)] if command.params or not hasattr(command, "commands") else []
    if not hasattr(command, "commands"):
        return found
    for name in sorted(command.commands):
        sub = command.commands[name]
        if not sub.hidden:
            found += _walk(sub, (*path, name))
    return found


def _section(path: tuple[str, ...], command: Any) -> str:
    summary = (command.help or "").strip().splitlines()[0] if command.help else ""
    lines = [f"## `{' '.join(path)}`", "", summary, ""]
    rows = [_row(param) for param in command.params if not _hidden(param)]
    if rows:
        lines += ["| option | env | default | meaning |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _hidden(param: Any) -> bool:
    return bool(getattr(param, "hidden", False)) or param.name in {"help"}


def _row(param: Any) -> str:
    if param.param_type_name == "argument":
        flags = f"`{(param.metavar or param.name or '').upper()}` (argument)"
    else:
        flags = ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
    env = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
    help_text = getattr(param, "help", None) or ""
    return f"| {flags} | {f'`{env}`' if env else ''} | {_default(param)} | {_cell(help_text)} |"


def _default(param: Any) -> str:
    default = param.default
    if param.required or default in (None, "", (), []):
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"`{default}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(render())
