"""The labs as files: numbered in the blog's order, clean, thin, and parameterised."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from labkit.notebooks import problems

LABS = sorted((Path(__file__).resolve().parent.parent / "labs").glob("[0-9][0-9]-*.ipynb"))


def test_the_blogs_steps_in_order():
    assert [p.stem for p in LABS] == [
        "01-install",
        "02-same-node",
        "03-service",
        "04-cross-node",
        "05-masquerade-observability",
    ]


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    assert problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_is_thin_story_and_calls(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    prose = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(prose) >= len(code) // 2, "more story than that, please"
    for cell in code:
        tree = ast.parse(cell.source)
        logic = [
            type(n).__name__
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.If, ast.Try, ast.With))
        ]
        assert logic == [], f"logic in a notebook cell (move it into labkit): {cell.source[:80]!r}"
        assert len(cell.source.splitlines()) <= 8, f"a long cell: {cell.source[:80]!r}"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_has_parameters_start_and_an_exercise(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "BACKEND = None" in params[0].source and "LAB = None" in params[0].source
    assert "lesson.start(LAB, BACKEND" in code[1].source  # the lab is brought to its state first
    assert any("lesson.check(" in c.source for c in code)  # predict -> run -> check
    assert any("bpf/" in c.source for c in nb.cells if c.cell_type == "markdown") or path.stem == "01-install"
