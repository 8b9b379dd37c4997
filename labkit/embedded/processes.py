"""Processes of a lab: starting pod workloads in the right namespace and cgroup, and
ending every process that lives in the lab, by PID, at ``down``.

Pod processes run in the pod's network namespace and in the cgroup of the pod's node
(/sys/fs/cgroup/unified/labkit/<lab>/<node>): the datapath's socket-LB hooks attach to
that cgroup, as Cilium's attach to the cgroup of the pods on its node.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import netns
from ..errors import ExitStatus, LabError
from ..netns import NetNS
from ..plan import Plan, PodPlan
from .names import LabNames

WHOAMI = Path(__file__).resolve().parent.parent / "workloads" / "whoami.py"


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
    argv: Callable[[int], list[str]], log: Path, *, cgroup: Path | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, int]:
    """Start a daemon that writes "ready" to the fd number it is given (``argv(fd)``) once
    it serves; return it and the read end to hand to :func:`await_ready`."""
    r, w = os.pipe()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv(w),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(w,),
            env=env,
            start_new_session=True,
            preexec_fn=netns.join_cgroup(cgroup),
        )
    os.close(w)
    return proc, r


def await_ready(r: int, deadline: float) -> bool:
    """Whether the daemon behind pipe ``r`` said "ready" before ``deadline`` (monotonic)."""
    ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
    ok = bool(ready) and os.read(r, 16).startswith(b"ready")
    os.close(r)
    return ok


def whoami_argv(netns_name: str, name: str, ip: str, port: int) -> Callable[[int], list[str]]:
    """The whoami server (labkit/workloads/whoami.py) in ``netns_name``, for spawn_ready."""
    return lambda fd: NetNS(netns_name).exec_argv(
        [
            sys.executable,
            "-I",
            "-S",
            str(WHOAMI),
            "--name",
            name,
            "--ip",
            ip,
            "--port",
            str(port),
            "--ready-fd",
            str(fd),
        ]
    )


def start_workloads(names: LabNames, plan: Plan, pods: Iterable[PodPlan], timeout: float = 10.0) -> dict[str, int]:
    """Start the programs of ``pods``; return their PIDs once each is listening."""
    log_dir = names.state_dir / "logs"
    started = [
        (
            p,
            *spawn_ready(
                whoami_argv(names.pod(p.namespace, p.name), p.name, p.ip, p.port),
                log_dir / f"{p.namespace}.{p.name}.log",
                cgroup=names.node_cgroup(p.node),
            ),
        )
        for p in pods
        if p.app == "whoami"
    ]  # netshoot pods are idle: commands run in them on demand
    deadline = time.monotonic() + timeout
    pids: dict[str, int] = {}
    for p, proc, r in started:
        if not await_ready(r, deadline):
            raise LabError(
                f"pod {p.key} did not start its whoami server; see {log_dir}/{p.namespace}.{p.name}.log",
                exit_code=ExitStatus.FAILURE,
            )
        pids[p.key] = proc.pid
    return pids


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


def kill_lab_processes(names: LabNames, only_netns: Iterable[str] | None = None, grace: float = 1.0) -> None:
    pids = lab_pids(names, only_netns)
    for sig in (signal.SIGTERM, signal.SIGKILL):
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
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
