"""JupyterLab for one edition of the labs: which folder it opens, and its interface language
for that run only.

``make lab LABKIT_LANG=ko`` (``scripts/jupyter-lab``) opens ``labs/ko/`` with JupyterLab's
menus in Korean (the ``jupyterlab-language-pack-ko-KR`` package). The language is a user
setting of JupyterLab's translation extension; rather than write it into the user's own
settings, the run gets its own settings folder (``JUPYTERLAB_SETTINGS_DIR``): a copy of the
user's settings with the locale added, removed when the run ends. The user's settings are
read, never written.

    python -m labkit.labsettings ko RUN_DIR   # prints the notebook folder, then the settings folder
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from .editions import LABS
from .errors import LabError
from .i18n import _check

LOCALES = {"ko": "ko_KR"}  # labkit's language -> JupyterLab's language pack
TRANSLATION = Path("@jupyterlab") / "translation-extension" / "plugin.jupyterlab-settings"


def user_settings_dir() -> Path:
    from jupyterlab.commands import get_user_settings_dir  # type: ignore[import-untyped]  # heavy

    return Path(get_user_settings_dir())


def notebook_dir(lang: str, labs: Path = LABS) -> Path:
    """The folder JupyterLab opens: labs/ for English, labs/<lang>/ for a translation."""
    lang = _check(lang)
    if lang == "en":
        return labs
    folder = labs / lang
    if not any(folder.glob("[0-9][0-9]-*.ipynb")):
        raise LabError(f"the {lang} edition is not built: run python -m labkit.notebooks --lang {lang}")
    return folder


def settings_dir(lang: str, run_dir: Path, user: Path | None = None) -> Path | None:
    """A settings folder for this run whose interface language is ``lang`` (None for English:
    the user's own settings, as they are)."""
    lang = _check(lang)
    if lang == "en":
        return None
    user = user if user is not None else user_settings_dir()
    out = run_dir / "user-settings"
    if user.is_dir():
        shutil.copytree(user, out, dirs_exist_ok=True)
    path = out / TRANSLATION
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        settings = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        settings = {}  # JupyterLab's settings may carry comments; ours need only the locale
    settings["locale"] = LOCALES[lang]
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m labkit.labsettings LANG RUN_DIR", file=sys.stderr)
        return 2
    try:
        folder = notebook_dir(args[0])
        settings = settings_dir(args[0], Path(args[1]))
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 2
    print(folder)
    print(settings or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
