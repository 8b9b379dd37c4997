"""Headless Chromium (Debian's) driven by Playwright, with the network cut off."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def offline_page(allow: tuple[str, ...] = ("file://",)) -> Iterator[tuple[object, dict]]:
    """A page whose requests outside ``allow`` are aborted and recorded, with its console
    errors and page errors collected in the returned dict."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, list[str]] = {"errors": [], "blocked": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):
                if r.request.url.startswith(allow) or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    seen["blocked"].append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            yield page, seen
        finally:
            browser.close()


def _plotly_js() -> str:
    from pathlib import Path

    import plotly

    return str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")


@contextlib.contextmanager
def figure_page(fig, tmp_path, *, width: int = 860) -> Iterator[tuple[object, dict]]:
    """``fig`` drawn by plotly.js in a page ``width`` px wide (about JupyterLab's output
    area at a 1280 px window), offline; yields the page once the plot is drawn."""
    import plotly.io as pio

    div = pio.to_html(fig, include_plotlyjs=False, full_html=False, default_width=f"{width}px", div_id="fig")
    page_file = tmp_path / "figure.html"
    page_file.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><script src="file://{_plotly_js()}"></script>'
        f'</head><body style="margin:0">{div}</body></html>'
    )
    with offline_page() as (page, seen):
        page.set_viewport_size({"width": width + 40, "height": 900})
        page.goto(page_file.as_uri())
        page.wait_for_function("document.querySelector('#fig .main-svg') !== null", timeout=30000)
        yield page, seen


DRAWN_MARKERS_JS = """
(root) => {
  // markers plotly drew, per trace name: a path.point with a finite transform and a shape
  const out = {};
  document.querySelectorAll(root + ' .scatterlayer .trace').forEach((tr) => {
    const d = tr.__data__ && tr.__data__[0] && tr.__data__[0].trace;
    const name = d ? (d.meta && d.meta.role ? d.meta.role + ':' + d.name : d.name) : '?';
    let n = 0;
    tr.querySelectorAll('path.point').forEach((p) => {
      const t = p.getAttribute('transform') || '';
      const shape = p.getAttribute('d') || '';
      const box = p.getBBox();
      if (!t.includes('NaN') && shape && shape !== 'M0,0Z' && box.width > 0.5 && box.height > 0.5) n += 1;
    });
    out[name] = (out[name] || 0) + n;
  });
  return out;
}
"""

TEXT_BOXES_JS = """
(root) => {
  // every visible text box of the figure: title, axis ticks, annotations, legend
  const sel = ['.gtitle', '.xtick text', '.ytick text', '.annotation-text', '.legendtext', '.node-label',
               '.g-xtitle text', '.g-ytitle text', '.bartext'].map((s) => root + ' ' + s).join(', ');
  return Array.from(document.querySelectorAll(sel))
    .filter((e) => e.textContent.trim() !== '')
    .map((e) => {
      const r = e.getBoundingClientRect();
      return {text: e.textContent, cls: e.getAttribute('class') || e.parentNode.getAttribute('class'),
              x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
    });
}
"""


def drawn_markers(page, root: str = "#fig") -> dict[str, int]:
    """Markers drawn per trace (``role:name`` when the trace has a meta role) under ``root``."""
    return page.evaluate(DRAWN_MARKERS_JS, root)


def text_boxes(page, root: str = "#fig") -> list[dict]:
    return page.evaluate(TEXT_BOXES_JS, root)


def overlapping(boxes: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of text boxes that overlap (by more than ``slack`` px each way)."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > slack
                and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > slack
            ):
                out.append((a["text"], b["text"]))
    return out


GLYPHS_JS = """
([selector, texts]) => {
  // each text drawn on a canvas in the font the page gives ``selector``: its inked pixels
  // as a string (what a glyph looks like), and how many there are
  const font = getComputedStyle(document.querySelector(selector)).fontFamily;
  return texts.map((t) => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 64;
    const g = c.getContext('2d');
    g.fillStyle = '#fff'; g.fillRect(0, 0, 64, 64);
    g.fillStyle = '#000'; g.font = '40px ' + font; g.textBaseline = 'top';
    g.fillText(t, 8, 8);
    const px = g.getImageData(0, 0, 64, 64).data;
    let bits = '', ink = 0;
    for (let i = 0; i < px.length; i += 4) { const on = px[i] < 128; bits += on ? '1' : '0'; ink += on; }
    return {text: t, font, ink, bits};
  });
}
"""
"""Glyphs as the page's font draws them (``page.evaluate(GLYPHS_JS, [selector, texts])``):
two different characters that come out pixel for pixel the same are the missing-glyph box."""
