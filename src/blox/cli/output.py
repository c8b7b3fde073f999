"""How the client commands print what the servers answered: `-o table|json|yaml`.

`-o json` is the servers' own JSON (the SDK's models dumped by wire name, absent fields left
out, as the APIs send them), so a script can compare it with the API: one object for one
entity, `{"items": [...]}` for a list, exactly as `GET /v1/environments` or `GET /v1/tasks`
answers. `-o yaml` is the same data as YAML. `-o table` is a rich table for people (see
`tables.py`); on a terminal it has colours, elsewhere plain text as wide as the table needs.
Callers: every client command (`envs`, `rollout`, `queries`).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console, RenderableType

from blox.cli.config import Output

__all__ = [
    "PLAIN_WIDTH",
    "console",
    "emit",
    "payload",
    "render",
    "render_json",
    "render_table",
    "render_yaml",
]

PLAIN_WIDTH = 200  # columns of a table written to a file or a pipe (ARNs are long)

Json = Any  # what json.loads returns: dict, list, str, int, float, bool or None


def payload(data: BaseModel | Sequence[BaseModel]) -> Json:
    """The JSON the API sends for `data`: a model as an object, a list as `{"items": [...]}`."""
    if isinstance(data, BaseModel):
        return _dump(data)
    return {"items": [_dump(item) for item in data]}


def _dump(model: BaseModel) -> Json:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def render_json(data: Json) -> str:
    """`data` as indented JSON (keys in the API's order), with a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_yaml(data: Json) -> str:
    """`data` as a YAML document (keys in the API's order)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def console(file: TextIO | None = None) -> Console:
    """A console on `file` (stdout): a terminal's width and colours, else plain and wide."""
    out = file or sys.stdout
    if out.isatty():
        return Console(file=out, highlight=False)
    return Console(file=out, width=PLAIN_WIDTH, no_color=True, highlight=False, soft_wrap=False)


def render_table(renderable: RenderableType, *, width: int = PLAIN_WIDTH) -> str:
    """`renderable` as plain text, each line's trailing blanks removed (for files and tests)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False).print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render(data: Json, output: Output, table: Callable[[], RenderableType]) -> str:
    """What `emit` prints, as text: JSON, YAML, or the table `table()` builds."""
    if output == "json":
        return render_json(data)
    if output == "yaml":
        return render_yaml(data)
    return render_table(table())


def emit(
    data: Json,
    output: Output,
    table: Callable[[], RenderableType],
    *,
    file: TextIO | None = None,
) -> None:
    """Print `data` in `output`; on a terminal a table gets its width and colours."""
    out = file or sys.stdout
    if output == "table" and out.isatty():
        console(out).print(table())
        return
    typer.echo(render(data, output, table), nl=False, file=out)
