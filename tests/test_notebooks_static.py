"""The labs as files: numbered in the blog's order, clean, thin, and parameterised."""

from __future__ import annotations

import ast
import re
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


def _predictions(nb) -> list[tuple[str, str]]:
    """(name, the line that defines it) for every `my_x = None` prediction cell."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for node in ast.parse(cell.source).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and node.value.value is None
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.startswith("my_")
            ):
                out.append((node.targets[0].id, lines[node.lineno - 1]))
    return out


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_is_a_workshop_lab(path):
    """Objectives and a time, the blog's names and commands, predictions a learner can type,
    a break-it exercise with its check, a terminal box, and a recap checked by labkit."""
    from labkit.export import lesson_info

    nb = nbformat.read(path, as_version=4)
    info = lesson_info(nb, path.stem)
    assert info.minutes and 10 <= info.minutes <= 45, "a time estimate (**Time:** about N minutes)"
    assert len(info.objectives) >= 3, "objectives (**Objectives**: ... with a bullet each)"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any("lesson.blog_names(lab)" in s for s in code), "the table of the blog's names and the lab's"
    assert any("lesson.blog(lab, " in s for s in code), "the blog's commands as runnable cells"
    assert any("lesson.terminal(lab, " in s for s in code), "a try-it-in-a-terminal box"
    tail = [c for c in nb.cells[-3:]]
    assert any(c.cell_type == "code" and "lesson.recap(" in c.source for c in tail), "a recap at the end"
    assert any(s.startswith("## Recap") for s in md)
    breaks = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Break it")]
    assert breaks, "a break-it exercise"
    after = nb.cells[breaks[0] :]
    assert any(c.cell_type == "code" and "lesson.check(" in c.source for c in after), "the break-it has its check"
    preds = _predictions(nb)
    assert len(preds) >= 2
    checks = "\n".join(s for s in code if "lesson.check(" in s)
    for name, line in preds:
        assert "#" in line, f"{name}: say what to type, e.g. `{name} = None   # True or False`"
        assert not re.search(r"lxc[0-9a-f]{6}", line), f"{name}: ask for names a learner can type, not lxc hashes"
        assert re.search(rf"\b{name}\b", checks), f"{name} is never checked"
    for s in code:
        for m in re.finditer(r"after=(\w+)", s):
            assert m.group(1) in {n for n, _ in preds}, f"reveal after {m.group(1)}: not a prediction"


def test_instructors_have_the_solutions():
    text = (Path(__file__).resolve().parent.parent / "instructors" / "solutions.md").read_text()
    for path in LABS:
        nb = nbformat.read(path, as_version=4)
        assert f"## {path.stem}" in text, f"instructors/solutions.md: no section for {path.stem}"
        section = text.split(f"## {path.stem}", 1)[1].split("\n## ", 1)[0]
        for name, _ in _predictions(nb):
            assert f"`{name}`" in section, f"instructors/solutions.md ({path.stem}): no answer for {name}"
