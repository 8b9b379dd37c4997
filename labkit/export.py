"""``labkit export``: run the labs and write them as HTML tutorials that read offline.

Each notebook in labs/ is executed in a fresh kernel (IPC transport, widget state saved)
with LABKIT_EXPORT=1, so its panels record what the run showed (labkit.widgets.static);
rendered with labkit's nbconvert template (labkit/templates/labkit: no CDN, no require.js,
no MathJax, previous / next links); and written with an index page that lists each
lesson's time and objectives. plotly.js and the widgets HTML manager are copied once into
_static/ and shared by every page.

Both editions: the English pages in ``DIR/``, the Korean ones (``labs/ko/*.ipynb``, when
built) in ``DIR/ko/`` with their own index and ``labs/ko/glossary.md`` as a page; every page
links to the same lesson in the other language, and the Korean pages load the one
``DIR/_static/``.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .widgets.static import EXPORT_ENV

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
TEMPLATES = Path(__file__).resolve().parent / "templates"
JS_ASSETS = Path(sys.prefix) / "share" / "labkit-js"
# the English and the Korean forms: "**Time:** about 20 minutes", "**소요 시간:** 약 20분"
_TIME = re.compile(r"\*\*(?:Time|소요\s*시간):?\*\*:?\s*(?:about\s+|약\s*)?(\d+)\s*(?:min|분)", re.IGNORECASE)
_OBJECTIVES = re.compile(r"^\s*(?:#+\s*|\*\*)(?:Objectives|학습\s*목표)", re.IGNORECASE)
GLOSSARY = "glossary.md"


@dataclass(frozen=True)
class Edition:
    """One language of the site: where its notebooks are, where its pages go, its words."""

    lang: str
    labs: Path
    prefix: str  # the pages' folder under the output, "" for English
    words: dict[str, str]

    @property
    def static(self) -> str:
        """The shared assets, seen from this edition's pages."""
        return "../_static" if self.prefix else "_static"


WORDS = {
    "en": {
        "all": "All lessons",
        "switch": "한국어",
        "about": "about {n} minutes",
        "title": "labkit: Cilium native routing, step by step",
        "heading": "labkit: how pods talk under Cilium native routing",
        "intro": "Executed labs, readable offline, one step of the study note each{total}. Each page was run on a "
        "live lab when it was made; to run them yourself: <code>make lab</code>.",
        "total": " (about {n} minutes)",
        "glossary": "Glossary",
    },
    "ko": {
        "all": "전체 실습",
        "switch": "English",
        "about": "약 {n}분",
        "title": "labkit: Cilium native routing 단계별 실습",
        "heading": "labkit: Cilium native routing에서 pod는 어떻게 통신할까",
        "intro": "스터디 노트의 단계를 하나씩 따라가는 실습을 실행한 결과로, 오프라인에서도 읽을 수 있습니다{total}. "
        "각 페이지는 만들 때 실제 lab에서 실행했습니다. 직접 실행하려면 <code>make lab LABKIT_LANG=ko</code>를 "
        "실행하세요.",
        "total": " (모두 약 {n}분)",
        "glossary": "용어집",
    },
}
# Hangul first from the font the set-up installs (fonts-noto-cjk), then the usual system ones
KO_FONTS = '"Noto Sans CJK KR", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", sans-serif'


def editions(labs_dir: Path = LABS) -> list[Edition]:
    """English, then each translation whose notebooks are built (labs/<lang>/NN-*.ipynb)."""
    out = [Edition("en", labs_dir, "", WORDS["en"])]
    ko = labs_dir / "ko"
    if any(ko.glob("[0-9][0-9]-*.ipynb")):
        out.append(Edition("ko", ko, "ko/", WORDS["ko"]))
    return out


@dataclass(frozen=True)
class LessonInfo:
    """What the index says of a lesson: from the notebook's first Markdown cells."""

    title: str
    minutes: int | None
    objectives: tuple[str, ...]


