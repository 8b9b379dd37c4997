"""Removing a lab: everything it made, found by name, so it works after any crash."""

from __future__ import annotations

import shutil

from .. import netns
from . import bpffs
from .names import ETC_NETNS, LabNames
from .processes import kill_lab_processes


def leftovers(names: LabNames) -> list[str]:
    """What of this lab still exists on the machine (empty when fully down)."""
    found = [f"netns {n.name}" for n in netns.existing() if names.owns_netns(n.name)]
    if ETC_NETNS.exists():
        found += [f"{ETC_NETNS}/{d.name}" for d in ETC_NETNS.iterdir() if names.owns_netns(d.name)]
    found += [str(p) for p in (names.cgroup, names.bpffs, names.state_dir) if p.exists()]
    return found


def down(names: LabNames) -> None:
    kill_lab_processes(names)
    netns.delete(n for n in netns.existing() if names.owns_netns(n.name))
    if ETC_NETNS.exists():
        for d in ETC_NETNS.iterdir():
            if names.owns_netns(d.name):
                shutil.rmtree(d, ignore_errors=True)
    if names.cgroup.exists():
        for cg in sorted(names.cgroup.rglob("*"), key=lambda p: -len(p.parts)):
            if cg.is_dir():
                cg.rmdir()
        names.cgroup.rmdir()
    shutil.rmtree(names.bpffs, ignore_errors=True)
    shutil.rmtree(names.state_dir, ignore_errors=True)
    # The shared parents go too once the last lab is gone.
    for parent in (names.cgroup.parent, names.bpffs.parent, names.state_dir.parent, ETC_NETNS):
        try:
            parent.rmdir()
        except OSError:
            pass
    bpffs.release()
