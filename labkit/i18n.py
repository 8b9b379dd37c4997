"""The learner's language: English (the source text) or Korean, for everything labkit shows
a learner (check verdicts and hints, widget labels, plot titles, lesson errors).

English strings in the code are the message ids; a catalog per language translates them, so
an English string nobody translated yet still shows (in English) instead of failing.
The language comes from :func:`use` (a notebook's parameter cell, through ``lesson.start``),
else ``$LABKIT_LANG``, else English.
"""

from __future__ import annotations

import os

from .errors import LabError

LANGUAGES = ("en", "ko")
_chosen: str | None = None


def _check(lang: str) -> str:
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGES:
        raise LabError(
            f"language {lang!r} is not one labkit has: use one of {', '.join(LANGUAGES)} (e.g. LABKIT_LANG=ko)"
        )
    return code


def use(lang: str | None = None) -> str:
    """Choose the language (None: ``$LABKIT_LANG``, else English); returns the one chosen."""
    global _chosen
    _chosen = _check(lang) if lang else None
    return current()


def current() -> str:
    """The language labkit speaks now."""
    if _chosen:
        return _chosen
    env = os.environ.get("LABKIT_LANG")
    return _check(env) if env else "en"


def _(message: str) -> str:
    """``message`` (English) in the current language."""
    return message
