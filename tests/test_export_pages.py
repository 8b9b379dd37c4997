"""The export's pages without running a lab: what the index says of each lesson, and the
links between pages (the whole export runs in tests/test_export.py)."""

from __future__ import annotations

import nbformat

from labkit.export import LessonInfo, _nav, index_page, lesson_info, notebooks, render


def test_every_lab_says_its_time_and_objectives():
    for path in notebooks():
        info = lesson_info(nbformat.read(path, as_version=4), path.stem)
        assert info.title[0].isdigit() and info.minutes and len(info.objectives) >= 3, (path.name, info)


def test_lesson_info_reads_the_first_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 7. A title\n\nSome text.\n\n**Time:** about 15 minutes\n\n"
            "**Objectives**: you can\n- do a\n- do b\n\nMore."
        ),
        nbformat.v4.new_markdown_cell("# Not the title\n**Objectives**\n- not these"),
    ]
    assert lesson_info(nb, "x") == LessonInfo("7. A title", 15, ("do a", "do b"))
    assert lesson_info(nbformat.v4.new_notebook(), "fallback") == LessonInfo("fallback", None, ())


def test_pages_link_previous_next_and_the_index_lists_objectives():
    pages = [
        ("01-a.html", LessonInfo("1. A", 10, ("see <a>",))),
        ("02-b.html", LessonInfo("2. B", 20, ("do b",))),
    ]
    first, second = _nav(pages, 0), _nav(pages, 1)
    assert 'class="lk-next" href="02-b.html"' in first and "lk-prev" not in first
    assert 'class="lk-prev" href="01-a.html"' in second and "lk-next" not in second
    assert 'href="index.html"' in first
    index = index_page(pages)
    assert "see &lt;a&gt;" in index and "about 30 minutes" in index and index.count("<ul class='goals'>") == 2
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. A")]
    html = render(nb, first)
    assert html.count('class="lk-next" href="02-b.html"') == 2  # top and bottom
    assert 'src="_static/plotly.min.js"' in html and "require.js" not in html and "mathjax" not in html.lower()
