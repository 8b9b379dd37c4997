"""labkit export: every lab executed and written as an HTML page that reads offline (root)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from labkit.export import LABS

from .browser import offline_page

pytestmark = [pytest.mark.root, pytest.mark.slow]
KOREAN = sorted(p.name for p in (LABS / "ko").glob("[0-9][0-9]-*.ipynb"))  # the Korean edition, once built


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "export", "--out", str(out)], capture_output=True, text=True, timeout=1800
    )
    assert r.returncode == 0, r.stderr
    pages = [line for line in r.stdout.splitlines() if line.endswith(".html")]
    return out, pages, r.stderr


def test_export_prints_the_pages_and_no_warnings(site):
    out, pages, stderr = site
    assert stderr.strip() == "", stderr  # nothing a user cannot act on (no kernel TCP warnings, ...)
    english = [p for p in pages if "/ko/" not in p]
    korean = [p for p in pages if "/ko/" in p]
    assert len(english) == 6 and english[-1].endswith("index.html")
    assert len([p for p in korean if re.search(r"/\d\d-[^/]+\.html$", p)]) == len(KOREAN)
    assert not KOREAN or korean[-1].endswith("ko/index.html")


def test_pages_share_one_plotly_and_stay_small(site):
    out, _, _ = site
    assert (out / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert not list((out / "_static").glob("*.map"))  # no source maps shipped
    assert not (out / "ko" / "_static").exists()  # one copy for both languages
    for page in [*out.glob("[0-9][0-9]-*.html"), *out.glob("ko/[0-9][0-9]-*.html")]:
        text = page.read_text()
        assert page.stat().st_size < 1_000_000, f"{page.name}: {page.stat().st_size} bytes"
        assert text.count('src="_static/plotly.min.js"') + text.count('src="../_static/plotly.min.js"') == 1
        assert "plotly.js v" not in text  # no inlined copy (its banner)


def test_pages_link_to_each_other_and_the_index_lists_objectives(site):
    out, _, _ = site
    names = sorted(p.name for p in out.glob("[0-9][0-9]-*.html"))
    for i, name in enumerate(names):
        text = (out / name).read_text()
        assert 'href="index.html"' in text
        if i > 0:
            assert f'class="lk-prev" href="{names[i - 1]}"' in text
        if i + 1 < len(names):
            assert f'class="lk-next" href="{names[i + 1]}"' in text
    index = (out / "index.html").read_text()
    assert index.count("<ul class='goals'>") == len(names) and index.count("minutes</span>") == len(names)


def test_every_lab_has_a_page_and_the_index_links_them(site):
    out, pages, _ = site
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
    out, _, _ = site
    for page in [*out.glob("*.html"), *out.glob("ko/*.html")]:
        text = page.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(https?:[^"]+)"', text)
        assert remote == [], f"{page.name} loads {remote[:3]}"


def test_pages_draw_their_plots_and_widgets_offline(site):
    out, _, _ = site
    for page_path in sorted([*out.glob("[0-9][0-9]-*.html"), *out.glob("ko/[0-9][0-9]-*.html")]):
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


def test_panels_show_what_the_run_recorded(site):
    out, _, _ = site
    text = (out / "01-install.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in text
    with offline_page() as (page, seen):
        page.goto((out / "01-install.html").as_uri())
        page.wait_for_selector(".lk-tabs .lm-TabBar-tab", timeout=30000)  # the recorded capture, per interface
        assert page.locator(".jupyter-widgets button", has_text="Run").is_disabled()
        assert page.get_by_text("need a live lab").count() >= 1
        assert page.locator(".lk-scroll td").count() > 10  # packets of the recording
        assert seen["errors"] == []
    with offline_page() as (page, seen):
        page.goto((out / "03-service.html").as_uri())
        page.wait_for_selector("h4.lk-map", timeout=30000)  # the recorded maps, one after the other
        heads = page.locator("h4.lk-map").all_inner_texts()
        assert [h.split(" (")[0] for h in heads] == ["ct", "nat", "lb", "endpoints", "ipcache", "metrics"]
        assert not heads[0].startswith("ct (0")  # the explorer opened on a node with conntrack entries
        assert seen["errors"] == []


@pytest.mark.skipif(not KOREAN, reason="the Korean edition (labs/ko/*.ipynb) is not built yet")
def test_korean_pages_speak_korean_and_switch_language(site):
    out, _, _ = site
    for name in KOREAN:
        page = name.replace(".ipynb", ".html")
        ko, en = (out / "ko" / page).read_text(), (out / page).read_text()
        assert '<html lang="ko">' in ko and "정리: 이번 실행에서 확인한 것" in ko  # labkit's recap, in Korean
        assert "Recap: what this run showed" not in ko
        assert f'href="../{page}"' in ko and f'href="ko/{page}"' in en
    index = (out / "ko" / "index.html").read_text()
    assert index.count("분</span>") == len(KOREAN) and index.count("<ul class='goals'>") == len(KOREAN)
