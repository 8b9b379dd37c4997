"""The bpf(2) system call, through ctypes: maps, pins, program load and cgroup attach.

Why not bcc for this: bcc binds maps and programs to the process that compiled them. The
lab needs the opposite: maps created once per node and pinned, programs loaded from a
cached compile, and any later process (CLI, notebook) reading the pinned maps fast, with
BPF_MAP_LOOKUP_BATCH. The attr layouts follow include/uapi/linux/bpf.h.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from typing import NamedTuple

from ...errors import LabError

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_BPF = 321  # x86_64

# commands
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY = 0, 1, 2, 3, 4
PROG_LOAD, OBJ_PIN, OBJ_GET, PROG_ATTACH, PROG_DETACH, PROG_TEST_RUN = 5, 6, 7, 8, 9, 10
OBJ_GET_INFO_BY_FD = 15
MAP_LOOKUP_BATCH, MAP_DELETE_BATCH = 24, 27

# map types
MAP_HASH, MAP_ARRAY, MAP_PERCPU_HASH, MAP_LRU_HASH, MAP_LPM_TRIE, MAP_RINGBUF = 1, 2, 5, 9, 11, 27
# program types and cgroup attach types
PROG_SCHED_CLS, PROG_CGROUP_SOCK_ADDR = 3, 18
ATTACH = {"connect4": 10, "sendmsg4": 14, "recvmsg4": 19, "getpeername4": 29}
BPF_F_ALLOW_MULTI = 2


def possible_cpus() -> int:
    """Number of possible CPUs (the value count of a per-CPU map entry)."""
    text = open("/sys/devices/system/cpu/possible").read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += (int(hi) if hi else int(lo)) - int(lo) + 1
    return n


def _sys(cmd: int, attr: ctypes.Array) -> int:
    r = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _attr(fmt: str, *vals) -> ctypes.Array:
    raw = struct.pack(fmt, *vals)
    buf = ctypes.create_string_buffer(128)
    ctypes.memmove(buf, raw, len(raw))
    return buf


def _addr(buf) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


# ------------------------------------------------------------------ objects
def obj_get(path: str) -> int:
    p = ctypes.create_string_buffer(path.encode())
    try:
        return _sys(OBJ_GET, _attr("=QII", _addr(p), 0, 0))
    except OSError as e:
        raise LabError(f"cannot open pinned BPF object {path}: {e.strerror}", exit_code=1) from None


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(path.encode())
    _sys(OBJ_PIN, _attr("=QII", _addr(p), fd, 0))


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int, name: str) -> int:
    n = name.encode()[:15].ljust(16, b"\0")
    return _sys(MAP_CREATE, _attr("=7I16s", map_type, key_size, value_size, max_entries, flags, 0, 0, n))


class MapInfo:
    def __init__(self, fd: int) -> None:
        info = ctypes.create_string_buffer(88)
        _sys(OBJ_GET_INFO_BY_FD, _attr("=IIQ", fd, 88, _addr(info)))
        (self.type, self.id, self.key_size, self.value_size, self.max_entries, self.flags, name) = struct.unpack_from(
            "=6I16s", info.raw
        )
        self.name = name.rstrip(b"\0").decode()


# ------------------------------------------------------------------ elements
def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    try:
        _sys(MAP_LOOKUP_ELEM, _attr("=IIQQQ", fd, 0, _addr(k), _addr(v), 0))
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return v.raw


def update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    _sys(MAP_UPDATE_ELEM, _attr("=IIQQQ", fd, 0, _addr(k), _addr(v), flags))


def delete(fd: int, key: bytes) -> bool:
    """Delete one element; False if it was not there."""
    k = ctypes.create_string_buffer(key, len(key))
    try:
        _sys(MAP_DELETE_ELEM, _attr("=IIQQQ", fd, 0, _addr(k), 0, 0))
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    return True


def keys(fd: int, key_size: int) -> list[bytes]:
    """All keys by BPF_MAP_GET_NEXT_KEY (LPM tries have no batch ops)."""
    out: list[bytes] = []
    cur = None
    nxt = ctypes.create_string_buffer(key_size)
    while True:
        k = ctypes.create_string_buffer(cur, key_size) if cur is not None else None
        try:
            _sys(MAP_GET_NEXT_KEY, _attr("=IIQQ", fd, 0, _addr(k), _addr(nxt)))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return out
            raise
        cur = nxt.raw
        out.append(cur)


def lookup_batch(fd: int, key_size: int, value_size: int, max_entries: int) -> tuple[bytes, bytes, int]:
    """Every (key, value) of a hash map with BPF_MAP_LOOKUP_BATCH: one or a few system
    calls for the whole map, into two flat buffers (count entries each)."""
    chunk = max(1, min(max_entries, 1 << 17))
    keys_buf = ctypes.create_string_buffer(key_size * chunk)
    vals_buf = ctypes.create_string_buffer(value_size * chunk)
    in_b = ctypes.create_string_buffer(8)
    out_b = ctypes.create_string_buffer(8)
    kparts, vparts, total = [], [], 0
    first = True
    while True:
        attr = _attr(
            "=QQQQIIQQ", 0 if first else _addr(in_b), _addr(out_b), _addr(keys_buf), _addr(vals_buf), chunk, fd, 0, 0
        )
        done = False
        try:
            _sys(MAP_LOOKUP_BATCH, attr)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            done = True
        n = struct.unpack_from("=I", attr.raw, 32)[0]
        if n:
            kparts.append(keys_buf.raw[: n * key_size])
            vparts.append(vals_buf.raw[: n * value_size])
            total += n
        if done:
            break
        ctypes.memmove(in_b, out_b, 8)
        first = False
    return b"".join(kparts), b"".join(vparts), total


def delete_batch(fd: int, keys_blob: bytes, key_size: int) -> None:
    n = len(keys_blob) // key_size
    if not n:
        return
    k = ctypes.create_string_buffer(keys_blob, len(keys_blob))
    try:
        _sys(MAP_DELETE_BATCH, _attr("=QQQQIIQQ", 0, 0, _addr(k), 0, n, fd, 0, 0))
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


# ------------------------------------------------------------------ programs
class VerifierError(Exception):
    def __init__(self, name: str, err: str, log: str) -> None:
        super().__init__(f"{name}: {err}")
        self.name, self.err, self.log = name, err, log


def prog_load(insns: bytes, prog_type: int, name: str, expected_attach_type: int = 0) -> int:
    """BPF_PROG_LOAD; on failure raise VerifierError carrying the verifier's log."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    n = name.encode()[:15].ljust(16, b"\0")
    for level, size in ((0, 0), (1, 1 << 22)):
        log = ctypes.create_string_buffer(size) if size else None
        attr = _attr(
            "=IIQQIIQII16sII",
            prog_type,
            len(insns) // 8,
            _addr(code),
            _addr(lic),
            level,
            size,
            _addr(log),
            0,
            0,
            n,
            0,
            expected_attach_type,
        )
        try:
            return _sys(PROG_LOAD, attr)
        except OSError as e:
            if level == 1:
                text = log.value.decode(errors="replace") if log is not None else ""
                raise VerifierError(name, e.strerror or str(e), text) from None
    raise AssertionError("unreachable")


