"""Compiling bpf/*.c with bcc into cached, relocatable templates.

A template is the bytecode of each program of one source file for one feature set (the
-D flags derived from the helm values), with its map references turned into names, plus
the shape of every map. Compiling takes seconds (clang); loading a template into a node
takes milliseconds. So a template is compiled once, cached on disk and loaded into every
node with that node's own maps (loader.py), as Cilium compiles its datapath and then loads
it per endpoint.

The cache is trusted no further than it is checked: its directory is root's alone (0700,
owned by the user running labkit; anything else is refused), an entry's name and its
recorded key are a digest of the source text, the flags and the compiler (bcc's version,
the kernel headers it compiles against), and the entry carries a SHA-256 of its content.
An entry that does not parse, names another key or fails its digest (a damaged file, or
bytecode edited by hand) is compiled again, with one warning line saying so.

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
import platform
import stat
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...errors import ExitStatus, LabError, notice
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
    "labkit_lxc_by_ifindex",
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
# labkit trace's sources (tracer.py): compiled the same way, on demand, never attached by `up`
TRACE_PROGRAMS: dict[str, list[tuple[str, str, str]]] = {
    "trace_tc.c": [("lkt_tc_ingress", "sched_cls", ""), ("lkt_tc_egress", "sched_cls", "")],
    "trace_tp.c": [
        (f"lkt_tp_{tp}", "tracepoint", "")
        for tp in (
            "net_dev_queue",
            "net_dev_start_xmit",
            "netif_rx",
            "netif_receive_skb",
            "kfree_skb",
            "consume_skb",
            "tcp_send_reset",
            "skb_copy_datagram_iovec",
            "fib_table_lookup",
            "neigh_create",
            "neigh_event_send_done",
        )
    ],
}
TRACE_MAP_NAMES = (
    "lkt_config",
    "lkt_skbs",
    "lkt_devs",
    "lkt_fps",
    "lkt_flows",
    "lkt_pickup",
    "lkt_cur",
    "lkt_counter",
    "lkt_events",
)


def cache_dir() -> Path:
    base = os.environ.get("LABKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "labkit"
    )
    return Path(base) / "bpf"


def private_dir(path: Path) -> Path:
    """``path`` created if missing, owned by us and closed to others (0700); one owned by
    another user is refused (its entries could be anyone's bytecode)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise LabError(
            f"the compile cache {path} is not a directory of uid {os.geteuid()}; remove it or set LABKIT_CACHE "
            "to a directory of your own",
            exit_code=ExitStatus.FAILURE,
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


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


FORMAT = 2  # of cache entries; bump when the layout changes


def compiler() -> dict[str, str]:
    """What else decides the bytecode: bcc's version and the kernel headers it reads."""
    import bcc  # heavy: clang behind it; loaded only when a template must be keyed or compiled

    release = platform.release()
    build = Path(f"/lib/modules/{release}/build")
    return {
        "bcc": str(getattr(bcc, "__version__", "")),
        "kernel": release,
        "headers": str(build.resolve()) if build.exists() else "",
    }


def cache_key(name: str, text: str, flags: list[str], comp: dict[str, str]) -> dict[str, str]:
    return {
        "source": name,
        "source_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "flags": json.dumps(flags),
        "compiler": json.dumps(comp, sort_keys=True),
    }


def _entry_name(key: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return f"{key['source'].removesuffix('.c')}-{digest}.json"


def _content_digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def templates(flags: list[str]) -> dict[str, Template]:
    """The three templates for ``flags``, compiled in parallel children when not cached
    (or when the cached entry fails its checks)."""
    todo: dict[str, tuple[Path, dict[str, str]]] = {}
    out: dict[str, Template] = {}
    cdir = private_dir(cache_dir())
    comp = compiler()
    for name in PROGRAMS:
        t, path, key = _cached(cdir, name, flags, comp)
        if t is not None:
            out[name] = t
        else:
            todo[name] = (path, key)
    if todo:
        with ThreadPoolExecutor(len(todo)) as pool:
            for name, t in zip(todo, pool.map(lambda n: _compile_child(n, flags, *todo[n]), todo)):
                out[name] = t
    return out


def template(name: str, flags: list[str]) -> Template:
    """One source's template for ``flags`` (labkit trace's), compiled in a child when not cached."""
    cdir = private_dir(cache_dir())
    t, path, key = _cached(cdir, name, flags, compiler())
    return t if t is not None else _compile_child(name, flags, path, key)


def _cached(cdir: Path, name: str, flags: list[str], comp: dict[str, str]) -> tuple[Template | None, Path, dict]:
    """The cached template of ``name`` for ``flags`` if a sound one is there; its path and key."""
    key = cache_key(name, source.program_text(name), flags, comp)
    path = cdir / _entry_name(key)
    if path.exists():
        t, why = _read_checked(path, key)
        if t is not None:
            return t, path, key
        notice(f"the compile cache entry {path} {why}; compiling bpf/{name} again")
        path.unlink(missing_ok=True)
    return None, path, key


def _read_checked(path: Path, key: dict[str, str]) -> tuple[Template | None, str]:
    """The template in ``path`` if it is whole and is the one ``key`` names, else why not."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return None, "is not a private file of this user"
        d = json.loads(path.read_text())
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            return None, "has an old or unknown format"
        if d.get("key") != key:
            return None, "was made from other sources, flags or compiler"
        if d.get("sha256") != _content_digest(d.get("payload")):
            return None, "is damaged or was changed (its SHA-256 does not match)"
        return _template(d["payload"], 0.0), ""
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        return None, f"cannot be read ({type(e).__name__})"


def _template(payload: dict, seconds: float) -> Template:
    progs = {fn: dict(p, insns=base64.b64decode(p["insns"], validate=True)) for fn, p in payload["progs"].items()}
    for p in progs.values():
        if len(p["insns"]) % 8 or not p["insns"]:
            raise ValueError("bytecode is not whole instructions")
    return Template(payload["maps"], progs, seconds)


def _compile_child(name: str, flags: list[str], path: Path, key: dict[str, str]) -> Template:
    t0 = time.monotonic()
    argv = [sys.executable, "-m", "labkit.embedded.ebpf.build", name, str(path), json.dumps(key), *flags]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0 or not path.exists():
        msg = _errors(r.stderr)
        raise LabError(f"compiling bpf/{name} failed: {msg}", exit_code=1)
    t, why = _read_checked(path, key)
    if t is None:
        raise LabError(f"compiling bpf/{name} wrote an entry that {why}", exit_code=1)
    return Template(t.maps, t.progs, time.monotonic() - t0)


def _errors(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "error" in ln.lower()]
    return " | ".join(lines[:6]) or stderr.strip()[-800:]


def _child(name: str, out: Path, key: dict[str, str], flags: list[str]) -> None:
    """In the child: compile with bcc, turn map fds into names, write the template."""
    from bcc import BPF  # heavy: only the compile child loads clang

    b = BPF(text=source.program_text(name), cflags=[*flags, "-Wno-unused-function"])
    fd_to_map: dict[int, str] = {}
    maps: dict[str, dict] = {}
    for m in (*MAP_NAMES, *TRACE_MAP_NAMES):
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
    for fn, ptype, attach in {**PROGRAMS, **TRACE_PROGRAMS}[name]:
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
    payload = {"maps": maps, "progs": progs}
    entry = {"format": FORMAT, "key": key, "sha256": _content_digest(payload), "payload": payload}
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(entry))
    os.replace(tmp, out)


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:])
