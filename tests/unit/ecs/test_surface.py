"""The package surface is what it declares, and blox.ecs stays on its side of the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import blox.ecs

ECS = Path(blox.ecs.__file__).parent
FORBIDDEN = ("blox.sim", "blox.store", "blox.css")


def test_every_declared_name_exists() -> None:
    for name in blox.ecs.__all__:
        assert hasattr(blox.ecs, name), name


def test_ecs_imports_no_simulator_store_or_css() -> None:
    for module in ECS.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{module.name} imports {name}"
