"""The BPF filesystem at /sys/fs/bpf, where every lab pins its maps, programs and links.

Mounted by ``up`` when missing (with a mark file saying labkit mounted it); the last
``down`` unmounts it again only if labkit mounted it and no lab pins anything there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import ExitStatus, LabError

BPFFS = "/sys/fs/bpf"
MOUNTED_MARK = "/run/labkit.bpffs-mounted"  # labkit mounted BPFFS: the last `down` unmounts it


def ensure() -> None:
    """Mount the BPF filesystem at /sys/fs/bpf if it is not (pins need it)."""
    if os.path.ismount(BPFFS):
        return
    os.makedirs(BPFFS, exist_ok=True)
    r = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"cannot mount the BPF filesystem at {BPFFS}: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
    Path(MOUNTED_MARK).write_text("labkit mounted the BPF filesystem at /sys/fs/bpf\n")


def release() -> None:
    """Unmount the BPF filesystem if labkit mounted it and no lab pins anything any more."""
    if not os.path.exists(MOUNTED_MARK) or os.path.exists(os.path.join(BPFFS, "labkit")):
        return
    if subprocess.run(["umount", BPFFS], capture_output=True).returncode == 0:
        os.unlink(MOUNTED_MARK)
