"""Snapshots of pinned maps, so a failed ``apply`` puts the agent's state back.

Cilium's agent writes endpoints, ipcache and services into its maps as it learns them from
Kubernetes; labkit's ``apply`` does the same (sync.py). When an ``apply`` fails halfway, the
undo journal restores each such map to its snapshot: entries added since are deleted,
entries changed get their old value back. Datapath-owned maps (CT, NAT, events, metrics)
are never snapshotted: they belong to traffic, not to the control plane.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import LabError
from . import bpfsys


def take(pins: list[Path]) -> dict[str, list[list[str]]]:
    """pin path -> [[key hex, value hex], ...] of every map in ``pins`` that exists."""
    out: dict[str, list[list[str]]] = {}
    for pin in pins:
        try:
            fd = bpfsys.obj_get(str(pin))
        except LabError:
            continue  # not pinned (yet): nothing to restore but deleting what gets added
        try:
            info = bpfsys.MapInfo(fd)
            rows = []
            for k in bpfsys.keys(fd, info.key_size):
                v = bpfsys.lookup(fd, k, info.value_size)
                if v is not None:
                    rows.append([k.hex(), v.hex()])
            out[str(pin)] = rows
        finally:
            os.close(fd)
    return out


def restore(snap: dict[str, list[list[str]]]) -> None:
    """Put every map of ``snap`` back as it was (missing pins are skipped)."""
    for pin, rows in snap.items():
        try:
            fd = bpfsys.obj_get(pin)
        except LabError:
            continue
        try:
            info = bpfsys.MapInfo(fd)
            want = {bytes.fromhex(k): bytes.fromhex(v) for k, v in rows}
            for k in bpfsys.keys(fd, info.key_size):
                if k not in want:
                    bpfsys.delete(fd, k)
            for k, v in want.items():
                if bpfsys.lookup(fd, k, info.value_size) != v:
                    bpfsys.update(fd, k, v)
        finally:
            os.close(fd)
