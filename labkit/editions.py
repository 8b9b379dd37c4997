"""The lessons in two languages from one source.

The English notebooks in ``labs/`` are the source. A translation lives in a gettext catalog
per notebook, ``labs/locale/<lang>/<notebook>.po``, whose message ids are the English
Markdown cells, whole. The built edition ``labs/<lang>/<notebook>.ipynb`` is the English
notebook with each Markdown cell replaced by its translation and the parameter cell's
``LANG = None`` set to the language; every other code cell is the English one, byte for
byte. Why catalogs: a changed English cell no longer matches its message id, so
:func:`update` marks the old translation fuzzy (stale) and :func:`problems` reports it
until a translator has looked; translators use any PO editor.

    python -m labkit.notebooks --update-po ko   # new or changed English cells into the catalogs
    python -m labkit.notebooks --lang ko        # write labs/ko/*.ipynb from the catalogs
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import LabError

LABS = Path(__file__).resolve().parent.parent / "labs"
TRANSLATIONS = ("ko",)
LANG_LINE = re.compile(r"^LANG = None\b.*$", re.M)


def catalog_path(notebook: Path, lang: str, labs: Path = LABS) -> Path:
    return labs / "locale" / lang / (notebook.stem + ".po")


def edition_path(notebook: Path, lang: str, labs: Path = LABS) -> Path:
    return labs / lang / notebook.name


def _check_lang(lang: str) -> None:
    if lang not in TRANSLATIONS:
        raise LabError(f"no {lang!r} edition: the translations are {', '.join(TRANSLATIONS)}")


def _is_parameters(cell: Any) -> bool:
    return cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])


def markdown_cells(nb: Any) -> list[str]:
    """The English text to translate, in notebook order (each cell once)."""
    seen: dict[str, None] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            seen.setdefault(cell.source, None)
    return list(seen)


def read_catalog(path: Path) -> Any:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    if not path.exists():
        return Catalog()
    with path.open("rb") as f:
        return read_po(f)


def write_catalog(catalog: Any, path: Path) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=0, sort_output=False, include_previous=True)


def update(notebook: Path, lang: str, labs: Path = LABS) -> Path:
    """Bring ``notebook``'s catalog in ``lang`` up to its English cells: new cells empty,
    changed cells fuzzy (the old translation kept to start from), removed cells obsolete."""
    import nbformat

    _check_lang(lang)
    nb = nbformat.read(notebook, as_version=4)
    path = catalog_path(notebook, lang, labs)
    header = f"# The {lang} edition of labs/{notebook.name}: an entry per Markdown cell."
    sync_catalog(path, lang, header, ((text, []) for text in markdown_cells(nb)))
    return path


def sync_catalog(path: Path, lang: str, header: str, entries: Iterable[tuple[str, list[tuple[str, None]]]]) -> None:
    """Merge ``entries`` (English text, where it is) into the catalog at ``path``: new ones
    empty, changed ones fuzzy with the old translation, gone ones obsolete."""
    from babel.messages.catalog import Catalog

    catalog = read_catalog(path)
    # the catalog's own dates are kept: an update that changes no text changes no file
    template = Catalog(locale=lang, project="labkit", fuzzy=False, creation_date=catalog.creation_date)
    for text, locations in entries:
        template.add(text, locations=locations)  # type: ignore[arg-type]  # babel takes None for "no line"
    catalog.locale = lang
    catalog.project = "labkit"
    catalog.header_comment = header
    catalog.update(template, no_fuzzy_matching=False)
    catalog.fuzzy = False
    write_catalog(catalog, path)


def translations(notebook: Path, lang: str, labs: Path = LABS) -> dict[str, str]:
    """English cell -> its current translation (untranslated and fuzzy ones left out)."""
    catalog = read_catalog(catalog_path(notebook, lang, labs))
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


def build(notebook: Path, lang: str, labs: Path = LABS) -> Any:
    """The ``lang`` edition of ``notebook`` (a notebook node); LabError when a Markdown cell
    has no current translation or the parameter cell has no ``LANG = None`` line."""
    import nbformat

    _check_lang(lang)
    nb = nbformat.read(notebook, as_version=4)
    done = translations(notebook, lang, labs)
    missing = [t for t in markdown_cells(nb) if t not in done]
    if missing:
        raise LabError(
            f"{notebook.name}: {len(missing)} Markdown cell(s) without a current {lang} translation "
            f"(first: {missing[0][:60]!r}); run python -m labkit.notebooks --update-po {lang} and translate "
            f"{catalog_path(notebook, lang, labs).relative_to(labs.parent)}"
        )
    out = copy.deepcopy(nb)
    params = [c for c in out.cells if _is_parameters(c)]
    if len(params) != 1 or not LANG_LINE.search(params[0].source):
        raise LabError(f"{notebook.name}: the parameters cell must have a line LANG = None (the edition sets it)")
    params[0].source = LANG_LINE.sub(f'LANG = "{lang}"', params[0].source, count=1)
    for cell in out.cells:
        if cell.cell_type == "markdown" and cell.source in done:
            cell.source = done[cell.source]
    return out


def write(notebook: Path, lang: str, labs: Path = LABS) -> Path:
    import nbformat

    path = edition_path(notebook, lang, labs)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(notebook, lang, labs), path)
    return path


def problems(notebook: Path, lang: str, labs: Path = LABS) -> list[str]:
    """Why ``notebook``'s ``lang`` edition is not true to its source (empty when it is):
    a cell untranslated or stale, code cells that differ, a built edition out of date."""
    import nbformat

    out: list[str] = []
    try:
        want = build(notebook, lang, labs)
    except LabError as e:
        return [str(e)]
    path = edition_path(notebook, lang, labs)
    if not path.exists():
        return [f"{path.relative_to(labs.parent)} is not built: run python -m labkit.notebooks --lang {lang}"]
    have = nbformat.read(path, as_version=4)
    src = nbformat.read(notebook, as_version=4)
    if [c.cell_type for c in have.cells] != [c.cell_type for c in src.cells]:
        out.append(f"{path.name}: its cells are not the English notebook's")
    else:
        for i, (a, b) in enumerate(zip(have.cells, src.cells)):
            if a.cell_type == "code" and not _is_parameters(a) and a.source != b.source:
                out.append(f"{path.name} cell {i}: code differs from the English notebook")
    if nbformat.writes(have) != nbformat.writes(want):
        out.append(f"{path.name} is out of date: run python -m labkit.notebooks --lang {lang}")
    return out
