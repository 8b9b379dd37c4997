"""`make lab LABKIT_LANG=ko`: JupyterLab opens the Korean edition with its interface in Korean,
through a settings folder of its own; the user's settings are never written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from labkit import labsettings
from labkit.errors import LabError

ROOT = Path(__file__).resolve().parent.parent


def test_korean_run_gets_its_own_settings_with_the_locale(tmp_path):
    user = tmp_path / "user"
    theme = user / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    theme.parent.mkdir(parents=True)
    theme.write_text('{"theme": "JupyterLab Dark"}')
    before = {p: p.read_text() for p in user.rglob("*") if p.is_file()}
    out = labsettings.settings_dir("ko", tmp_path / "run", user)
    assert out == tmp_path / "run" / "user-settings"
    assert json.loads((out / labsettings.TRANSLATION).read_text()) == {"locale": "ko_KR"}
    assert (out / theme.relative_to(user)).read_text() == '{"theme": "JupyterLab Dark"}'  # the user's own, kept
    assert {p: p.read_text() for p in user.rglob("*") if p.is_file()} == before  # and never written
    assert labsettings.settings_dir("en", tmp_path / "run2", user) is None


def test_the_korean_edition_is_the_folder_opened(tmp_path):
    labs = tmp_path / "labs"
    (labs / "ko").mkdir(parents=True)
    assert labsettings.notebook_dir("en", labs) == labs
    with pytest.raises(LabError, match="python -m labkit.notebooks --lang ko"):
        labsettings.notebook_dir("ko", labs)
    nbformat.write(nbformat.v4.new_notebook(), labs / "ko" / "01-install.ipynb")
    assert labsettings.notebook_dir("ko", labs) == labs / "ko"
    with pytest.raises(LabError, match="LABKIT_LANG=ko"):
        labsettings.notebook_dir("fr", labs)


def test_the_language_pack_is_installed():
    import jupyterlab_language_pack_ko_KR as pack

    assert (Path(pack.__file__).parent / "locale" / "ko_KR").is_dir()


def test_script_says_what_it_opens_and_refuses_an_unknown_language(tmp_path):
    env = dict(os.environ, LABKIT_LANG="fr", JUPYTER_RUNTIME_DIR=str(tmp_path))
    r = subprocess.run([str(ROOT / "scripts" / "jupyter-lab")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "LABKIT_LANG=ko" in r.stderr and r.stderr.count("\n") == 1