def notebooks(labs_dir: Path = LABS) -> list[Path]:
    found = sorted(p for p in labs_dir.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise LabError(f"no numbered notebooks (NN-name.ipynb) in {labs_dir}")
    return found


def run_notebook(path: Path, *, timeout: int = 600):
    """Execute a notebook in a fresh kernel; return the executed notebook node."""
    import nbformat  # heavy (Jupyter's machinery): loaded only to run notebooks
    from jupyter_core.paths import jupyter_runtime_dir
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    # IPC sockets (files only this user reaches), not TCP on localhost: also keeps the
    # kernel from warning about unencrypted TCP, a warning nobody running export can act on
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    # an absolute socket path: the kernel runs in labs/, the client here
    config = Config()
    config.KernelManager.transport = "ipc"
    # a fresh socket name per kernel: the previous kernel may still be shutting down, and a
    # new one bound to its socket files breaks its last messages (a traceback on stderr)
    config.KernelManager.ip = str(runtime / f"labkit-{os.getpid()}-{secrets.token_hex(4)}-ipc")
    client = NotebookClient(
        nb,
        config=config,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as e:
        first = str(e).strip().splitlines()
        raise LabError(f"{path.name}: a cell failed: {first[-1] if first else e}", exit_code=1) from None
    return nb


def lesson_info(nb, fallback: str) -> LessonInfo:
    """Title (the first '# ' heading), minutes (a '**Time:** about N minutes' line) and the
    bullet list under an 'Objectives' line, from the notebook's Markdown."""
    title, minutes, objectives = fallback, None, list[str]()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("# ") and title == fallback:
                title = line[2:].strip()
            m = _TIME.search(line)
            if m and minutes is None:
                minutes = int(m.group(1))
            if _OBJECTIVES.match(line) and not objectives:
                for item in lines[i + 1 :]:
                    if item.strip().startswith(("- ", "* ")):
                        objectives.append(item.strip()[2:].strip())
                    elif objectives or item.strip():
                        break
    return LessonInfo(title, minutes, tuple(objectives))


def _nav(pages: list[tuple[str, LessonInfo]], i: int, *, words: dict[str, str] = WORDS["en"], other: str = "") -> str:
    """Previous / index / next, and ``other`` (the same page in the other language) if any."""

    def link(j: int, arrow: str) -> str:
        if 0 <= j < len(pages):
            name, info = pages[j]
            text = f"← {info.title}" if arrow == "prev" else f"{info.title} →"
            return f'<a class="lk-{arrow}" href="{name}">{html.escape(text)}</a>'
        return '<span class="lk-none"></span>'

    middle = f'<a href="index.html">{words["all"]}</a>' + (_switch(other, words) if other else "")
    return f'<nav class="lk-nav">{link(i - 1, "prev")}<span>{middle}</span>{link(i + 1, "next")}</nav>'


def _switch(href: str, words: dict[str, str]) -> str:
    lang = "en" if words["switch"] == "English" else "ko"
    return f' · <a class="lk-lang" href="{href}" hreflang="{lang}" lang="{lang}">{words["switch"]}</a>'


def render(nb, nav: str = "", *, lang: str = "en", static: str = "_static") -> str:
    from nbconvert import HTMLExporter  # heavy: loaded only to render pages

    exporter = HTMLExporter(template_name="labkit", extra_template_basedirs=[str(TEMPLATES)], language_code=lang)
    resources = {"labkit_nav": nav, "labkit_static": static}
    if lang == "ko":
        resources["labkit_fonts"] = KO_FONTS
    body, _resources = exporter.from_notebook_node(nb, resources=resources)
    # the glossary's Markdown link, as the notebooks write it, to its page
    return body.replace(f'href="{GLOSSARY}"', 'href="glossary.html"')


def glossary_page(path: Path, edition: Edition, nav: str) -> str:
    """``labs/<lang>/glossary.md`` as a page of the site (one Markdown cell, the same look)."""
    import nbformat  # heavy: loaded only to render pages

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(path.read_text())]
    return render(nb, nav, lang=edition.lang, static=edition.static)


def index_page(
    pages: list[tuple[str, LessonInfo]], *, words: dict[str, str] = WORDS["en"], lang: str = "en", extra: str = ""
) -> str:
    """The site's first page: each lesson with its time and objectives; ``extra``: links
    under the list (the other language, the glossary)."""
    items = []
    for name, info in pages:
        when = f" <span class='time'>{words['about'].format(n=info.minutes)}</span>" if info.minutes else ""
        goals = "".join(f"<li>{html.escape(o)}</li>" for o in info.objectives)
        items.append(
            f'<li><a href="{name}">{html.escape(info.title)}</a>{when}'
            + (f"<ul class='goals'>{goals}</ul>" if goals else "")
            + "</li>"
        )
    total = sum(info.minutes or 0 for _name, info in pages)
    fonts = KO_FONTS if lang == "ko" else "sans-serif"
    intro = words["intro"].format(total=words["total"].format(n=total) if total else "")
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{words["title"]}</title>
<style>body{{font-family:{fonts};max-width:50em;margin:3em auto;line-height:1.5}}
.time{{color:#666;font-size:90%;margin-left:.5em}} .goals{{color:#333;font-size:95%;margin-bottom:1em}}</style></head>
<body><h1>{words["heading"]}</h1>
<p>{intro}</p>
<ol>
{chr(10).join(items)}
</ol>{f"<p class='lk-more'>{extra}</p>" if extra else ""}</body></html>
"""


def export(
    out_dir: str | Path = ROOT / "out" / "html",
    *,
    labs_dir: Path = LABS,
    lab: str | None = None,
    backend: str | None = None,
    timeout: int = 600,
    only: list[str] | None = None,
) -> list[Path]:
    """Execute and render every lab, in each edition; return the written pages (each
    edition's lessons, then its glossary and index: English first)."""
    from .plots.render import plotly_js  # heavy (plotly): loaded only to export

    out = Path(out_dir)
    if not (JS_ASSETS / "embed.js").exists():
        raise LabError(
            f"{JS_ASSETS}/embed.js is missing; run make lab (it fetches the widgets HTML manager)", exit_code=1
        )
    paths = [p for p in notebooks(labs_dir) if not only or any(o in p.name for o in only)]
    if not paths:
        raise LabError(f"no notebook matches {only}")
    out.mkdir(parents=True, exist_ok=True)
    # the standalone manager and the fonts it loads; not its source maps or AMD builds
    shutil.copytree(JS_ASSETS, out / "_static", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.map", "*-amd.js"))
    shutil.copyfile(plotly_js(), out / "_static" / "plotly.min.js")
    env_before = {k: os.environ.get(k) for k in ("LABKIT_LAB", "LABKIT_BACKEND", EXPORT_ENV)}
    os.environ[EXPORT_ENV] = "1"
    if lab:
        os.environ["LABKIT_LAB"] = lab
    if backend:
        os.environ["LABKIT_BACKEND"] = backend
    sites = []  # per edition: its pages (file, notebook, info)
    try:
        for edition in editions(labs_dir):
            mine = [p for p in notebooks(edition.labs) if any(p.name == q.name for q in paths)]
            sites.append((edition, [(p.stem + ".html", run_notebook(p, timeout=timeout)) for p in mine]))
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    written = []
    names = {edition.lang: {name for name, _nb in executed} for edition, executed in sites}
    for edition, executed in sites:
        folder = out / edition.prefix
        folder.mkdir(parents=True, exist_ok=True)
        other_lang = next((e for e, _x in sites if e.lang != edition.lang), None)
        up = "../" if edition.prefix else (other_lang.prefix if other_lang else "")
        there = names[other_lang.lang] if other_lang else set()
        pages = [(name, lesson_info(nb, name.removesuffix(".html"))) for name, nb in executed]
        for i, (name, nb) in enumerate(executed):
            page = folder / name
            nav = _nav(pages, i, words=edition.words, other=f"{up}{name}" if name in there else "")
            page.write_text(render(nb, nav, lang=edition.lang, static=edition.static))
            written.append(page)
        extra = []
        glossary = edition.labs / GLOSSARY
        if glossary.exists():
            page = folder / "glossary.html"
            page.write_text(glossary_page(glossary, edition, _nav([], 0, words=edition.words)))
            written.append(page)
            extra.append(f'<a href="glossary.html">{edition.words["glossary"]}</a>')
        if other_lang:
            extra.append(_switch(f"{up}index.html", edition.words).removeprefix(" · "))
        index = folder / "index.html"
        index.write_text(index_page(pages, words=edition.words, lang=edition.lang, extra=" · ".join(extra)))
        written.append(index)
    return written
