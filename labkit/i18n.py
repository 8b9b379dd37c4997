"""The learner's language: English (the source text) or Korean, for everything labkit shows
a learner (check verdicts and hints, widget labels, plot titles, lesson errors).

English strings in the code are the message ids; a gettext catalog per language,
``labkit/locale/<lang>/LC_MESSAGES/labkit.po``, translates them, so an English string
nobody translated yet still shows (in English) instead of failing. The language comes from
:func:`use` (a notebook's parameter cell, through ``lesson.start``), else ``$LABKIT_LANG``,
else English.

The catalog is read as the .po itself (Babel's parser, at first use, once per process):
no compiled .mo to build, cache or let go stale, and the file translators edit is the one
labkit reads. A few hundred short entries parse in milliseconds.

Mark a string with ``_("...")`` where it is shown, ``N_("...")`` where it is defined (a
module constant, a default argument) and translated later with ``_(value)``; placeholders
are ``str.format`` fields, named, so a translation can put them in its own order:
``_("{n} packets").format(n=3)``. ``python -m labkit.i18n --update-po ko`` gathers every
marked string (and the strings notebooks pass to lesson calls) into the catalog.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from .errors import LabError

LANGUAGES = ("en", "ko")
LOCALE = Path(__file__).resolve().parent / "locale"
DOMAIN = "labkit"
_chosen: str | None = None


def _check(lang: str) -> str:
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGES:
        raise LabError(
            f"language {lang!r} is not one labkit has: use one of {', '.join(LANGUAGES)} (e.g. LABKIT_LANG=ko)"
        )
    return code


def check_language(lang: str) -> str:
    """``lang`` as labkit names it ("ko", "en"); a LabError for a language labkit lacks."""
    return _check(lang)


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


def catalog_path(lang: str, locale: Path = LOCALE) -> Path:
    return locale / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> dict[str, str]:
    """English message -> its ``lang`` translation (empty and fuzzy entries left out)."""
    path = catalog_path(lang)
    if lang == "en" or not path.exists():
        return {}
    from babel.messages.pofile import read_po  # read once per process, at first use

    with path.open("rb") as f:
        catalog = read_po(f)
    return {
        m.id: m.string
        for m in catalog
        if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def _(message: str) -> str:
    """``message`` (English) in the current language."""
    lang = current()
    if lang == "en" or not message:
        return message
    return translations(lang).get(message, message)


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; ``_`` translates it when shown."""
    return message
