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
import os
import signal
import struct
import sys
import time
from pathlib import Path

from . import bpfsys
from .ringbuf import RingBuffer, poll_all

REC_HDR = struct.Struct("=QI")
MAX_BYTES = 16 << 20


class _Sink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "ab", buffering=0)  # a record is in the file before it leaves the ring

    def write(self, data: bytes) -> None:
        self.f.write(REC_HDR.pack(time.time_ns(), len(data)) + data)
        if self.f.tell() > MAX_BYTES:
            self.f.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.f = open(self.path, "ab", buffering=0)


def run(bpffs: Path, out_dir: Path, nodes: list[str], ready_fd: int = -1) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks = [_Sink(out_dir / f"{n}.bin") for n in nodes]
    fds = [bpfsys.obj_get(str(bpffs / n / "cilium_events")) for n in nodes]
    rings = [RingBuffer(fd, bpfsys.MapInfo(fd).max_entries, sink.write) for fd, sink in zip(fds, sinks)]
    if ready_fd >= 0:
        os.write(ready_fd, b"ready")
        os.close(ready_fd)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        poll_all(rings, 200)


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
