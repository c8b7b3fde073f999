"""The planner package's declared surface, and its purity: it imports only the standard
library, `blox.model`, `blox.errors` and itself (no asyncio, no clock, no I/O)."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

import blox.scheduler.plan

PLAN = Path(blox.scheduler.plan.__file__).parent
MODULES = sorted(p for p in PLAN.glob("*.py") if p.name != "__init__.py")
ALLOWED = ("blox.model", "blox.errors", "blox.scheduler.plan")
FORBIDDEN_STDLIB = {"asyncio", "time", "socket", "threading", "subprocess", "os", "random"}


def test_the_plan_package_exports_its_modules() -> None:
    assert sorted(blox.scheduler.plan.__all__) == sorted(p.stem for p in MODULES)
    for name in blox.scheduler.plan.__all__:
        assert hasattr(blox.scheduler.plan, name), name


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_each_module_declares_what_it_exports(path: Path) -> None:
    module = importlib.import_module(f"blox.scheduler.plan.{path.stem}")
    assert module.__all__, path
    for name in module.__all__:
        assert hasattr(module, name), f"{path.stem}.{name}"


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_the_planner_imports_only_the_model_errors_and_the_standard_library(path: Path) -> None:
    for name in imported(path):
        top = name.partition(".")[0]
        if top == "blox":
            assert name.startswith(ALLOWED), f"{path.name} imports {name}"
        else:
            assert top == "__future__" or top in sys.stdlib_module_names, f"{path.name}: {name}"
            assert top not in FORBIDDEN_STDLIB, f"{path.name} imports {name}"
