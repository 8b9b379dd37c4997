"""Every message labkit shows a learner, gathered into the runtime catalog
``labkit/locale/<lang>/LC_MESSAGES/labkit.po`` (read by :mod:`labkit.i18n`).

Two sources, both found by reading the code (``ast``), never by running it:

- labkit's own modules: the literal first argument of ``_("...")``, ``N_("...")`` and
  ``claim("...")`` (a lesson's sentences);
- the notebooks' code cells: the literal question and ``hint=`` of ``lesson.check(...)``
  and the ``what=`` of ``lesson.reveal(...)``, which ``lesson.checks`` translates at run time.

    python -m labkit.messages --update-po ko   # new messages into the catalog, changed ones fuzzy
    python -m labkit.messages --check ko       # exit 1 when a message has no current translation

``tests/test_i18n.py`` fails on a message without a Korean entry (or with a fuzzy one), and
on a translation whose ``{placeholders}`` are not the English message's.
"""

from __future__ import annotations

import argparse
import ast
import string
import sys
from collections.abc import Iterator
from pathlib import Path

from . import i18n
from .editions import LABS, read_catalog, sync_catalog
from .errors import LabError

PACKAGE = Path(__file__).resolve().parent
MARKERS = ("_", "N_", "claim")  # functions whose first argument, a literal, is a message
LESSON_CALLS = {"check": ("hint",), "reveal": ("what",)}  # lesson.<call>: which keywords are messages
POSITIONAL = {"check": True, "reveal": False}  # check's question is its first argument


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value else None


def code_messages(package: Path = PACKAGE) -> Iterator[tuple[str, str]]:
    """(message, "path:line") for every marked literal in labkit's modules."""
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS:
                text = _literal(node.args[0]) if node.args else None
                if text:
                    yield text, f"labkit/{path.relative_to(package).as_posix()}:{node.lineno}"


def _lesson_call(node: ast.Call) -> str | None:
    """``check`` / ``reveal`` when ``node`` is ``lesson.check(...)`` / ``lesson.reveal(...)``."""
    f = node.func
    if isinstance(f, ast.Attribute) and f.attr in LESSON_CALLS and isinstance(f.value, ast.Name):
        return f.attr if f.value.id == "lesson" else None
    return None


def notebook_messages(labs: Path = LABS) -> Iterator[tuple[str, str]]:
    """(message, "notebook:cell") for the strings notebooks pass to lesson calls."""
    import nbformat  # heavy: loaded only to read notebooks

    for path in sorted(labs.glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue  # an IPython magic cell: no lesson call to read
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not (call := _lesson_call(node)):
                    continue
                found = [node.args[0]] if POSITIONAL[call] and node.args else []
                found += [k.value for k in node.keywords if k.arg in LESSON_CALLS[call]]
                for arg in found:
                    if text := _literal(arg):
                        yield text, f"labs/{path.name}:cell {i}"


def messages(package: Path = PACKAGE, labs: Path = LABS) -> dict[str, list[str]]:
    """Every message -> where it is used, in first-seen order."""
    out: dict[str, list[str]] = {}
    for text, where in [*code_messages(package), *notebook_messages(labs)]:
        out.setdefault(text, []).append(where)
    return out


def update(lang: str, package: Path = PACKAGE, labs: Path = LABS) -> Path:
    """Bring the ``lang`` catalog up to the code: new messages empty, changed ones fuzzy
    (the old translation kept to start from), removed ones obsolete."""
    if lang not in i18n.LANGUAGES or lang == "en":
        raise LabError(f"no {lang!r} translation: the catalogs are {', '.join(i18n.LANGUAGES[1:])}")
    path = i18n.catalog_path(lang, package / "locale")
    # files only, no line numbers: an edit elsewhere in a module changes nothing in the catalog
    entries = (
        (text, [(f, None) for f in dict.fromkeys(w.rsplit(":", 1)[0] for w in where)])
        for text, where in messages(package, labs).items()
    )
    header = f"# What labkit shows a learner, in {lang}: msgid = the English text in the code."
    sync_catalog(path, lang, header, entries)
    return path


def fields(text: str) -> set[str]:
    """The ``str.format`` fields of ``text`` (what a translation must keep)."""
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def problems(lang: str, package: Path = PACKAGE, labs: Path = LABS) -> list[str]:
    """Messages without a current ``lang`` translation, or whose translation lost or added a
    placeholder (empty when the catalog is complete)."""
    catalog = read_catalog(i18n.catalog_path(lang, package / "locale"))
    entries = {m.id: m for m in catalog if m.id and isinstance(m.id, str)}
    out = []
    for text, where in messages(package, labs).items():
        m = entries.get(text)
        if m is None or not m.string:
            out.append(f"{where[0]}: no {lang} translation of {text!r}")
        elif m.fuzzy:
            out.append(f"{where[0]}: the {lang} translation of {text!r} is fuzzy (stale)")
        elif fields(m.string) != fields(text):
            out.append(f"{where[0]}: the {lang} translation of {text!r} has fields {sorted(fields(m.string))}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.messages", description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--update-po", metavar="LANG", help="gather the messages into LANG's catalog")
    group.add_argument("--check", metavar="LANG", help="exit 1 when a message has no current LANG translation")
    args = ap.parse_args(argv)
    if args.update_po:
        print(f"updated {update(args.update_po).relative_to(PACKAGE.parent)}")
        return 0
    found = problems(args.check)
    for p in found:
        print(p)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
