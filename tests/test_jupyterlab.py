"""`make lab`'s JupyterLab: open the first notebook, run it, see the capture panel (root)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .browser import offline_page

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--allow-root",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True",
            "--notebook-dir",
            str(ROOT / "labs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start")
        yield url, token
    finally:
        proc.terminate()
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
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0, errors.first.inner_text()
