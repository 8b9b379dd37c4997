"""The small state file of a running embedded lab (/run/labkit/<lab>/state.json).

The kernel holds the lab (namespaces, links, pinned maps); this file holds what the kernel
cannot tell us cheaply: the plan (names, ids), the options it was built with and the link
facts of its pods (the daemons it runs are registered next to it, see processes.py). Any
process (CLI, notebook kernel) reads it to attach. Writes are atomic (rename) and made
under an exclusive lock per lab (:func:`locked`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import ExitStatus, LabError, notice
from ..plan import Plan
from .names import LabNames


@dataclass
class LabState:
    lab: str
    status: str  # "building" while up runs, then "up"
    datapath: str  # "kernel" (plain routing) or "ebpf"
    options: dict  # --set overrides of the helm values
    plan: Plan
    links: dict[str, dict] = field(default_factory=dict)  # pod key -> lxc_ifindex, pod_mac, lxc_mac
    applied: int = 0  # number of committed applies; an undo journal of a later one is rolled back

    def to_json(self) -> str:
        d = asdict(self)
        d["plan"] = self.plan.to_dict()
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        d = json.loads(text)
        d["plan"] = Plan.from_dict(d["plan"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def path(names: LabNames) -> Path:
    return names.state_dir / "state.json"


def load(names: LabNames) -> LabState | None:
    try:
        return LabState.from_json(path(names).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LabError(
            f"the state file {path(names)} is damaged; run labkit down --lab {names.lab}", exit_code=1
        ) from None


def save(names: LabNames, st: LabState) -> None:
    names.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path(names).with_suffix(".tmp")
    tmp.write_text(st.to_json())
    os.replace(tmp, path(names))


class Lock:
    """The held lock of one lab (see :func:`locked`)."""

    def __init__(self, names: LabNames, fd: int) -> None:
        self.names, self.fd = names, fd

    def discard(self) -> None:
        """Remove the lock file while still holding it (the lab is gone): processes waiting
        on it notice the file is no longer the one at the path and take a new one."""
        try:
            os.unlink(self.names.lock)
        except FileNotFoundError:
            pass
        try:
            self.names.lock.parent.rmdir()
        except OSError:
            pass


@contextlib.contextmanager
def locked(names: LabNames, what: str, *, timeout: float = 600.0) -> Iterator[Lock]:
    """Serialise up/apply/down of one lab across processes.

    The lock file is /run/lock/labkit/<lab>.lock, outside the state directory that ``down``
    removes. A second command on a busy lab waits (saying so once, with the holder's PID
    and command) up to ``timeout`` seconds, then fails with one line. A lock file removed
    by its holder (``Lock.discard`` at the end of ``down``) is detected after the wait
    (the path no longer names the locked file) and taken afresh.
    """
    deadline = time.monotonic() + timeout
    said = False
    while True:
        names.lock.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(names.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not _acquire(fd, deadline, None if said else _busy(names, fd, what)):
                raise LabError(
                    f"lab {names.lab!r} is still busy after {timeout:.0f} s ({_holder(fd)}); "
                    "wait for it to finish, then try again",
                    exit_code=ExitStatus.FAILURE,
                )
            said = True
            if _same_file(fd, names.lock):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed the file while we waited: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        yield Lock(names, fd)
    finally:
        if _same_file(fd, names.lock):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock


def _acquire(fd: int, deadline: float, on_wait: Callable[[], None] | None) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        if on_wait is not None:
            on_wait()
    while time.monotonic() < deadline:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05)
    return False


def _busy(names: LabNames, fd: int, what: str) -> Callable[[], None]:
    return lambda: notice(f"lab {names.lab!r} is busy ({_holder(fd)}); {what} waits for it")


def _holder(fd: int) -> str:
    try:
        pid, _, op = os.pread(fd, 200, 0).decode(errors="replace").strip().partition(" ")
    except OSError:
        pid, op = "", ""
    return f"labkit {op} runs as PID {pid}" if pid.isdigit() else "another labkit command holds its lock"


def _same_file(fd: int, p: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(p)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