class ProgRun(NamedTuple):
    """What BPF_PROG_TEST_RUN hands back: the program's return code, the packet as the
    program left it, the context (``struct __sk_buff`` for tc programs) after the run, and
    the mean run time in nanoseconds."""

    retval: int
    data: bytes
    ctx: bytes
    duration_ns: int


def prog_test_run(prog_fd: int, data: bytes, ctx: bytes = b"", repeat: int = 1) -> ProgRun:
    """BPF_PROG_TEST_RUN: run a loaded program on ``data`` (a whole frame for tc programs)
    in the calling thread's network namespace. The kernel builds an skb from ``data`` and
    ``ctx`` and runs the program on it; nothing is sent, a redirect is only a return code.
    The attr layout is ``struct { ... } test`` of union bpf_attr."""
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(len(data) + 256)  # room for programs that grow the packet
    cin = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    cout = ctypes.create_string_buffer(len(ctx)) if ctx else None
    attr = _attr(
        "=IIIIQQIIIIQQIII",
        prog_fd,
        0,
        len(data),
        len(dout),
        _addr(din),
        _addr(dout),
        repeat,
        0,
        len(ctx),
        len(ctx),
        _addr(cin),
        _addr(cout),
        0,
        0,
        0,
    )
    _sys(PROG_TEST_RUN, attr)
    retval, _, size_out = struct.unpack_from("=III", attr.raw, 4)
    duration = struct.unpack_from("=I", attr.raw, 36)[0]
    return ProgRun(retval, dout.raw[:size_out], cout.raw if cout is not None else b"", duration)


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = BPF_F_ALLOW_MULTI) -> None:
    _sys(PROG_ATTACH, _attr("=IIII", target_fd, prog_fd, attach_type, flags))


