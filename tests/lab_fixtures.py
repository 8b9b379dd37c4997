"""Helpers for integration tests that build real labs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator

from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers
from labkit.lab import Lab


def lab_name(tag: str) -> str:
    """Unique per test process, so parallel runs never share a lab."""
    return f"{tag}{os.getpid() % 100000}"


@contextlib.contextmanager
def running_lab(tag: str, *, apply: bool = True, **up) -> Iterator[Lab]:
    lab = Lab(EmbeddedBackend(lab_name(tag)))
    try:
        lab.up(**up)
        if apply:
            lab.apply()
        yield lab
    finally:
        lab.down()
        assert leftovers(LabNames(lab.name)) == [], "lab left things behind"


def host_snapshot() -> dict:
    """The host root namespace's links, addresses, routes and the sysctls labkit could touch."""

    def ip(*args: str):
        return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout)

    links = sorted((link["ifname"], link.get("address"), tuple(link.get("flags", []))) for link in ip("link"))
    addrs = sorted((a["ifname"], i["local"], i["prefixlen"]) for a in ip("addr") for i in a.get("addr_info", []))
    routes = sorted(json.dumps(r, sort_keys=True) for r in ip("route", "show", "table", "all"))
    sysctls = {}
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv6/conf/all/disable_ipv6"):
        with open(f"/proc/sys/{key}") as f:
            sysctls[key] = f.read().strip()
    mounts = sorted(line.split()[1] for line in open("/proc/self/mounts") if line.split()[2] in ("bpf", "cgroup2"))
    return {"links": links, "addrs": addrs, "routes": routes, "sysctls": sysctls, "mounts": mounts}
