"""The BPF filesystem at /sys/fs/bpf, where every lab pins its maps, programs and links.

Mounted by ``up`` when missing, with ``mode=0700`` (only root may look at or pin objects
there; a bpffs mounted without a mode is world-writable and sticky) and a mark file saying
labkit mounted it. The last ``down`` unmounts it again only if labkit mounted it and no lab
pins anything or exists at all. Both sides hold one machine-wide lock around their check
and change, and ``ensure`` creates the lab's own pin directory under that lock, so an ``up``
of another lab can never find the filesystem unmounted under its pins.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from ..errors import ExitStatus, LabError
from .names import BPFFS_ROOT, STATE_ROOT

BPFFS = "/sys/fs/bpf"
MOUNT_MODE = "0700"
MOUNTED_MARK = "/run/labkit.bpffs-mounted"  # labkit mounted BPFFS: the last `down` unmounts it
LOCK = "/run/lock/labkit-bpffs.lock"  # held around mount/mkdir and check/umount (kept: 0 bytes)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(lab_dir: Path = BPFFS_ROOT) -> None:
    """Mount the BPF filesystem at /sys/fs/bpf if it is not, and create ``lab_dir`` (the
    lab's pin directory) before anyone may unmount it again."""
    with _locked():
        if not os.path.ismount(BPFFS):
            os.makedirs(BPFFS, exist_ok=True)
            r = subprocess.run(
                ["mount", "-t", "bpf", "-o", f"mode={MOUNT_MODE}", "bpf", BPFFS], capture_output=True, text=True
            )
            if r.returncode != 0:
                raise LabError(
                    f"cannot mount the BPF filesystem at {BPFFS}: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE
                )
            Path(MOUNTED_MARK).write_text("labkit mounted the BPF filesystem at /sys/fs/bpf\n")
        BPFFS_ROOT.mkdir(mode=0o700, exist_ok=True)
        os.chmod(BPFFS_ROOT, 0o700)
        lab_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _labs_exist() -> bool:
    return STATE_ROOT.is_dir() and any(STATE_ROOT.iterdir())


def release() -> None:
    """Remove labkit's pin root once empty; unmount the BPF filesystem if labkit mounted it
    and no lab pins anything there or exists at all any more."""
    with _locked():
        try:
            BPFFS_ROOT.rmdir()
        except OSError:
            pass  # another lab still pins there (or it is already gone)
        if not os.path.exists(MOUNTED_MARK) or BPFFS_ROOT.exists() or _labs_exist():
            return
        if subprocess.run(["umount", BPFFS], capture_output=True).returncode == 0:
            os.unlink(MOUNTED_MARK)
