"""``labkit export``: run the labs and write them as HTML tutorials that read offline.

Each notebook in labs/ is executed in a fresh kernel (IPC transport, widget state saved)
with LABKIT_EXPORT=1, so its panels record what the run showed (labkit.widgets.static);
rendered with labkit's nbconvert template (labkit/templates/labkit: no CDN, no require.js,
no MathJax, previous / next links); and written with an index page that lists each
lesson's time and objectives. plotly.js and the widgets HTML manager are copied once into
_static/ and shared by every page.
"""

from __future__ import annotations

import html
import os
import re
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
_TIME = re.compile(r"\*\*Time:?\*\*:?\s*(?:about\s+)?(\d+)\s*min", re.IGNORECASE)
_OBJECTIVES = re.compile(r"^\s*(?:#+\s*|\*\*)Objectives", re.IGNORECASE)


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
    config.KernelManager.ip = str(runtime / f"labkit-{os.getpid()}-ipc")
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


def _nav(pages: list[tuple[str, LessonInfo]], i: int) -> str:
    def link(j: int, arrow: str) -> str:
        if 0 <= j < len(pages):
            name, info = pages[j]
            text = f"← {info.title}" if arrow == "prev" else f"{info.title} →"
            return f'<a class="lk-{arrow}" href="{name}">{html.escape(text)}</a>'
        return '<span class="lk-none"></span>'

    return f'<nav class="lk-nav">{link(i - 1, "prev")}<a href="index.html">All lessons</a>{link(i + 1, "next")}</nav>'


def render(nb, nav: str = "") -> str:
    from nbconvert import HTMLExporter  # heavy: loaded only to render pages

    exporter = HTMLExporter(template_name="labkit", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb, resources={"labkit_nav": nav})
    return body


def index_page(pages: list[tuple[str, LessonInfo]]) -> str:
    items = []
    for name, info in pages:
        when = f" <span class='time'>about {info.minutes} minutes</span>" if info.minutes else ""
        goals = "".join(f"<li>{html.escape(o)}</li>" for o in info.objectives)
        items.append(
            f'<li><a href="{name}">{html.escape(info.title)}</a>{when}'
            + (f"<ul class='goals'>{goals}</ul>" if goals else "")
            + "</li>"
        )
    total = sum(info.minutes or 0 for _, info in pages)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>labkit: Cilium native routing, step by step</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:3em auto;line-height:1.5}}
.time{{color:#666;font-size:90%;margin-left:.5em}} .goals{{color:#333;font-size:95%;margin-bottom:1em}}</style></head>
<body><h1>labkit: how pods talk under Cilium native routing</h1>
<p>Executed labs, readable offline, one step of the study note each{f" (about {total} minutes)" if total else ""}.
Each page was run on a live lab when it was made; to run them yourself: <code>make lab</code>.</p>
<ol>
{chr(10).join(items)}
</ol></body></html>
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
    """Execute and render every lab; return the written pages (index last)."""
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
    executed = []
    try:
        for path in paths:
            nb = run_notebook(path, timeout=timeout)
            executed.append((path.stem + ".html", nb, lesson_info(nb, path.stem)))
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    pages = [(name, info) for name, _, info in executed]
    written = []
    for i, (name, nb, _) in enumerate(executed):
        page = out / name
        page.write_text(render(nb, _nav(pages, i)))
        written.append(page)
    index = out / "index.html"
    index.write_text(index_page(pages))
    return written + [index]
