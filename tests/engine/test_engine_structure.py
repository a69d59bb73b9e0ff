"""The llama backend stays readable: one write tail, the module and its run under a size a
reader takes in (issue 20: under 500 lines, ``_generate`` under 80)."""

from __future__ import annotations

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "desktop_app" / "engine" / "llama_backend.py"


def test_the_llama_backend_and_its_run_stay_short() -> None:
    source = BACKEND.read_text(encoding="utf-8")
    assert len(source.splitlines()) < 500
    generate = next(
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "_generate"
    )
    assert generate.end_lineno is not None
    assert generate.end_lineno - generate.lineno + 1 < 80


def test_the_backend_writes_through_one_tail() -> None:
    source = BACKEND.read_text(encoding="utf-8")
    assert source.count(".write(") == 1  # the reused and the cold prompt end in the same writer