LINK_CREATE = 28
TCX_INGRESS, TCX_EGRESS = 46, 47


def link_create(prog_fd: int, target_ifindex: int, attach_type: int) -> int:
    """BPF_LINK_CREATE (tcx): attach to an interface of the calling thread's netns; the
    attachment lives as long as the returned link fd, or a pin of it."""
    return _sys(LINK_CREATE, _attr("=IIII", prog_fd, target_ifindex, attach_type, 0))


BPF_F_BEFORE = 1 << 3  # tcx: put the program first in line (no relative program given)


def link_create_first(prog_fd: int, target_ifindex: int, attach_type: int) -> int:
    """BPF_LINK_CREATE (tcx) ahead of every program already there (labkit trace sees a
    packet before the datapath decides its fate); the link lives as long as its fd."""
    return _sys(LINK_CREATE, _attr("=IIIIIIQ", prog_fd, target_ifindex, attach_type, BPF_F_BEFORE, 0, 0, 0))


# ------------------------------------------------------------------ introspection
PROG_GET_FD_BY_ID, PROG_QUERY = 13, 16
PROG_TRACEPOINT = 5
_PROG_INFO = 88  # the part of struct bpf_prog_info read here (up to name[16])


def _prog_info(fd: int, xlated: ctypes.Array | None = None) -> bytes:
    info = ctypes.create_string_buffer(_PROG_INFO)
    if xlated is not None:
        struct.pack_into("=I", info, 20, len(xlated))
        struct.pack_into("=Q", info, 32, _addr(xlated))
    _sys(OBJ_GET_INFO_BY_FD, _attr("=IIQ", fd, _PROG_INFO, _addr(info)))
    return info.raw


def prog_id_name(fd: int) -> tuple[int, str]:
    """(id, name) of a loaded program."""
    raw = _prog_info(fd)
    return struct.unpack_from("=I", raw, 4)[0], raw[64:80].split(b"\0")[0].decode()


def prog_xlated(fd: int) -> bytes:
    """The program as the verifier rewrote it (context accesses turned into the kernel's
    own struct offsets). Root only."""
    n = struct.unpack_from("=I", _prog_info(fd), 20)[0]
    buf = ctypes.create_string_buffer(n)
    _prog_info(fd, buf)
    return buf.raw


def prog_fd_by_id(prog_id: int) -> int:
    return _sys(PROG_GET_FD_BY_ID, _attr("=III", prog_id, 0, 0))


def tcx_prog_ids(ifindex: int, attach_type: int) -> list[int]:
    """Ids of the programs attached with tcx to ``ifindex`` of the calling thread's netns."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _attr("=IIIIQI", ifindex, attach_type, 0, 0, ctypes.addressof(ids), 64)
    try:
        _sys(PROG_QUERY, attr)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINVAL):
            return []
        raise
    count = struct.unpack_from("=I", attr.raw, 24)[0]
    return list(ids[: min(count, 64)])


# ------------------------------------------------------------------ perf events (tracepoints)
SYS_PERF_EVENT_OPEN = 298  # x86_64
PERF_TYPE_TRACEPOINT = 2
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408


def tracepoint_attach(tp_id: int, prog_fd: int) -> int:
    """Run ``prog_fd`` on tracepoint ``tp_id`` (its id in tracefs), on every CPU; the
    program stays attached as long as the returned perf event fd is open."""
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIQQQ", attr, 0, PERF_TYPE_TRACEPOINT, 128, tp_id, 1, PERF_SAMPLE_RAW)
    struct.pack_into("=I", attr, 48, 1)  # wakeup_events
    fd = _libc.syscall(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    try:
        for req, arg in ((PERF_EVENT_IOC_SET_BPF, prog_fd), (PERF_EVENT_IOC_ENABLE, 0)):
            if _libc.ioctl(fd, ctypes.c_ulong(req), ctypes.c_int(arg)) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
    except BaseException:
        os.close(fd)
        raise
    return int(fd)
