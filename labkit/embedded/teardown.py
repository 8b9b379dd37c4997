"""Removing a lab: everything it made, found by name, so it works after any crash.

``down`` finishes while commands still run in the lab: the lab's cgroups are killed at once
(``cgroup.kill``), processes in its namespaces are ended, and a cgroup the kernel still
calls busy is retried until it empties (or the one line says which process is stuck).
"""

from __future__ import annotations

import errno
import shutil
import time
from pathlib import Path

from .. import netns
from ..errors import ExitStatus, LabError
from . import bpffs
from .names import ETC_NETNS, LabNames
from .processes import kill_cgroup, kill_lab_processes


def leftovers(names: LabNames) -> list[str]:
    """What of this lab still exists on the machine (empty when fully down)."""
    found = [f"netns {n.name}" for n in netns.existing() if names.owns_netns(n.name)]
    if ETC_NETNS.exists():
        found += [f"{ETC_NETNS}/{d.name}" for d in ETC_NETNS.iterdir() if names.owns_netns(d.name)]
    found += [str(p) for p in (names.cgroup, names.bpffs, names.state_dir) if p.exists()]
    return found


def down(names: LabNames, timeout: float = 10.0) -> None:
    stuck = kill_lab_processes(names)
    netns.delete(n for n in netns.existing() if names.owns_netns(n.name))
    if ETC_NETNS.exists():
        for d in ETC_NETNS.iterdir():
            if names.owns_netns(d.name):
                shutil.rmtree(d, ignore_errors=True)
    if names.cgroup.exists():
        _remove_cgroups(names, time.monotonic() + timeout, stuck)
    shutil.rmtree(names.bpffs, ignore_errors=True)
    shutil.rmtree(names.state_dir, ignore_errors=True)
    # The shared parents go too once the last lab is gone.
    for parent in (names.cgroup.parent, names.state_dir.parent, ETC_NETNS):
        try:
            parent.rmdir()
        except OSError:
            pass
    bpffs.release()


def _remove_cgroups(names: LabNames, deadline: float, stuck: set[int]) -> None:
    """rmdir the lab's cgroups, deepest first; EBUSY (a process not yet gone) is retried."""
    while True:
        busy: Path | None = None
        for cg in sorted((p for p in names.cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            busy = busy or _rmdir(cg)
        busy = busy or _rmdir(names.cgroup)
        if busy is None:
            return
        if time.monotonic() > deadline:
            left = sorted(stuck) or _procs(busy)
            raise LabError(
                f"cannot remove {busy}: processes {', '.join(map(str, left)) or '?'} are still in it; "
                f"end them (kill -9) and run labkit down --lab {names.lab} again",
                exit_code=ExitStatus.FAILURE,
            )
        kill_cgroup(names.cgroup)
        kill_lab_processes(names, grace=0.2)
        time.sleep(0.05)


def _rmdir(p: Path) -> Path | None:
    try:
        p.rmdir()
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return p
        raise LabError(f"cannot remove {p}: {e.strerror}", exit_code=ExitStatus.FAILURE) from None
    return None


def _procs(cg: Path) -> list[int]:
    try:
        return [int(x) for x in (cg / "cgroup.procs").read_text().split()]
    except OSError:
        return []
