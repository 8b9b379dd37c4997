"""labkit export: every lab executed and written as an HTML page that reads offline (root)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .browser import offline_page

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "export", "--out", str(out)], capture_output=True, text=True, timeout=1200
    )
    assert r.returncode == 0, r.stderr
    pages = [line for line in r.stdout.splitlines() if line.endswith(".html")]
    return out, pages


def test_every_lab_has_a_page_and_the_index_links_them(site):
    out, pages = site
    names = sorted(p.name for p in out.glob("[0-9][0-9]-*.html"))
    assert names == [
        "01-install.html",
        "02-same-node.html",
        "03-service.html",
        "04-cross-node.html",
        "05-masquerade-observability.html",
    ]
    index = (out / "index.html").read_text()
    for n in names:
        assert f'href="{n}"' in index


def test_pages_load_nothing_from_the_network(site):
    out, _ = site
    for page in out.glob("*.html"):
        text = page.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(https?:[^"]+)"', text)
        assert remote == [], f"{page.name} loads {remote[:3]}"


def test_pages_draw_their_plots_and_widgets_offline(site):
    out, _ = site
    for page_path in sorted(out.glob("[0-9][0-9]-*.html")):
        text = page_path.read_text()
        n_plots = text.count('class="plotly-graph-div"')
        with offline_page() as (page, seen):
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            if n_plots:
                page.wait_for_function(
                    f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {n_plots}", timeout=30000
                )
            if "application/vnd.jupyter.widget-view+json" in text:
                page.wait_for_selector(".jupyter-widgets", timeout=30000)
            assert seen["errors"] == [], f"{page_path.name}: {seen['errors'][:3]}"
            assert seen["blocked"] == [], f"{page_path.name} tried the network: {seen['blocked'][:3]}"
        assert n_plots >= 1, f"{page_path.name} has no plot"


def test_capture_panel_state_is_saved_in_the_first_page(site):
    out, _ = site
    text = (out / "01-install.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in text
    with offline_page() as (page, seen):
        page.goto((out / "01-install.html").as_uri())
        page.wait_for_selector(".jupyter-widgets button", timeout=30000)
        assert page.locator(".jupyter-widgets button", has_text="Run").count() == 1
        assert seen["errors"] == []
