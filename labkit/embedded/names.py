"""Names of everything a lab creates on the machine, all derived from the lab's name.

Every kernel object (network namespaces, cgroups, bpffs pins) and file (state, /etc/netns
overlays) carries the lab name, so labs run side by side and ``down`` can find all of a
lab's leftovers by name alone, even when the state file is gone (``up`` killed halfway).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import LabError

LAB_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$")
PREFIX = "lk"  # every network namespace of every lab starts with "lk."
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
STATE_ROOT = Path("/run/labkit")
CGROUP_ROOT = Path("/sys/fs/cgroup/unified/labkit")
BPFFS_ROOT = Path("/sys/fs/bpf/labkit")
# Per-lab lock files live outside the lab's state directory, which `down` removes (and a
# half-built lab's `up` clears) while holding the lock.
LOCK_ROOT = Path("/run/lock/labkit")
# Classroom: a student's labs are named "<student>--<lab>" by the broker, and their network
# namespaces are owned by the student's user namespace, pinned here.
OWNER_SEP = "--"
USERNS_ROOT = Path("/run/labkit-classroom/userns")


def check_lab(lab: str) -> str:
    if not isinstance(lab, str) or not LAB_RE.match(lab):
        raise LabError(f"lab name {lab!r} is not valid: use 1-20 characters a-z, 0-9 and '-', e.g. --lab student1")
    return lab


def owned_lab(owner: str, lab: str) -> str:
    """The machine-wide name of student ``owner``'s lab ``lab``."""
    check_lab(lab)
    full = f"{owner}{OWNER_SEP}{lab}"
    if not LAB_RE.match(full):
        room = 20 - len(owner) - len(OWNER_SEP)
        raise LabError(f"lab name {lab!r} is too long for a classroom lab: use at most {room} characters")
    return full


def lab_owner(lab: str) -> str | None:
    """The student who owns ``lab`` (None for a lab of the machine's own user)."""
    owner, sep, _ = lab.partition(OWNER_SEP)
    return owner if sep and owner else None


class LabNames:
    """All names of one lab."""

    def __init__(self, lab: str) -> None:
        self.lab = check_lab(lab)
        self.prefix = f"{PREFIX}.{lab}."

    # network namespaces
    @property
    def kind_net(self) -> str:
        return self.prefix + "net"

    def node(self, node: str) -> str:
        return self.prefix + "node." + node

    def pod(self, namespace: str, pod: str) -> str:
        return self.prefix + "pod." + namespace + "." + pod

    def owns_netns(self, name: str) -> bool:
        return name.startswith(self.prefix)

    @property
    def userns(self) -> Path | None:
        """The user namespace that owns the lab's network namespaces (a student's), or None."""
        owner = lab_owner(self.lab)
        return USERNS_ROOT / owner if owner else None

    # files and kernel paths
    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.lab

    @property
    def lock(self) -> Path:
        return LOCK_ROOT / f"{self.lab}.lock"

    @property
    def daemons_dir(self) -> Path:
        """The registry of the lab's daemons: one JSON file per daemon (processes.py)."""
        return self.state_dir / "daemons"

    @property
    def journal(self) -> Path:
        """The undo journal of an ``apply`` under way (undo.py)."""
        return self.state_dir / "undo.jsonl"

    @property
    def cgroup(self) -> Path:
        return CGROUP_ROOT / self.lab

    def node_cgroup(self, node: str) -> Path:
        return self.cgroup / node

    @property
    def bpffs(self) -> Path:
        return BPFFS_ROOT / self.lab

    def etc_netns(self, netns: str) -> Path:
        return ETC_NETNS / netns


def existing_labs() -> list[str]:
    """Names of the labs with anything on this machine (state, namespaces or cgroups)."""
    labs = {p.name for p in STATE_ROOT.iterdir()} if STATE_ROOT.exists() else set()
    if NETNS_DIR.exists():
        labs |= {
            n.split(".")[1]
            for n in (p.name for p in NETNS_DIR.iterdir())
            if n.startswith(PREFIX + ".") and n.count(".") >= 2
        }
    if CGROUP_ROOT.exists():
        labs |= {p.name for p in CGROUP_ROOT.iterdir() if p.is_dir()}
    return sorted(lab for lab in labs if LAB_RE.match(lab))
