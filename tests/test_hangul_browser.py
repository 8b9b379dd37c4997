"""The Korean pages draw Hangul in headless Chromium: glyphs, not boxes (the set-up installs
fonts-noto-cjk). A character no font has is drawn as the same box whatever it is, so two
different syllables drawn alike would be that box; the control proves the method sees it."""

from __future__ import annotations

import pytest

from .browser import GLYPHS_JS, offline_page
from .test_export_pages import _two_editions

pytestmark = pytest.mark.slow

SYLLABLES = ["가", "나", "실", "습"]
NO_GLYPH = ["\U000e0ff0", "\U000e0ff1"]  # unassigned code points: the missing-glyph box


def test_korean_page_draws_hangul_not_boxes(tmp_path, monkeypatch):
    out, _written = _two_editions(tmp_path, monkeypatch)
    page_file = out / "ko" / "01-a.html"
    with offline_page() as (page, seen):
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        heading = page.locator("h1").first
        assert heading.inner_text().startswith("1. 가")
        assert page.evaluate("document.documentElement.lang") == "ko"
        drawn = page.evaluate(GLYPHS_JS, ["h1", SYLLABLES + NO_GLYPH])
        hangul, boxes = drawn[: len(SYLLABLES)], drawn[len(SYLLABLES) :]
        assert "Noto Sans CJK KR" in hangul[0]["font"]
        assert boxes[0]["bits"] == boxes[1]["bits"], "the control: missing glyphs all look alike"
        assert all(g["ink"] > 40 for g in hangul), [(g["text"], g["ink"]) for g in hangul]
        shapes = {g["bits"] for g in hangul}
        assert len(shapes) == len(SYLLABLES), "Hangul syllables drawn alike: boxes, no font with Hangul"
        assert boxes[0]["bits"] not in shapes
        page.screenshot(path=str(tmp_path / "ko.png"))
        assert seen["errors"] == [] and seen["blocked"] == []
