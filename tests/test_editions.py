"""The Korean edition is built from the English notebooks and their catalogs: every
Markdown cell translated and current, code cells the English ones, the built notebooks up
to date. The mechanism itself is checked on a small notebook in a temporary labs/."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from babel.messages.pofile import read_po

from labkit import editions
from labkit.errors import LabError
from labkit.export import LABS, notebooks


@pytest.mark.parametrize("lang", editions.TRANSLATIONS)
@pytest.mark.parametrize("notebook", notebooks(LABS), ids=lambda p: p.stem)
def test_every_edition_is_translated_current_and_built(notebook: Path, lang: str):
    assert editions.problems(notebook, lang) == []


def _labs(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("BACKEND = None\nLAB = None\nLANG = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nSome text."),
        params,
        nbformat.v4.new_code_cell("from labkit import lesson\nlab = lesson.start(LAB, BACKEND, lang=LANG)"),
        nbformat.v4.new_markdown_cell("A second cell."),
    ]
    labs = tmp_path / "labs"
    labs.mkdir()
    nbformat.write(nb, labs / "01-x.ipynb")
    return labs


def _translate(po: Path, done: dict[str, str]) -> None:
    with po.open("rb") as f:
        cat = read_po(f)
    for m in cat:
        if m.id in done:
            m.string, m.flags = done[m.id], set()
    editions.write_catalog(cat, po)


def test_a_changed_english_cell_makes_its_translation_stale(tmp_path):
    labs = _labs(tmp_path)
    nb_path = labs / "01-x.ipynb"
    po = editions.update(nb_path, "ko", labs)
    with pytest.raises(LabError, match="2 Markdown cell"):
        editions.build(nb_path, "ko", labs)
    _translate(po, {"# Title\n\nSome text.": "# 제목\n\n본문입니다.", "A second cell.": "두 번째 셀입니다."})
    built = editions.build(nb_path, "ko", labs)
    assert built.cells[0].source == "# 제목\n\n본문입니다."
    assert 'LANG = "ko"' in built.cells[1].source
    assert built.cells[2].source == "from labkit import lesson\nlab = lesson.start(LAB, BACKEND, lang=LANG)"
    editions.write(nb_path, "ko", labs)
    assert editions.problems(nb_path, "ko", labs) == []

    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[3].source = "A second cell, changed."
    nbformat.write(nb, nb_path)
    editions.update(nb_path, "ko", labs)
    with po.open("rb") as f:
        changed = read_po(f).get("A second cell, changed.")
    assert changed is not None and changed.fuzzy and changed.string == "두 번째 셀입니다."
    assert any("without a current ko translation" in p for p in editions.problems(nb_path, "ko", labs))


def test_an_edition_whose_code_differs_or_is_stale_is_reported(tmp_path):
    labs = _labs(tmp_path)
    nb_path = labs / "01-x.ipynb"
    po = editions.update(nb_path, "ko", labs)
    _translate(po, {"# Title\n\nSome text.": "# 제목", "A second cell.": "둘째"})
    out = editions.write(nb_path, "ko", labs)
    ko = nbformat.read(out, as_version=4)
    ko.cells[2].source += "\nprint('only in Korean')"
    nbformat.write(ko, out)
    found = editions.problems(nb_path, "ko", labs)
    assert any("code differs" in p for p in found) and any("out of date" in p for p in found)


def test_a_notebook_without_a_lang_parameter_is_refused(tmp_path):
    labs = _labs(tmp_path)
    nb_path = labs / "01-x.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[1].source = "BACKEND = None"
    nbformat.write(nb, nb_path)
    po = editions.update(nb_path, "ko", labs)
    _translate(po, {"# Title\n\nSome text.": "# 제목", "A second cell.": "둘째"})
    with pytest.raises(LabError, match="LANG = None"):
        editions.build(nb_path, "ko", labs)
