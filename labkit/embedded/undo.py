"""The undo journal: what an ``apply`` added, written down before it is added.

``apply`` changes a running lab in many places (pod namespaces and /etc/netns overlays,
daemons, pinned maps and links, the resolver files of every pod). Each step first appends
what would undo it to ``<state_dir>/undo.jsonl`` (write-ahead, flushed to disk), then makes
the change. When the apply fails, :meth:`Journal.rollback` undoes the steps in reverse
order; when it is killed, the next locked command of the lab finds the journal and rolls it
back first (:func:`recover`), so a retry works the first time. A committed apply (the state
file saved with ``applied`` = the journal's transaction number) just drops its journal.

The undo actions are few and generic, never "what kind of file was this":

- ``netns``: end the processes inside a namespace, delete it;
- ``path``: remove a file or directory the step created;
- ``file``: put back a file's earlier content (or remove it if it did not exist);
- ``entries``: remove what appeared in a directory since (pins of new bpf links, ...);
- ``daemons``: stop and unregister the daemons registered since;
- ``maps``: restore pinned maps to a snapshot (ebpf/snapshot.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .. import netns
from ..errors import notice
from ..netns import NetNS
from . import processes
from .ebpf import snapshot
from .names import LabNames


class Journal:
    """The undo list of transaction ``tx`` of a lab (use :func:`begin`)."""

    def __init__(self, names: LabNames, tx: int) -> None:
        self.names, self.tx = names, tx
        self.path = names.journal

    def add(self, kind: str, **fields: Any) -> None:
        """Write down how to undo the step about to be made (before making it)."""
        line = json.dumps({"kind": kind, **fields}, separators=(",", ":"))
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # convenience forms of add() for the common steps
    def created(self, path: Path) -> None:
        self.add("path", path=str(path))

    def rewrites(self, path: Path) -> None:
        try:
            self.add("file", path=str(path), content=path.read_text())
        except FileNotFoundError:
            self.add("file", path=str(path), content=None)

    def rewrites_tree(self, directory: Path, pattern: str = "*") -> None:
        """Every file under ``directory`` may be rewritten, and new ones may appear."""
        self.add("entries", dir=str(directory), before=_entries(directory))
        for f in sorted(directory.rglob(pattern)) if directory.is_dir() else []:
            if f.is_file():
                self.rewrites(f)

    def new_entries(self, directory: Path) -> None:
        self.add("entries", dir=str(directory), before=_entries(directory))

    def daemons(self) -> None:
        self.add("daemons", before=[d.name for d in processes.daemons(self.names)])

    def maps(self, pins: list[Path]) -> None:
        self.add("maps", pins=[str(p) for p in pins], snapshot=snapshot.take(pins))

    def commit(self) -> None:
        _unlink(self.path)

    def rollback(self) -> None:
        rollback(self.names)


def begin(names: LabNames, tx: int) -> Journal:
    """A new journal for transaction ``tx`` (any earlier one must be recovered first)."""
    names.state_dir.mkdir(parents=True, exist_ok=True)
    with open(names.journal, "w") as f:
        f.write(json.dumps({"tx": tx}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return Journal(names, tx)


def _read(names: LabNames) -> tuple[int, list[dict]]:
    tx = -1
    steps: list[dict] = []
    try:
        lines = names.journal.read_text().splitlines()
    except FileNotFoundError:
        return tx, steps
    for i, line in enumerate(lines):
        try:
            d = json.loads(line)
        except ValueError:
            continue  # the last line, cut short by a kill: its step was never made
        if i == 0:
            tx = int(d.get("tx", -1))
        elif isinstance(d, dict):
            steps.append(d)
    return tx, steps


def recover(names: LabNames, committed: int | None) -> bool:
    """Deal with the journal an interrupted command left: dropped if its transaction was
    committed (``committed`` >= its number), else rolled back. True if it rolled back."""
    if not names.journal.exists():
        return False
    tx, _ = _read(names)
    if committed is not None and tx <= committed:
        _unlink(names.journal)
        return False
    rollback(names)
    notice(f"lab {names.lab!r}: undid what an interrupted apply had added")
    return True


def rollback(names: LabNames) -> None:
    """Undo every step of the journal, last first, then remove it."""
    _, steps = _read(names)
    for step in reversed(steps):
        _undo(names, step)
    _unlink(names.journal)


def _undo(names: LabNames, step: dict) -> None:
    kind = step.get("kind")
    if kind == "netns":
        processes.kill_lab_processes(names, [step["name"]])
        netns.delete([NetNS(step["name"])])
    elif kind == "path":
        _remove(Path(step["path"]))
    elif kind == "file":
        p = Path(step["path"])
        if step.get("content") is None:
            _remove(p)
        elif p.parent.is_dir():
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)  # same inode: open shells see it
            with os.fdopen(fd, "w") as f:
                f.truncate(0)
                f.write(step["content"])
    elif kind == "entries":
        d, before = Path(step["dir"]), set(step.get("before") or [])
        if d.is_dir():
            for e in d.iterdir():
                if e.name not in before:
                    _remove(e)
    elif kind == "daemons":
        before = set(step.get("before") or [])
        for dmn in processes.daemons(names):
            if dmn.name not in before:
                processes.stop(names, dmn)
    elif kind == "maps":
        snapshot.restore(step.get("snapshot") or {})


def _entries(d: Path) -> list[str]:
    return sorted(e.name for e in d.iterdir()) if d.is_dir() else []


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        _unlink(p)


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
