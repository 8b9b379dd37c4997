"""``labkit export``: run the labs and write them as HTML tutorials that read offline.

Each notebook in labs/ is executed in a fresh kernel (widget state saved), rendered with
labkit's nbconvert template (labkit/templates/labkit: no CDN, no require.js, no MathJax),
and written with an index page. Plotly figures carry plotly.js inline (labkit.lesson's
renderer); the widgets HTML manager is copied next to the pages (_static/).
"""

from __future__ import annotations

import html
import os
import shutil
import sys
from pathlib import Path

from .errors import LabError

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
TEMPLATES = Path(__file__).resolve().parent / "templates"
JS_ASSETS = Path(sys.prefix) / "share" / "labkit-js"


def notebooks(labs_dir: Path = LABS) -> list[Path]:
    found = sorted(p for p in labs_dir.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise LabError(f"no numbered notebooks (NN-name.ipynb) in {labs_dir}")
    return found


def run_notebook(path: Path, *, timeout: int = 600):
    """Execute a notebook in a fresh kernel; return the executed notebook node."""
    import nbformat  # heavy (Jupyter's machinery): loaded only to run notebooks
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
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


def render(nb) -> str:
    from nbconvert import HTMLExporter  # heavy: loaded only to render pages

    exporter = HTMLExporter(template_name="labkit", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    return body


def title_of(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


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
    out = Path(out_dir)
    if not (JS_ASSETS / "embed.js").exists():
        raise LabError(
            f"{JS_ASSETS}/embed.js is missing; run make lab (it fetches the widgets HTML manager)", exit_code=1
        )
    paths = [p for p in notebooks(labs_dir) if not only or any(o in p.name for o in only)]
    if not paths:
        raise LabError(f"no notebook matches {only}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(JS_ASSETS, out / "_static", dirs_exist_ok=True)
    env_before = {k: os.environ.get(k) for k in ("LABKIT_LAB", "LABKIT_BACKEND")}
    if lab:
        os.environ["LABKIT_LAB"] = lab
    if backend:
        os.environ["LABKIT_BACKEND"] = backend
    pages: list[tuple[Path, str]] = []
    try:
        for path in paths:
            nb = run_notebook(path, timeout=timeout)
            page = out / (path.stem + ".html")
            page.write_text(render(nb))
            pages.append((page, title_of(nb, path.stem)))
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    index = out / "index.html"
    items = "\n".join(f'<li><a href="{p.name}">{html.escape(t)}</a></li>' for p, t in pages)
    index.write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>labkit: Cilium native routing, step by step</title>
<style>body{{font-family:sans-serif;max-width:46em;margin:3em auto;line-height:1.5}}</style></head>
<body><h1>labkit: how pods talk under Cilium native routing</h1>
<p>Executed labs, readable offline. Each page is one step of the study note.</p>
<ol>
{items}
</ol></body></html>
""")
    return [p for p, _ in pages] + [index]
