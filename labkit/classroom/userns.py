"""Each student's user namespace: the owner of their labs' network namespaces.

It maps uid/gid 0 inside to the student's own uid/gid outside (plus their subordinate ids
from /etc/subuid and /etc/subgid, so tools that drop to another user, like tcpdump, still
work). It is created by a child running *as the student* (so the student is its owner and
may enter it), the maps are written by the broker (root), and it is pinned by a bind
mount under /run/labkit-classroom/userns/<student>, so it outlives every process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..embedded.names import USERNS_ROOT
from ..errors import ExitStatus, LabError

_UNSHARE_USER = (
    "import ctypes,os,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "ok=libc.unshare(0x10000000)==0\n"  # CLONE_NEWUSER
    "sys.stdout.write('ok\\n' if ok else 'error '+os.strerror(ctypes.get_errno())+'\\n');sys.stdout.flush()\n"
    "sys.stdin.read()\n"
)


def path(student: str) -> Path:
    return USERNS_ROOT / student


def subordinate(file: str, name: str) -> tuple[int, int] | None:
    """(first id, count) of ``name`` in /etc/subuid or /etc/subgid, if any."""
    try:
        for line in Path(file).read_text().splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[0] == name:
                return int(parts[1]), int(parts[2])
    except (OSError, ValueError):
        pass
    return None


def id_map(inside_root: int, sub: tuple[int, int] | None) -> str:
    """The uid_map/gid_map text: 0 -> the student, 1.. -> their subordinate ids."""
    lines = [f"0 {inside_root} 1"]
    if sub is not None and sub[1] > 0:
        lines.append(f"1 {sub[0]} {min(sub[1], 65535)}")
    return "\n".join(lines) + "\n"


def ensure(student: str, uid: int, gid: int) -> Path:
    """The student's pinned user namespace, created if missing."""
    pin = path(student)
    if pin.exists() and _is_nsfs(pin):
        return pin
    USERNS_ROOT.mkdir(parents=True, exist_ok=True)
    USERNS_ROOT.chmod(0o755)
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _UNSHARE_USER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        user=uid,
        group=gid,
        extra_groups=[],
        cwd="/",
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        answer = child.stdout.readline().strip()
        if answer != "ok":
            raise LabError(
                f"cannot create a user namespace for {student}: {answer or 'no answer'}; "
                "is kernel.unprivileged_userns_clone (or user.max_user_namespaces) allowing it?",
                exit_code=ExitStatus.FAILURE,
            )
        proc = Path(f"/proc/{child.pid}")
        (proc / "uid_map").write_text(id_map(uid, subordinate("/etc/subuid", student)))
        (proc / "gid_map").write_text(id_map(gid, subordinate("/etc/subgid", student)))
        pin.touch(mode=0o444)
        r = subprocess.run(["mount", "--bind", str(proc / "ns" / "user"), str(pin)], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"cannot pin the user namespace of {student}: {r.stderr.strip()}", exit_code=1)
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    return pin


def remove(student: str) -> None:
    pin = path(student)
    subprocess.run(["umount", "-l", str(pin)], capture_output=True)
    pin.unlink(missing_ok=True)


def _is_nsfs(p: Path) -> bool:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == str(p) and parts[2] == "nsfs":
            return True
    return False
