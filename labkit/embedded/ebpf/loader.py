"""Loading templates into a node: its pinned maps, its programs, their attach points.

Per node (as per Cilium agent): maps under /sys/fs/bpf/labkit/<lab>/<node>/, created from
the template's shapes (reused if already pinned); programs loaded with those maps'
fds patched into their map references and pinned as prog_<function>, so ``apply`` (a
later process) attaches cil_from_container to new lxcs without compiling; tc filters
(clsact) inside the node's network namespace; cgroup hooks on the node's cgroup.
Nothing is attached in the host's root namespace.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...errors import ExitStatus, LabError
from ...netns import NetNS
from . import bpfsys
from .build import Template

PROG_TYPES = {"sched_cls": bpfsys.PROG_SCHED_CLS, "cgroup_sock_addr": bpfsys.PROG_CGROUP_SOCK_ADDR}
TC_INGRESS, TC_EGRESS = "ffff:fff2", "ffff:fff3"


def open_maps(pin_dir: Path, templates: dict[str, Template]) -> dict[str, int]:
    """fds of the node's maps, created and pinned on first use."""
    pin_dir.mkdir(parents=True, exist_ok=True)
    fds: dict[str, int] = {}
    for t in templates.values():
        for name, m in t.maps.items():
            if name in fds:
                continue
            path = pin_dir / name
            if path.exists():
                fds[name] = bpfsys.obj_get(str(path))
            else:
                fd = bpfsys.map_create(m["type"], m["key_size"], m["value_size"], m["max_entries"], m["flags"], name)
                bpfsys.obj_pin(fd, str(path))
                fds[name] = fd
    return fds


def load_programs(pin_dir: Path, templates: dict[str, Template], map_fds: dict[str, int]) -> dict[str, int]:
    """Load every program with this node's maps and pin it; function name -> prog fd."""
    out: dict[str, int] = {}
    for src, t in templates.items():
        for fn in t.progs:
            fd = load_program(src, t, fn, map_fds)
            path = pin_dir / f"prog_{fn}"
            if path.exists():
                path.unlink()
            bpfsys.obj_pin(fd, str(path))
            out[fn] = fd
    return out


def load_program(src: str, template: Template, fn: str, map_fds: dict[str, int]) -> int:
    """Load function ``fn`` of ``template`` (compiled from bpf/``src``) with its map
    references bound to ``map_fds``; the program fd (the caller pins or closes it)."""
    p = template.progs[fn]
    insns = bytearray(p["insns"])
    for idx, name in p["relocs"]:
        struct.pack_into("<i", insns, idx * 8 + 4, map_fds[name])
    attach = bpfsys.ATTACH.get(p["attach"], 0)
    try:
        return bpfsys.prog_load(bytes(insns), PROG_TYPES[p["type"]], fn, attach)
    except bpfsys.VerifierError as e:
        raise LabError(
            f"the verifier rejected {fn} (bpf/{src}): {e.err}; verifier log (end): {_tail(e.log)}",
            exit_code=ExitStatus.FAILURE,
        ) from None


def _tail(log: str, lines: int = 12) -> str:
    return " | ".join(log.strip().splitlines()[-lines:])


def tc_attach(netns: NetNS, ifname: str, prog_fd: int, fn: str, direction: str, pin_dir: Path | None = None) -> None:
    """Attach ``prog_fd`` to ``ifname`` (ingress or egress) inside ``netns``.

    With tcx (kernel >= 6.6, a bpf_link pinned in ``pin_dir``), as Cilium attaches where
    the kernel has it: no qdisc on the path, measurably cheaper than clsact on veths.
    Else a clsact qdisc and a bpf filter, through pyroute2. pyroute2 drives its netlink
    socket with an asyncio loop; in a notebook kernel a loop is already running in this
    thread, so that work runs in a short-lived thread."""
    if pin_dir is not None and _tcx_attach(netns, ifname, prog_fd, direction, pin_dir):
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_tc_attach, netns, ifname, prog_fd, fn, direction).result()


def _tcx_attach(netns: NetNS, ifname: str, prog_fd: int, direction: str, pin_dir: Path) -> bool:
    """Attach with a tcx link pinned as link_<ifname>_<direction>; False if no tcx here."""
    attach = bpfsys.TCX_INGRESS if direction == "ingress" else bpfsys.TCX_EGRESS
    pin = pin_dir / f"link_{ifname}_{direction}"

    def link() -> int:
        try:
            idx = socket.if_nametoindex(ifname)
        except OSError:
            raise LabError(f"no interface {ifname} in {netns.name}", exit_code=ExitStatus.FAILURE) from None
        try:
            return bpfsys.link_create(prog_fd, idx, attach)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524):  # 524: the kernel's ENOTSUPP
                return -1  # an older kernel without tcx
            raise

    fd = netns.call(link, what=f"{netns.name}:{ifname}")
    if fd < 0:
        return False
    try:
        if pin.exists():
            pin.unlink()
        bpfsys.obj_pin(fd, str(pin))
    finally:
        os.close(fd)
    return True


def _tc_attach(netns: NetNS, ifname: str, prog_fd: int, fn: str, direction: str) -> None:
    from pyroute2.netlink.exceptions import NetlinkError  # pyroute2 loads only on kernels without tcx

    with netns.iproute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LabError(f"no interface {ifname} in {netns.name}", exit_code=ExitStatus.FAILURE)
        idx = found[0]
        try:
            ipr.tc("add", "clsact", idx)
        except NetlinkError as e:
            if e.code != 17:  # EEXIST: clsact already there
                raise
        parent = TC_INGRESS if direction == "ingress" else TC_EGRESS
        try:
            ipr.tc("del-filter", "bpf", idx, ":1", parent=parent)
        except NetlinkError:
            pass
        ipr.tc("add-filter", "bpf", idx, ":1", fd=prog_fd, name=fn, parent=parent, classid=1, direct_action=True)


def cgroup_attach(cgroup: Path, prog_fd: int, attach: str) -> None:
    fd = os.open(str(cgroup), os.O_RDONLY | os.O_DIRECTORY)
    try:
        bpfsys.prog_attach(prog_fd, fd, bpfsys.ATTACH[attach])
    finally:
        os.close(fd)


def pinned_prog(pin_dir: Path, fn: str) -> int:
    return bpfsys.obj_get(str(pin_dir / f"prog_{fn}"))


class Timer:
    """Wall-clock seconds of a block, for the compile/load benchmark figures."""

    def __enter__(self) -> Timer:
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.t0
