"""Processes of a lab: its daemons (started, registered, watched, restarted) and ending
every process that lives in the lab at ``down``.

Every long-running process of a lab goes through :func:`start_daemons`: pod workloads, the
event agent, the external host's server, and any control-plane daemon. Each is recorded in
the lab's daemon registry (``<state_dir>/daemons/<name>.json``: what it is, how to start it
again, its PID and the kernel's start time of that PID), so ``status``, ``doctor`` and
``up`` can tell which died (:func:`dead_daemons`) and ``up`` can start them again
(:func:`restart`) without knowing what kind of daemon each is.

Pod processes run in the pod's network namespace and in the cgroup of the pod's node
(/sys/fs/cgroup/unified/labkit/<lab>/<node>): the datapath's socket-LB hooks attach to
that cgroup, as Cilium's attach to the cgroup of the pods on its node. Every other daemon
runs in a cgroup of its own under the lab's, so ``down`` ends all of them with the lab's
``cgroup.kill``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import netns
from ..errors import ExitStatus, LabError
from ..netns import NetNS
from ..plan import Plan, PodPlan
from .names import LabNames

WHOAMI = Path(__file__).resolve().parent.parent / "workloads" / "whoami.py"
READY_FD = "{ready_fd}"  # placeholder in a daemon's argv: the fd it writes "ready" to


@dataclass
class Daemon:
    """One registered daemon of a lab: what it is, how to start it, and its process."""

    name: str  # registry key, file-name safe: "agent", "external", "pod.native.webpod-x"
    what: str  # for messages: "the event agent", "pod native/webpod-x (whoami)"
    argv: list[str]  # READY_FD stands for the fd number it writes "ready" to once it serves
    log: str
    cgroup: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to labkit's environment
    ready_timeout: float = 10.0
    pid: int = 0
    started: int = 0  # the PID's start time (/proc/PID/stat field 22): tells PID reuse apart

    @classmethod
    def from_dict(cls, d: dict) -> Daemon:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def make_cgroups(names: LabNames, plan: Plan) -> None:
    if not names.cgroup.parent.parent.exists():
        raise LabError(
            f"cgroup v2 is not mounted at {names.cgroup.parent.parent}; labkit needs it "
            f"(mount -t cgroup2 none {names.cgroup.parent.parent})",
            exit_code=ExitStatus.FAILURE,
        )
    for n in plan.nodes:
        names.node_cgroup(n.name).mkdir(parents=True, exist_ok=True)


def spawn_ready(
    argv: Sequence[str] | Callable[[int], Sequence[str]],
    log: Path,
    *,
    cgroup: Path | None = None,
    env: dict | None = None,
) -> tuple[subprocess.Popen, int]:
    """Start a process whose ``argv`` has READY_FD where it wants the fd number it writes
    "ready" to once it serves (or a function of that fd giving the argv); return it and the
    read end for :func:`await_ready`. Long-running daemons go through :func:`start_daemons`
    instead, which registers them."""
    r, w = os.pipe()
    log.parent.mkdir(parents=True, exist_ok=True)
    words = argv(w) if callable(argv) else [str(w) if a == READY_FD else a for a in argv]
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(words),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                pass_fds=(w,),
                env=None if env is None else {**os.environ, **env},
                start_new_session=True,
                preexec_fn=netns.join_cgroup(cgroup),
            )
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return proc, r


def await_ready(r: int, deadline: float) -> bool:
    """Whether the daemon behind pipe ``r`` said "ready" before ``deadline`` (monotonic)."""
    try:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        return bool(ready) and os.read(r, 16).startswith(b"ready")
    finally:
        os.close(r)


# ------------------------------------------------------------------------- the registry
def _record(names: LabNames, d: Daemon) -> Path:
    return names.daemons_dir / f"{d.name}.json"


def register(names: LabNames, d: Daemon) -> None:
    names.daemons_dir.mkdir(parents=True, exist_ok=True)
    path = _record(names, d)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(d), indent=1, sort_keys=True))
    os.replace(tmp, path)


def daemons(names: LabNames) -> list[Daemon]:
    """Every registered daemon of the lab, by name."""
    out = []
    if names.daemons_dir.is_dir():
        for p in sorted(names.daemons_dir.glob("*.json")):
            try:
                out.append(Daemon.from_dict(json.loads(p.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a record cut short by a crash: its daemon counts as never started
    return out


def unregister(names: LabNames, name: str) -> None:
    try:
        (names.daemons_dir / f"{name}.json").unlink()
    except FileNotFoundError:
        pass


def start_daemons(names: LabNames, specs: Sequence[Daemon]) -> list[Daemon]:
    """Start ``specs`` in parallel and register each once it said "ready"; a daemon that
    does not is stopped and is one error line pointing at its log."""
    started = []
    for d in specs:
        proc, r = spawn_ready(
            d.argv, Path(d.log), cgroup=Path(d.cgroup) if d.cgroup else None, env=d.env if d.env else None
        )
        started.append((d, proc, r))
    failed: list[Daemon] = []
    for d, proc, r in started:
        if await_ready(r, time.monotonic() + d.ready_timeout):
            d.pid, d.started = proc.pid, _start_time(proc.pid)
            register(names, d)
        else:
            failed.append(d)
            _stop_pid(proc.pid)
    if failed:
        raise LabError(f"{failed[0].what} did not start; see {failed[0].log}", exit_code=ExitStatus.FAILURE)
    return [d for d, _, _ in started]


def alive(d: Daemon) -> bool:
    """Whether the registered process still runs (and is the one labkit started)."""
    return d.pid > 0 and _start_time(d.pid) == d.started and not _zombie(d.pid)


def dead_daemons(names: LabNames) -> list[Daemon]:
    return [d for d in daemons(names) if not alive(d)]


def restart(names: LabNames, d: Daemon) -> Daemon:
    """Start a dead daemon again, as it was started the first time."""
    if alive(d):
        return d
    return start_daemons(names, [Daemon.from_dict({**asdict(d), "pid": 0, "started": 0})])[0]


def stop(names: LabNames, d: Daemon) -> None:
    if alive(d):
        _stop_pid(d.pid)
    unregister(names, d.name)


def _stop_pid(pid: int, grace: float = 1.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                    return
            time.sleep(0.02)


def _start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return -1


# ------------------------------------------------------------------------- workloads
def whoami_argv(netns_name: str, name: str, ip: str, port: int) -> list[str]:
    """The whoami server (labkit/workloads/whoami.py) in ``netns_name``."""
    return NetNS(netns_name).exec_argv(
        [sys.executable, "-I", "-S", str(WHOAMI), "--name", name, "--ip", ip, "--port", str(port)]
        + ["--ready-fd", READY_FD]
    )


def pod_daemon_name(p: PodPlan) -> str:
    return f"pod.{p.namespace}.{p.name}"


def workload_daemons(names: LabNames, pods: Iterable[PodPlan]) -> list[Daemon]:
    """The daemons that run ``pods``' programs (netshoot pods are idle: commands run in
    them on demand)."""
    log_dir = names.state_dir / "logs"
    return [
        Daemon(
            pod_daemon_name(p),
            f"pod {p.key} (whoami)",
            whoami_argv(names.pod(p.namespace, p.name), p.name, p.ip, p.port),
            str(log_dir / f"{p.namespace}.{p.name}.log"),
            cgroup=str(names.node_cgroup(p.node)),
        )
        for p in pods
        if p.app == "whoami"
    ]


def start_workloads(names: LabNames, plan: Plan, pods: Iterable[PodPlan], timeout: float = 10.0) -> list[Daemon]:
    """Start the programs of ``pods`` (of ``plan``); return their daemons once each listens."""
    specs = workload_daemons(names, pods)
    for d in specs:
        d.ready_timeout = timeout
    return start_daemons(names, specs)


# ------------------------------------------------------------------------- ending them
def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def lab_pids(names: LabNames, only_netns: Iterable[str] | None = None) -> set[int]:
    """PIDs of every process inside the lab: in its cgroups or in its network namespaces
    (or only those inside ``only_netns``)."""
    pids: set[int] = set()
    if only_netns is None and names.cgroup.exists():
        for procs in names.cgroup.rglob("cgroup.procs"):
            try:
                pids |= {int(x) for x in procs.read_text().split()}
            except OSError:
                pass
    wanted = (
        list(only_netns) if only_netns is not None else [n.name for n in netns.existing() if names.owns_netns(n.name)]
    )
    inodes = {i for i in (_netns_inode(f"/run/netns/{n}") for n in wanted) if i}
    if inodes:
        for d in os.listdir("/proc"):
            if d.isdigit() and _netns_inode(f"/proc/{d}/ns/net") in inodes:
                pids.add(int(d))
    pids.discard(os.getpid())
    return pids


def kill_cgroup(cgroup: Path) -> None:
    """Kill every process in ``cgroup`` and below at once (``cgroup.kill``, Linux 5.14+):
    nothing forked meanwhile escapes, as it could from a PID list."""
    kill = cgroup / "cgroup.kill"
    if kill.exists():
        try:
            kill.write_text("1")
        except OSError:
            pass


def kill_lab_processes(names: LabNames, only_netns: Iterable[str] | None = None, grace: float = 1.0) -> set[int]:
    """End every process of the lab (or of ``only_netns``); return the PIDs still alive
    (empty unless a process is stuck in the kernel). Retries: a process may fork while
    it is being ended (``ip netns exec``, a shell)."""
    wanted = None if only_netns is None else list(only_netns)
    pids: set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL, signal.SIGKILL):
        if wanted is None and sig == signal.SIGKILL:
            kill_cgroup(names.cgroup)
        pids = lab_pids(names, wanted)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if os.path.exists(f"/proc/{p}") and not _zombie(p)}
            if pids:
                time.sleep(0.02)
        if not pids and not {p for p in lab_pids(names, wanted) if not _zombie(p)}:
            return set()
    return {p for p in lab_pids(names, wanted) if not _zombie(p)}


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
