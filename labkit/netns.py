"""Network namespaces: the one way labkit reaches into one (in the spirit of pyroute2's NetNS).

A :class:`NetNS` names a namespace under ``/run/netns`` and knows every way in:

- ``ip -n <ns> -batch -`` for topology: one process for many commands, and the commands
  are the ones a student would type (``LABKIT_VERBOSE=1`` / ``labkit -v`` logs them);
- :meth:`NetNS.exec_argv`: the argv that runs a program inside (``ip netns exec``, which
  also binds ``/etc/netns/<ns>/*`` over ``/etc``);
- :meth:`NetNS.call`: a Python function run inside, on a throw-away thread (``setns(2)``
  changes the calling thread only, so the rest of the process never leaves its namespace;
  sockets and bpf links keep the namespace they were made in);
- :meth:`NetNS.iproute`: a pyroute2 ``IPRoute`` bound to it (tc filters).

Nothing here ever targets the host's root namespace except creating and deleting the
lab's own namespaces.

A namespace can be created *owned by a user namespace* (``create(..., userns=PATH)``): a
classroom student's labs are owned by that student's user namespace, so the student is root
inside their own lab's namespaces only (``ip``, ``tcpdump`` work there) while the host's
namespaces, owned by the initial user namespace, stay out of reach.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ExitStatus, LabError

log = logging.getLogger("labkit.netns")
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    log.debug("+ %s%s", " ".join(argv), f" << {stdin.strip()}".replace("\n", "; ") if stdin else "")
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LabError(
            f"{argv[0]} not found; run `make lab` (or apt-get install iproute2) first", exit_code=ExitStatus.FAILURE
        ) from None


class NetNS:
    """The network namespace ``/run/netns/<name>`` (it need not exist yet)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def at(cls, path: str | Path) -> NetNS:
        """The namespace whose file is ``path`` (``/run/netns/<name>``)."""
        return cls(Path(path).name)

    def __repr__(self) -> str:
        return f"NetNS({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetNS) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    # ---------------------------------------------------------------- iproute2
    def ip_batch(self, commands: Sequence[str]) -> None:
        """Run ``ip`` commands inside; the first failure raises with ip's message."""
        if not commands:
            return
        r = _run(["ip", "-n", self.name, "-batch", "-"], "\n".join(commands) + "\n")
        if r.returncode != 0:
            why = (r.stderr or r.stdout).strip().splitlines()[0:2]
            raise LabError(f"ip in {self.name} failed: {why}", exit_code=ExitStatus.FAILURE)

    def links(self) -> dict[str, dict[str, Any]]:
        """Interfaces by name (``ip -j link``): ifindex, address, ..."""
        r = _run(["ip", "-n", self.name, "-j", "link", "show"])
        if r.returncode != 0:
            raise LabError(f"cannot list links of {self.name}: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
        return {link["ifname"]: link for link in json.loads(r.stdout or "[]")}

    def sysctl(self, values: Mapping[str, str]) -> None:
        r = _run(self.exec_argv(["sysctl", "-qw", *(f"{k}={v}" for k, v in values.items())]))
        if r.returncode != 0:
            raise LabError(f"sysctl in {self.name} failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """argv that runs ``argv`` inside (``ip netns exec`` also binds /etc/netns/<ns>/*)."""
        return ["ip", "netns", "exec", self.name, *argv]

    # ---------------------------------------------------------------- in-process
    def call(self, fn: Callable[[], T], *, what: str = "") -> T:
        """``fn()`` run inside this namespace on a throw-away thread."""
        return call_in(str(self.path), fn, what=what)

    def iproute(self) -> Any:
        """A pyroute2 ``IPRoute`` inside this namespace (use it as a context manager)."""
        from pyroute2 import IPRoute  # heavy optional import: only tc attach on old kernels needs it

        return IPRoute(netns=self.name)


def call_in(netns_path: str, fn: Callable[[], T], *, what: str = "") -> T:
    """``fn()`` run in the network namespace at ``netns_path`` ("" = the current one)."""
    if not netns_path:
        return fn()
    label = f" of {what}" if what else ""
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise LabError(
            f"network namespace {netns_path}{label} is missing ({e.strerror}); "
            "is the lab up? check with `labkit status`"
        ) from None
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                box["error"] = LabError(
                    f"cannot enter network namespace {netns_path}{label}: "
                    f"{os.strerror(err)}; run as root on the lab's machine"
                )
                return
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    try:
        t = threading.Thread(target=run, name=f"labkit-netns-{os.path.basename(netns_path)}", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if "error" in box:
        raise box["error"]
    return box["value"]


class PrivateNetNS:
    """A network namespace of this process alone, with no name under ``/run/netns``.

    Made by ``unshare(2)`` on a throw-away thread and held by an fd: it vanishes when
    closed, or with the process, even after a crash, so nothing can be left behind. The
    datapath's unit tests run programs in one (``BPF_PROG_TEST_RUN`` uses the caller's
    namespace), so a FIB lookup sees only the devices and routes the test made there and
    never the host's. Every way in checks that it really is inside before acting.
    """

    def __init__(self) -> None:
        box: dict[str, Any] = {}

        def make() -> None:
            if _libc.unshare(CLONE_NEWNET) != 0:
                box["error"] = os.strerror(ctypes.get_errno())
                return
            box["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        t = threading.Thread(target=make, name="labkit-private-netns", daemon=True)
        t.start()
        t.join()
        if "fd" not in box:
            raise LabError(
                f"cannot create a private network namespace: {box.get('error')}; run as root",
                exit_code=ExitStatus.FAILURE,
            )
        self.fd: int = box["fd"]
        self.inode = os.fstat(self.fd).st_ino
        if self.inode == os.stat("/proc/self/ns/net").st_ino:  # unshare "worked" but changed nothing
            os.close(self.fd)
            raise LabError("unshare(CLONE_NEWNET) left the thread in this process's namespace", exit_code=1)

    def __repr__(self) -> str:
        return f"PrivateNetNS(inode={self.inode})"

    def call(self, fn: Callable[[], T], *, what: str = "") -> T:
        """``fn()`` run inside, on a throw-away thread."""
        if self.fd < 0:
            raise LabError("this private network namespace is closed", exit_code=ExitStatus.FAILURE)

        def inside() -> T:
            if os.stat("/proc/thread-self/ns/net").st_ino != self.inode:
                raise LabError("not inside the private network namespace", exit_code=ExitStatus.FAILURE)
            return fn()

        return call_in(f"/proc/self/fd/{self.fd}", inside, what=what or "a private namespace")

    def ip_batch(self, commands: Sequence[str]) -> None:
        """Run ``ip`` commands inside (a child forked from a thread inside inherits it)."""
        r = self.call(lambda: _run(["ip", "-batch", "-"], "\n".join(commands) + "\n"))
        if r.returncode != 0:
            raise LabError(f"ip in a private namespace failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)

    def links(self) -> dict[str, dict[str, Any]]:
        """Interfaces by name (``ip -j link``): ifindex, address, ..."""
        r = self.call(lambda: _run(["ip", "-j", "link", "show"]))
        return {link["ifname"]: link for link in json.loads(r.stdout or "[]")}

    def sysctl(self, values: Mapping[str, str]) -> None:
        """Write ``net.*`` sysctls of this namespace (/proc/sys/net is per namespace)."""

        def write() -> None:
            for key, val in values.items():
                Path("/proc/sys", *key.split(".")).write_text(val)

        self.call(write)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PrivateNetNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -------------------------------------------------------------------- many at once
def create(namespaces: Iterable[NetNS], *, userns: Path | None = None) -> None:
    """Create the namespaces with one ``ip -batch``; owned by the user namespace pinned at
    ``userns`` when given (see :func:`create_owned`)."""
    names = [n.name for n in namespaces]
    if names and userns is not None:
        create_owned(names, userns)
    elif names:
        r = _run(["ip", "-batch", "-"], "".join(f"netns add {n}\n" for n in names))
        if r.returncode != 0:
            raise LabError(f"creating network namespaces failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)


# One process inside the user namespace unshares a new network namespace each time it is
# asked ("n" on stdin) and answers "ok" once it sits in it; the caller pins that namespace.
_UNSHARE_LOOP = (
    "import ctypes,os,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "for line in sys.stdin:\n"
    "    ok=libc.unshare(0x40000000)==0\n"
    "    sys.stdout.write('ok\\n' if ok else 'error '+os.strerror(ctypes.get_errno())+'\\n')\n"
    "    sys.stdout.flush()\n"
)


def create_owned(names: Sequence[str], userns: Path) -> None:
    """Create network namespaces owned by the user namespace pinned at ``userns``.

    The same steps as ``unshare --user --net`` followed by ``ip netns attach``: a helper
    joins the user namespace (``nsenter --user``) and unshares a network namespace, which
    the kernel then records as owned by that user namespace; ``ip netns attach NAME PID``
    bind-mounts it under /run/netns. Whoever is root in that user namespace (the student it
    maps) holds CAP_NET_ADMIN there and nowhere else.
    """
    if not Path(userns).exists():
        raise LabError(
            f"the user namespace {userns} is missing; start the classroom broker (labkit classroom up)",
            exit_code=ExitStatus.FAILURE,
        )
    argv = ["nsenter", f"--user={userns}", "--"]  # uid 0 inside: keeps its capabilities across exec
    argv += [sys.executable, "-I", "-S", "-c", _UNSHARE_LOOP]
    log.debug("+ %s", " ".join(argv[:4]) + " <unshare --net loop>")
    helper = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert helper.stdin is not None and helper.stdout is not None
    try:
        for name in names:
            helper.stdin.write("n\n")
            helper.stdin.flush()
            answer = helper.stdout.readline().strip()
            if answer != "ok":
                why = answer or (helper.stderr.read() if helper.stderr else "").strip()
                raise LabError(f"cannot create network namespace {name} in {userns}: {why}", exit_code=1)
            r = _run(["ip", "netns", "attach", name, str(helper.pid)])
            if r.returncode != 0:
                raise LabError(f"ip netns attach {name} failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
    finally:
        helper.stdin.close()
        helper.wait(timeout=10)


def delete(namespaces: Iterable[NetNS]) -> None:
    """Delete the namespaces (those already gone are fine)."""
    names = [n.name for n in namespaces]
    if names:
        _run(["ip", "-force", "-batch", "-"], "".join(f"netns delete {n}\n" for n in names))


def existing() -> list[NetNS]:
    """Every named network namespace on the machine."""
    try:
        return [NetNS(n) for n in sorted(os.listdir(NETNS_DIR))]
    except FileNotFoundError:
        return []


CLONE_NEWUTS = 0x04000000


def own_hostname(name: str) -> Callable[[], None]:
    """A preexec function that gives the child a UTS namespace of its own whose hostname
    is ``name`` (a node's or pod's), so `hostname` in a node or pod prints its name. The
    host's hostname is never changed: the new namespace is the child's alone."""
    raw = name.encode()

    def _uts() -> None:
        if _libc.unshare(CLONE_NEWUTS) == 0:
            _libc.sethostname(raw, len(raw))

    return _uts


def preexec(*fns: Callable[[], None] | None) -> Callable[[], None]:
    """One preexec function that runs ``fns`` in order (None entries skipped)."""
    todo = [f for f in fns if f is not None]

    def _all() -> None:
        for f in todo:
            f()

    return _all


def join_cgroup(cgroup: Path | None) -> Callable[[], None] | None:
    """A preexec function that moves the child into ``cgroup`` before it execs."""
    if cgroup is None:
        return None
    procs = str(cgroup / "cgroup.procs")

    def _join() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    return _join
