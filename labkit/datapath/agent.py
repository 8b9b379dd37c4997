"""The lab's event agent: drains every node's cilium_events ring buffer into files.

Cilium's datapath writes trace/drop notifications into a perf ring that the agent reads
and hands to ``cilium monitor`` and Hubble. Here one small process per lab (started at
``up``, in the lab's cgroup so ``down`` ends it with the lab) polls the ring buffers of
all nodes and appends each record, stamped with the wall-clock time, to
<state_dir>/events/<node>.bin. The file is bounded: past MAX_BYTES it becomes
<node>.bin.1 (the previous .1 is dropped), so a lab left running never fills the disk.
Readers (``labkit monitor``, ``lab.monitor()``, ``lab.flows()``) decode those files, so
any process can look at past events or follow new ones.

Record: u64 time_ns (CLOCK_REALTIME), u32 length, then the raw struct trace_notify.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import struct
import sys
import time
from pathlib import Path

REC_HDR = struct.Struct("=QI")
MAX_BYTES = 16 << 20
_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class _Sink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "ab")

    def write(self, data: bytes) -> None:
        self.f.write(REC_HDR.pack(time.time_ns(), len(data)) + data)
        if self.f.tell() > MAX_BYTES:
            self.f.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.f = open(self.path, "ab")


def run(bpffs: Path, out_dir: Path, nodes: list[str], ready_fd: int = -1) -> None:
    from . import bpfsys
    lib = ctypes.CDLL("libbcc.so.0")
    lib.bpf_new_ringbuf.restype = ctypes.c_void_p
    lib.bpf_new_ringbuf.argtypes = [ctypes.c_int, _CB, ctypes.c_void_p]
    lib.bpf_add_ringbuf.restype = ctypes.c_int
    lib.bpf_add_ringbuf.argtypes = [ctypes.c_void_p, ctypes.c_int, _CB, ctypes.c_void_p]
    lib.bpf_poll_ringbuf.restype = ctypes.c_int
    lib.bpf_poll_ringbuf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks = [_Sink(out_dir / f"{n}.bin") for n in nodes]

    def on_event(ctx, data, size) -> int:
        sinks[ctx or 0].write(ctypes.string_at(data, size))
        return 0

    cb = _CB(on_event)
    rb = None
    for i, n in enumerate(nodes):
        fd = bpfsys.obj_get(str(bpffs / n / "cilium_events"))
        if rb is None:
            rb = lib.bpf_new_ringbuf(fd, cb, ctypes.c_void_p(i))
        else:
            lib.bpf_add_ringbuf(rb, fd, cb, ctypes.c_void_p(i))
    if ready_fd >= 0:
        os.write(ready_fd, b"ready")
        os.close(ready_fd)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        lib.bpf_poll_ringbuf(rb, 200)
        for s in sinks:
            s.f.flush()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpffs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready-fd", type=int, default=-1)
    ap.add_argument("nodes", nargs="+")
    a = ap.parse_args(argv)
    run(Path(a.bpffs), Path(a.out), a.nodes, a.ready_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
