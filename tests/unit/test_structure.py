"""House rules the tools do not check: module size, docstrings, declared surfaces."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import blox.store

SOURCE = Path(__file__).resolve().parents[2] / "src" / "blox"
MODULES = sorted(SOURCE.rglob("*.py"))
MAX_MODULE_LINES = 400


@pytest.mark.parametrize("module", MODULES, ids=[str(m.relative_to(SOURCE)) for m in MODULES])
def test_every_module_is_under_the_size_cap_and_opens_with_a_docstring(module: Path) -> None:
    text = module.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{module} has no module docstring"


def test_no_module_is_a_grab_bag() -> None:
    names = {m.stem for m in MODULES}
    assert not names & {"utils", "helpers", "common", "misc"}


def test_the_store_surface_is_what_it_declares() -> None:
    assert sorted(blox.store.__all__) == sorted(
        [
            "Change",
            "Compare",
            "Delete",
            "Election",
            "Entry",
            "Leadership",
            "Lease",
            "Op",
            "Page",
            "Put",
            "Store",
            "compaction",
            "errors",
            "keys",
            "open_store",
            "url",
            "while_leading",
        ]
    )
    for name in blox.store.__all__:
        assert hasattr(blox.store, name), name
