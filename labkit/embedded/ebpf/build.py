"""Compiling bpf/*.c with bcc into cached, relocatable templates.

A template is the bytecode of each program of one source file for one feature set (the
-D flags derived from the helm values), with its map references turned into names, plus
the shape of every map. Compiling takes seconds (clang); loading a template into a node
takes milliseconds. So a template is compiled once, cached on disk (keyed by the source
text, the flags and bcc's version) and loaded into every node with that node's own maps
(loader.py), as Cilium compiles its datapath and then loads it per endpoint.

The compile runs in a child process (``python -m labkit.embedded.ebpf.build``): bcc prints
clang's errors on the process's stderr and keeps maps and fds open, and children let the
three sources compile in parallel.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...errors import LabError
from ...plan import Plan
from ...spec import REPO, DatapathSpec
from . import bpfsys, source

# source file -> [(function, program type, cgroup attach type or 0)]
PROGRAMS: dict[str, list[tuple[str, str, str]]] = {
    "bpf_lxc.c": [("cil_from_container", "sched_cls", "")],
    "bpf_host.c": [("cil_from_netdev", "sched_cls", ""), ("cil_to_netdev", "sched_cls", "")],
    "bpf_sock.c": [
        ("cil_sock4_connect", "cgroup_sock_addr", "connect4"),
        ("cil_sock4_sendmsg", "cgroup_sock_addr", "sendmsg4"),
        ("cil_sock4_recvmsg", "cgroup_sock_addr", "recvmsg4"),
        ("cil_sock4_getpeername", "cgroup_sock_addr", "getpeername4"),
    ],
}
MAP_NAMES = (
    "cilium_lxc",
    "cilium_ipcache",
    "cilium_lb4_services_v2",
    "cilium_lb4_backends_v3",
    "cilium_lb4_reverse_nat",
    "cilium_lb4_reverse_sk",
    "cilium_ct4_global",
    "cilium_ct_any4_global",
    "cilium_snat_v4_external",
    "cilium_metrics",
    "labkit_node_config",
    "cilium_events",
)


def cache_dir() -> Path:
    base = os.environ.get("LABKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "labkit"
    )
    return Path(base) / "bpf"


def _be32(ip: str) -> str:
    """An address as the u32 the C code compares with (network order read natively)."""
    return hex(int.from_bytes(ipaddress.IPv4Address(ip).packed, sys.byteorder))


def cflags(dp: DatapathSpec, plan: Plan) -> list[str]:
    """The feature -D flags (Cilium's node_config.h / ep_config.h, reduced)."""
    native = ipaddress.IPv4Network(dp.native_cidr or plan.pod_subnet)
    svc = ipaddress.IPv4Network(plan.service_subnet)
    flags = [
        f"-DNATIVE_CIDR_NET={_be32(str(native.network_address))}",
        f"-DNATIVE_CIDR_MASK={_be32(str(native.netmask))}",
        f"-DSERVICE_CIDR_NET={_be32(str(svc.network_address))}",
        f"-DSERVICE_CIDR_MASK={_be32(str(svc.netmask))}",
    ]
    if not dp.socket_lb:
        flags.append("-DENABLE_PER_PACKET_LB=1")
    if dp.bpf_masquerade:
        flags.append("-DENABLE_MASQUERADE_IPV4=1")
    return flags


@dataclass
class Template:
    maps: dict[str, dict]  # name -> type, key_size, value_size, max_entries, flags
    progs: dict[str, dict]  # function -> type, attach, insns (bytes), relocs [(i, map)]
    seconds: float  # compile time (0 when cached)


def _key(name: str, text: str, flags: list[str]) -> str:
    import bcc  # heavy: clang behind it; loaded only when a template must be keyed or compiled

    h = hashlib.sha256(text.encode())
    h.update(json.dumps(flags).encode())
    h.update(str(getattr(bcc, "__version__", "")).encode())
    return f"{name.removesuffix('.c')}-{h.hexdigest()[:20]}"


def templates(flags: list[str]) -> dict[str, Template]:
    """The three templates for ``flags``, compiled in parallel children when not cached."""
    todo = {}
    out: dict[str, Template] = {}
    cdir = cache_dir()
    for name in PROGRAMS:
        path = cdir / (_key(name, source.program_text(name), flags) + ".json")
        if path.exists():
            out[name] = _read(path, 0.0)
        else:
            todo[name] = path
    if todo:
        cdir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(len(todo)) as pool:
            for name, t in zip(todo, pool.map(lambda n: _compile_child(n, flags, todo[n]), todo)):
                out[name] = t
    return out


def _read(path: Path, seconds: float) -> Template:
    d = json.loads(path.read_text())
    for p in d["progs"].values():
        p["insns"] = base64.b64decode(p["insns"])
    return Template(d["maps"], d["progs"], seconds)


def _compile_child(name: str, flags: list[str], path: Path) -> Template:
    t0 = time.monotonic()
    argv = [sys.executable, "-m", "labkit.embedded.ebpf.build", name, str(path), *flags]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0 or not path.exists():
        msg = _errors(r.stderr)
        raise LabError(f"compiling bpf/{name} failed: {msg}", exit_code=1)
    return _read(path, time.monotonic() - t0)


def _errors(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "error" in ln.lower()]
    return " | ".join(lines[:6]) or stderr.strip()[-800:]


def _child(name: str, out: Path, flags: list[str]) -> None:
    """In the child: compile with bcc, turn map fds into names, write the template."""
    from bcc import BPF  # heavy: only the compile child loads clang

    b = BPF(text=source.program_text(name), cflags=[*flags, "-Wno-unused-function"])
    fd_to_map: dict[int, str] = {}
    maps: dict[str, dict] = {}
    for m in MAP_NAMES:
        try:
            fd = b.get_table(m).map_fd
        except Exception:
            continue
        info = bpfsys.MapInfo(fd)
        fd_to_map[fd] = m
        maps[m] = {
            "type": info.type,
            "key_size": info.key_size,
            "value_size": info.value_size,
            "max_entries": info.max_entries,
            "flags": info.flags,
        }
    progs = {}
    for fn, ptype, attach in PROGRAMS[name]:
        insns = bytearray(b.dump_func(fn))
        relocs = []
        for i in range(0, len(insns), 8):
            op, regs = insns[i], insns[i + 1]
            if op == 0x18 and (regs >> 4) == 1:  # ld_imm64 with BPF_PSEUDO_MAP_FD
                fd = struct.unpack_from("<i", insns, i + 4)[0]
                relocs.append((i // 8, fd_to_map[fd]))
                struct.pack_into("<i", insns, i + 4, 0)
        progs[fn] = {
            "type": ptype,
            "attach": attach,
            "insns": base64.b64encode(bytes(insns)).decode(),
            "relocs": relocs,
        }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"maps": maps, "progs": progs}))
    os.replace(tmp, out)


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
