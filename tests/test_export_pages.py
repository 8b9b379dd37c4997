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


def test_lesson_info_reads_the_korean_forms():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 2. 같은 노드\n\n**소요 시간:** 약 20분\n\n**학습 목표**: 이 실습을 마치면\n- 하나\n- 둘\n\n본문."
        )
    ]
    assert lesson_info(nb, "x") == LessonInfo("2. 같은 노드", 20, ("하나", "둘"))


def _two_editions(tmp_path, monkeypatch):
    """A labs/ with two English notebooks, the Korean edition of the first only and a Korean
    glossary, exported without running a kernel (the notebooks as they are)."""
    from labkit import export as ex

    labs = tmp_path / "labs"
    (labs / "ko").mkdir(parents=True)
    for name, title, ko in (("01-a", "1. A", "1. 가"), ("02-b", "2. B", None)):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n**Time:** about 10 minutes\n\n**Objectives**:\n- a")]
        nbformat.write(nb, labs / f"{name}.ipynb")
        if ko:
            nb.cells = [
                nbformat.v4.new_markdown_cell(
                    f"# {ko}\n\n**소요 시간:** 약 10분\n\n**학습 목표**:\n- 가나다\n\n"
                    "[용어집](glossary.md)을 참고하세요."
                )
            ]
            nbformat.write(nb, labs / "ko" / f"{name}.ipynb")
    (labs / "ko" / "glossary.md").write_text("# 용어집\n\n| 용어 | 뜻 |\n|---|---|\n| endpoint | 엔드포인트 |\n")
    assets = tmp_path / "js"
    assets.mkdir()
    (assets / "embed.js").write_text("// the widgets HTML manager")
    monkeypatch.setattr(ex, "JS_ASSETS", assets)
    monkeypatch.setattr(ex, "run_notebook", lambda path, timeout=600: nbformat.read(path, as_version=4))
    out = tmp_path / "html"
    return out, ex.export(out, labs_dir=labs)


def test_export_writes_both_editions_with_a_language_switch(tmp_path, monkeypatch):
    out, written = _two_editions(tmp_path, monkeypatch)
    rel = [p.relative_to(out).as_posix() for p in written]
    assert rel == ["01-a.html", "02-b.html", "index.html", "ko/01-a.html", "ko/glossary.html", "ko/index.html"]
    en, ko = (out / "01-a.html").read_text(), (out / "ko" / "01-a.html").read_text()
    assert 'class="lk-lang" href="ko/01-a.html" hreflang="ko"' in en and ">한국어</a>" in en
    assert 'class="lk-lang" href="../01-a.html" hreflang="en"' in ko and ">English</a>" in ko
    assert "lk-lang" not in (out / "02-b.html").read_text()  # no Korean page to switch to
    # one copy of the shared assets, reached from the Korean folder
    assert not (out / "ko" / "_static").exists() and (out / "_static" / "plotly.min.js").exists()
    assert 'src="../_static/plotly.min.js"' in ko and 'src="_static/plotly.min.js"' in en
    assert '<html lang="ko">' in ko and "Noto Sans CJK KR" in ko
    assert 'href="glossary.html"' in ko and 'href="glossary.md"' not in ko
    index = (out / "ko" / "index.html").read_text()
    assert "약 10분" in index and "가나다" in index and "1. 가" in index
    assert '<html lang="ko">' in index and 'href="glossary.html">용어집' in index and 'href="../index.html"' in index
    assert 'href="ko/index.html"' in (out / "index.html").read_text()
    glossary = (out / "ko" / "glossary.html").read_text()
    assert "엔드포인트" in glossary and "<table" in glossary and "../_static/plotly.min.js" in glossary
    for page in written:
        assert page.stat().st_size < 1_000_000


def test_export_without_a_korean_edition_writes_english_only(tmp_path, monkeypatch):
    from labkit import export as ex

    labs = tmp_path / "labs"
    labs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), labs / "01-a.ipynb")
    assert [e.lang for e in ex.editions(labs)] == ["en"]
    (labs / "ko").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), labs / "ko" / "01-a.ipynb")
    assert [e.lang for e in ex.editions(labs)] == ["en", "ko"]
