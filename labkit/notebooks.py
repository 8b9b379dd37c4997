"""Keeping labs/*.ipynb clean in the repository: no outputs, no execution counts, except
the outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` (what nbval compares, lax mode).

    python -m labkit.notebooks                 # re-run every lab and store the checked outputs
    python -m labkit.notebooks --check         # exit 1 if a notebook is not clean or an edition is stale
    python -m labkit.notebooks --update-po ko  # new or changed English cells into labs/locale/ko/*.po
                                               # (and labkit's own messages into labkit/locale/ko)
    python -m labkit.notebooks --lang ko       # write the Korean edition, labs/ko/*.ipynb

Editions (translations) are built from the English notebooks and their catalogs
(labkit.editions); only the English ones are run and refreshed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import editions, messages
from .errors import LabError
from .export import LABS, notebooks, run_notebook

CHECK = "# NBVAL_CHECK_OUTPUT"
KEEP_NB_METADATA = ("kernelspec", "language_info")


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK)


def clean(nb):
    """Strip what changes from run to run; keep the checked cells' outputs."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NB_METADATA}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cell.id = f"cell-{i:02d}"  # stable ids: diffs show content changes only
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            # nbval takes a cell without an execution count for one never run: number the
            # checked cells by position (stable), and only them.
            cell.execution_count = i
            for out in cell.outputs:
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = i
                    out["metadata"] = {}
        else:
            cell.execution_count = None
            cell.outputs = []
    return nb


def problems(nb) -> list[str]:
    """Why ``nb`` is not clean (empty when it is)."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is not None and not is_checked(cell):
            out.append(f"cell {i}: execution count stored")
        if cell.outputs and not is_checked(cell):
            out.append(f"cell {i}: outputs stored in an unchecked cell")
        if is_checked(cell) and not cell.outputs:
            out.append(f"cell {i}: checked cell without its expected output")
    if "widgets" in nb.metadata:
        out.append("widget state stored")
    return out


def refresh(paths: list[Path]) -> None:
    import nbformat  # heavy: loaded only when notebooks are read or written

    for path in paths:
        nb = clean(run_notebook(path))
        nb.nbformat_minor = 5
        nbformat.write(nb, path)
        print(f"refreshed {path}")


def main(argv: list[str] | None = None) -> int:
    import nbformat  # heavy: loaded only when notebooks are read or written

    ap = argparse.ArgumentParser(prog="python -m labkit.notebooks")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--update-po", metavar="LANG", choices=editions.TRANSLATIONS)
    ap.add_argument("--lang", metavar="LANG", choices=editions.TRANSLATIONS)
    ap.add_argument("paths", nargs="*", type=Path)
    args = ap.parse_args(argv)
    paths = args.paths or notebooks(LABS)
    if args.check:
        bad = {p: problems(nbformat.read(p, as_version=4)) for p in paths}
        for lang in editions.TRANSLATIONS:
            for p in paths:
                bad[editions.edition_path(p, lang)] = editions.problems(p, lang)
        for p, why in bad.items():
            for w in why:
                print(f"{p}: {w}")
        return 1 if any(bad.values()) else 0
    try:
        if args.update_po:
            for p in paths:
                print(f"updated {editions.update(p, args.update_po)}")
            # and the runtime catalog: the lesson-call strings of these notebooks, labkit's own messages
            print(f"updated {messages.update(args.update_po)}")
            return 0
        if args.lang:
            for p in paths:
                print(f"wrote {editions.write(p, args.lang)}")
            return 0
    except LabError as e:
        print(f"python -m labkit.notebooks: {e}", file=sys.stderr)
        return 2
    refresh(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
