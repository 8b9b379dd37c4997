"""Running things inside a lab's network namespaces, with iproute2.

Topology is built with ``ip -n <ns> -batch -``: one process per namespace for many
commands, and the commands are the same ones a student would type, so ``labkit up -v``
can print them. Nothing here ever targets the host's root namespace except ``netns add``
and ``netns delete`` of the lab's own namespaces.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import LabError

VERBOSE = os.environ.get("LABKIT_VERBOSE") == "1"


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    if VERBOSE:
        print("+", " ".join(argv), *(["<<", stdin.strip().replace("\n", "; ")] if stdin else []))
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} not found; run `make lab` (or apt-get install iproute2) first", exit_code=1) from None


def ip_batch(netns: str, commands: Sequence[str]) -> None:
    """Run ``ip`` commands inside ``netns``; the first failure raises with ip's message."""
    if not commands:
        return
    r = _run(["ip", "-n", netns, "-batch", "-"], "\n".join(commands) + "\n")
    if r.returncode != 0:
        raise LabError(f"ip in {netns} failed: {(r.stderr or r.stdout).strip().splitlines()[0:2]}", exit_code=1)


def add_netns(names: Sequence[str]) -> None:
    if names:
        r = _run(["ip", "-batch", "-"], "".join(f"netns add {n}\n" for n in names))
        if r.returncode != 0:
            raise LabError(f"creating network namespaces failed: {r.stderr.strip()}", exit_code=1)


def delete_netns(names: Sequence[str]) -> None:
    if names:
        _run(["ip", "-force", "-batch", "-"], "".join(f"netns delete {n}\n" for n in names))


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def exec_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` in ``netns`` (``ip netns exec`` also binds /etc/netns/<ns>/*)."""
    return ["ip", "netns", "exec", netns, *argv]


def join_cgroup(cgroup: Path | None) -> Callable[[], None] | None:
    """A preexec function that moves the child into ``cgroup`` before it execs."""
    if cgroup is None:
        return None
    procs = str(cgroup / "cgroup.procs")

    def _join() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return _join


def sysctl(netns: str, values: Mapping[str, str]) -> None:
    argv = exec_argv(netns, ["sysctl", "-qw", *(f"{k}={v}" for k, v in values.items())])
    r = _run(argv)
    if r.returncode != 0:
        raise LabError(f"sysctl in {netns} failed: {r.stderr.strip()}", exit_code=1)


def links(netns: str) -> dict[str, dict]:
    """Interfaces of ``netns`` by name (``ip -j link``): ifindex, address, ..."""
    r = _run(["ip", "-n", netns, "-j", "link", "show"])
    if r.returncode != 0:
        raise LabError(f"cannot list links of {netns}: {r.stderr.strip()}", exit_code=1)
    return {link["ifname"]: link for link in json.loads(r.stdout or "[]")}
