"""The runtime catalog: every message labkit shows a learner (and every string a notebook
passes to a lesson call) has a current Korean translation, with the same placeholders; and
the learner sees it when the language is Korean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from labkit import i18n, messages
from labkit.errors import LabError


@pytest.fixture
def korean(monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    i18n.use("ko")
    yield
    i18n.use(None)


def test_every_message_has_a_current_korean_translation():
    found = messages.problems("ko")
    assert not found, "\n".join(found[:20]) + "\nrun python -m labkit.messages --update-po ko, then translate"


def test_the_extractor_finds_code_claims_and_notebook_calls():
    found = messages.messages()
    assert "Recap: what this run showed" in found  # _("...") in labkit/lesson/claims.py
    assert "The node's eth0 sees nothing of this call." in found  # claim("...")
    assert "Conntrack entries" in found  # N_("...") as a default argument
    assert "interfaces that saw the SYN" in found  # lesson.check's question in labs/02-same-node.ipynb
    assert any(w.startswith("labs/02-same-node.ipynb") for w in found["The ladder"])  # reveal(what=)
    assert "tcpdump: verbose output suppressed, use -v[v]... for full protocol decode\n" not in found  # tcpdump's own


def test_a_missing_or_fuzzy_or_broken_translation_is_reported(tmp_path: Path):
    pkg = tmp_path / "labkit"
    (pkg / "lesson").mkdir(parents=True)
    (pkg / "lesson" / "x.py").write_text(
        textwrap.dedent(
            """
            def f(n):
                _("{n} packets").format(n=n)
                claim("A sentence of the lesson.", True)
                return _("new message")
            """
        )
    )
    labs = tmp_path / "labs"
    labs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('lesson.check("the question", my_x, 1, hint="the hint")\nprint("not mine")')]
    nbformat.write(nb, labs / "01-x.ipynb")
    assert set(messages.messages(pkg, labs)) == {
        "{n} packets",
        "A sentence of the lesson.",
        "new message",
        "the question",
        "the hint",
    }
    po = messages.update("ko", pkg, labs)
    assert len(messages.problems("ko", pkg, labs)) == 5  # nothing translated yet
    text = po.read_text()
    text = text.replace('msgid "{n} packets"\nmsgstr ""', 'msgid "{n} packets"\nmsgstr "패킷 {count}개"')
    text = text.replace('msgid "new message"\nmsgstr ""', 'msgid "new message"\nmsgstr "새 메시지"')
    po.write_text(text)
    found = messages.problems("ko", pkg, labs)
    assert any("{n} packets" in p and "fields ['count']" in p for p in found)
    assert not any("'new message'" in p for p in found)
    # the English changes: the old translation is kept, marked fuzzy, and reported
    (pkg / "lesson" / "x.py").write_text((pkg / "lesson" / "x.py").read_text().replace("new message", "new messages"))
    messages.update("ko", pkg, labs)
    assert "#, fuzzy" in po.read_text()
    assert any("'new messages'" in p and "fuzzy" in p for p in messages.problems("ko", pkg, labs))


def test_korean_at_run_time(korean):
    from labkit.lesson.claims import claim, recap_html

    assert i18n._("Recap: what this run showed") == "정리: 이번 실행에서 확인한 것"
    html = recap_html([claim("The node's eth0 sees nothing of this call.", True, "0")])
    assert "노드의 eth0에는 이 호출이 전혀 보이지 않습니다." in html and "정리" in html
    assert i18n._("a message nobody translated") == "a message nobody translated"  # English, not an error


def test_english_is_the_source_text(monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    i18n.use("en")
    try:
        assert i18n._("Recap: what this run showed") == "Recap: what this run showed"
    finally:
        i18n.use(None)


def test_labkit_lang_chooses_and_a_bad_one_is_one_line(monkeypatch):
    i18n.use(None)
    monkeypatch.setenv("LABKIT_LANG", "ko_KR.UTF-8")
    assert i18n.current() == "ko"
    monkeypatch.setenv("LABKIT_LANG", "fr")
    with pytest.raises(LabError, match="LABKIT_LANG=ko"):
        i18n.current()


def test_check_speaks_korean_and_sends_the_english_question(korean, monkeypatch):
    from labkit.lesson import checks

    shown, sent = [], []
    monkeypatch.setattr(checks, "display", lambda obj: shown.append(obj.data))
    monkeypatch.setattr(checks.progress, "send", lambda q, v: sent.append((q, v)))
    monkeypatch.delenv("LABKIT_EXPORT", raising=False)
    checks.check(
        "interfaces that saw the SYN", {"client eth0"}, {"client eth0", "client lxc"}, hint="look at the capture again"
    )
    assert (
        "SYN이 보인 인터페이스" in shown[0]
        and "아쉽지만 틀렸습니다" in shown[0]
        and "캡처를 다시 살펴보세요" in shown[0]
    )
    assert sent == [("interfaces that saw the SYN", "wrong")]  # the instructor's page: one key per question
    checks.check("interfaces that saw the SYN", None, {"client eth0"})
    assert "아직 예측이 없어서" in shown[1] and "client eth0" not in shown[1]
    hidden = checks.reveal("answer", after=None, what="The ladder")
    assert "ladder 다이어그램" in hidden.data and "answer" not in hidden.data


def test_plots_and_widgets_in_korean(korean):
    import pandas as pd

    from labkit.plots.maps import ct_plot
    from labkit.widgets.static import static_note

    fig = ct_plot(pd.DataFrame())
    assert fig.layout.title.text == "Conntrack 항목"
    assert "conntrack 항목이 없습니다" in fig.layout.annotations[0].text
    assert "이 페이지를 만들 때 기록한 결과입니다" in static_note("x")


def test_the_catalog_ships_with_the_package():
    import tomllib

    py = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    data = py["tool"]["setuptools"]["package-data"]["labkit"]
    assert "locale/*/LC_MESSAGES/*.po" in data and i18n.catalog_path("ko").exists()


def test_a_companion_lab_keeps_the_notebooks_language(korean, monkeypatch):
    from labkit.lesson import scenarios

    seen = []

    class Caps:
        companions = True

    class Lab:
        name = "x"
        backend = type("B", (), {"name": "embedded", "capabilities": Caps()})()

        def add_companion(self, other):
            pass

    monkeypatch.setattr(scenarios, "start", lambda *a, lang=None, **k: seen.append(lang) or i18n.use(lang))
    scenarios.companion(Lab(), "k", datapath="kernel")
    assert seen == ["ko"] and i18n.current() == "ko"
