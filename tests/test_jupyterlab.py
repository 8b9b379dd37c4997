"""`make lab`'s JupyterLab: open the first notebook, run it, see the capture panel (root)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .browser import drawn_markers, offline_page, overlapping, text_boxes

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/lab/tree/01-install\.ipynb\?token=([0-9a-f]+)$")


@pytest.fixture
def jupyterlab(tmp_path, request):
    """`make lab`'s JupyterLab (scripts/jupyter-lab): its URL is a line of its own
    (``@pytest.mark.parametrize("jupyterlab", ["ko"], indirect=True)``: LABKIT_LANG=ko)."""
    lang = getattr(request, "param", "")
    env = dict(
        os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), LABKIT_LANG=lang
    )
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "jupyter-lab"), "--LabApp.expose_app_in_browser=True"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"scripts/jupyter-lab ended: {''.join(lines)[-1000:]}")
            lines.append(line)
            m = URL.match(line.strip())
            if m:
                break
        else:
            pytest.fail("no JupyterLab URL within 3 minutes")
        noise = [x for x in lines if x.startswith("[")]
        assert noise == [], f"log lines around the URL: {noise[:3]}"
        # keep reading what the server prints: a full pipe would block it (and its Ctrl-C)
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
        yield f"http://127.0.0.1:{m.group(1)}", m.group(2)
    finally:
        proc.terminate()  # the script stops its JupyterLab (as on Ctrl-C)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_first_notebook_runs_and_shows_the_capture_panel(jupyterlab):
    url, token = jupyterlab
    with offline_page(allow=(url,)) as (page, seen):
        page.goto(f"{url}/lab/tree/01-install.ipynb?token={token}")
        page.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget "
            "&& window.jupyterapp.shell.currentWidget.sessionContext "
            "&& window.jupyterapp.shell.currentWidget.sessionContext.session",
            timeout=120000,
        )
        page.wait_for_function(
            "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'", timeout=120000
        )
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        panel_run = page.locator(".jp-OutputArea .jupyter-widgets button", has_text="Run")
        panel_run.wait_for(timeout=180000)
        assert page.locator(".jp-OutputArea .widget-dropdown").count() >= 2  # lab and source pod pickers
        lab_picker = page.locator(".jp-OutputArea .widget-dropdown select").first.locator("option").all_inner_texts()
        lab = os.environ["LABKIT_LAB"]  # this lesson's lab and its companions only, not every lab on the machine
        assert lab_picker[0] == lab and all(n.startswith(lab + "-") for n in lab_picker[1:])
        select = page.locator(".jp-OutputArea select[multiple]")
        assert int(select.get_attribute("size")) == select.locator("option").count()  # every interface in view
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0, errors.first.inner_text()
        # a learner's click: the panel captures, then shows per-interface tabs and the ladder
        panel_run.click()
        page.wait_for_selector(".lk-tabs .lm-TabBar-tab", timeout=60000)
        titles = page.evaluate(
            "() => Array.from(document.querySelectorAll('.lk-tabs .lm-TabBar-tabLabel'))"
            ".map((l) => [l.textContent, l.scrollWidth <= l.clientWidth + 1])"
        )
        assert len(titles) == 3 and all(full for _, full in titles), titles  # full titles at JupyterLab's width
        page.wait_for_function(
            "document.querySelectorAll('.widget-output .js-plotly-plot .main-svg').length > 0", timeout=60000
        )
        page.evaluate("document.querySelector('.widget-output .js-plotly-plot').id = 'ladder'")
        assert sum(drawn_markers(page, "#ladder").values()) > 5  # the capture's packets, each with a marker
        assert overlapping(text_boxes(page, "#ladder")) == []  # lane names clear of the title and each other


@pytest.mark.parametrize("jupyterlab", ["ko"], indirect=True)
def test_korean_jupyterlab_has_korean_menus_and_the_korean_notebooks(jupyterlab):
    url, token = jupyterlab
    with offline_page(allow=(url,)) as (page, seen):
        page.goto(f"{url}/lab/tree/01-install.ipynb?token={token}")
        page.wait_for_selector("#jp-top-panel .lm-MenuBar-itemLabel", timeout=120000)
        menus = page.locator("#jp-top-panel .lm-MenuBar-itemLabel").all_inner_texts()
        assert "파일" in menus and "File" not in menus, menus  # JupyterLab's own interface, in Korean
        page.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget "
            "&& window.jupyterapp.shell.currentWidget.context",
            timeout=120000,
        )
        path = page.evaluate("window.jupyterapp.shell.currentWidget.context.path")
        assert path == "01-install.ipynb"
        import nbformat

        nb = nbformat.read(ROOT / "labs" / "ko" / "01-install.ipynb", as_version=4)
        assert any('LANG = "ko"' in c.source for c in nb.cells if c.cell_type == "code")  # the Korean edition
