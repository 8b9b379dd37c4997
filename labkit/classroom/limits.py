"""Per-student limits: how much a student may use of the shared machine.

Memory and CPU are cgroup limits on everything the student runs: their notebook server
(the spawner puts it there) and every command the broker runs for them in their labs.
cgroup v2 where the machine has its memory and cpu controllers; on a hybrid machine,
whose v2 hierarchy (/sys/fs/cgroup/unified) holds no such controllers, the v1 memory and
cpu hierarchies (/sys/fs/cgroup/memory, /sys/fs/cgroup/cpu). Labs per student, capture
sockets per request and commands at once are counted by the broker.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ExitStatus, LabError

CGROUP = Path("/sys/fs/cgroup")
GROUP = "labkit-classroom"


@dataclass(frozen=True)
class Limits:
    """What one student may use (``labkit classroom up --memory/--cpus/...``)."""

    memory_mb: int = 2048  # notebook server, kernels and lab commands together
    cpus: float = 1.0  # CPU time, in cores
    labs: int = 4  # a lesson's lab and its companions (kernel routing, tc LB)
    processes: int = 64  # commands the broker runs for the student at once
    capture_sockets: int = 16  # capture points in one capture
    capture_buffer_mb: int = 8  # kernel buffer of one capture socket

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Limits:
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    def check(self) -> Limits:
        for k, v in self.to_dict().items():
            if not v > 0:
                raise LabError(f"classroom limit {k} must be positive, got {v}")
        return self


def unified_controllers(root: Path = CGROUP) -> set[str]:
    """Controllers of the v2 hierarchy: at /sys/fs/cgroup (pure v2) or .../unified (hybrid)."""
    for base in (root, root / "unified"):
        try:
            return set((base / "cgroup.controllers").read_text().split())
        except OSError:
            continue
    return set()


def mode(root: Path = CGROUP) -> str:
    """ "v2" when v2 has memory and cpu, "v1" when the v1 hierarchies do, else "none"."""
    if {"memory", "cpu"} <= unified_controllers(root) and (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "memory" / "memory.limit_in_bytes").exists() and (root / "cpu" / "cpu.cfs_quota_us").exists():
        return "v1"
    return "none"


class Cage:
    """The cgroups of one student: create with the limits, join, read usage, remove."""

    def __init__(self, student: str, root: Path = CGROUP) -> None:
        self.student, self.root, self.mode = student, root, mode(root)

    @property
    def dirs(self) -> list[Path]:
        if self.mode == "v2":
            return [self.root / GROUP / self.student]
        if self.mode == "v1":
            return [self.root / "memory" / GROUP / self.student, self.root / "cpu" / GROUP / self.student]
        return []

    def create(self, limits: Limits) -> None:
        memory = str(limits.memory_mb << 20)
        period = 100_000
        quota = str(int(limits.cpus * period))
        if self.mode == "v2":
            top = self.root / GROUP
            top.mkdir(exist_ok=True)
            _write(self.root / "cgroup.subtree_control", "+memory +cpu")
            _write(top / "cgroup.subtree_control", "+memory +cpu")
            d = self.dirs[0]
            d.mkdir(exist_ok=True)
            _write(d / "memory.max", memory)
            _write(d / "memory.swap.max", "0", optional=True)
            _write(d / "cpu.max", f"{quota} {period}")
        elif self.mode == "v1":
            mem, cpu = self.dirs
            for d in (mem, cpu):
                d.mkdir(parents=True, exist_ok=True)
            _write(mem / "memory.limit_in_bytes", memory)
            _write(mem / "memory.memsw.limit_in_bytes", memory, optional=True)
            _write(cpu / "cpu.cfs_period_us", str(period))
            _write(cpu / "cpu.cfs_quota_us", quota)

    def procs_files(self) -> list[str]:
        """The cgroup.procs files a process writes its pid into to join (preexec-safe)."""
        return [str(d / "cgroup.procs") for d in self.dirs if d.exists()]

    def join(self, pid: int = 0) -> None:
        for procs in self.procs_files():
            _write(Path(procs), str(pid or os.getpid()))

    def memory_bytes(self) -> int:
        """Memory in use now by everything in the cage."""
        for d in self.dirs:
            for name in ("memory.current", "memory.usage_in_bytes"):
                try:
                    return int((d / name).read_text())
                except (OSError, ValueError):
                    continue
        return 0

    def limits(self) -> dict[str, str]:
        """What the kernel holds as the cage's limits (for status and tests)."""
        out = {}
        for d in self.dirs:
            for name in ("memory.max", "cpu.max", "memory.limit_in_bytes", "cpu.cfs_quota_us"):
                try:
                    out[name] = (d / name).read_text().strip()
                except OSError:
                    pass
        return out

    def remove(self) -> None:
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:  # still has processes: end them first, then remove
                _kill_all(d)
                try:
                    d.rmdir()
                except OSError:
                    pass
        for top in {d.parent for d in self.dirs}:
            try:
                top.rmdir()
            except OSError:
                pass


def _kill_all(d: Path) -> None:
    for _ in range(50):
        try:
            pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _write(p: Path, value: str, *, optional: bool = False) -> None:
    try:
        p.write_text(value)
    except OSError as e:
        if optional:
            return
        raise LabError(f"cannot set {p} to {value}: {e.strerror}", exit_code=ExitStatus.FAILURE) from None
