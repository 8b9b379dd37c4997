"""Benchmark: dump a 100k-entry CT map into a DataFrame, labkit vs `bpftool map dump -j`.

Creates a throw-away LRU hash shaped like cilium_ct4_global (plus an empty
cilium_ct_any4_global) pinned under /sys/fs/bpf/labkit/bench-ct/<node>/, fills it with
100,000 entries, then times:
  labkit:  NodeMapReader.ct()  (BPF_MAP_LOOKUP_BATCH -> numpy -> DataFrame, schema CT)
  bpftool: bpftool map dump pinned ... -j, json.loads, and a DataFrame of the same columns
Targets: labkit <= 1 s and faster than bpftool. Needs root and bpffs.

    .venv/bin/python benchmarks/ct_dump.py [--entries 100000]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from labkit.embedded import bpffs
from labkit.embedded.ebpf import bpfsys
from labkit.embedded.ebpf import layouts as L
from labkit.embedded.ebpf.maps import NodeMapReader
from labkit.embedded.names import BPFFS_ROOT

MAP_UPDATE_BATCH = 26


def fill(fd: int, n: int) -> None:
    rng = random.Random(1)
    keys = np.zeros(n, dtype=L.CT_KEY)
    vals = np.zeros(n, dtype=L.CT_ENTRY)
    keys["daddr"] = 0x0AF40100 + np.arange(n) % 250
    keys["saddr"] = 0x0AF40200 + (np.arange(n) // 250) % 250
    keys["sport"] = 1024 + np.arange(n) % 60000
    keys["dport"] = 80
    keys["nexthdr"] = 6
    keys["flags"] = np.arange(n) % 2
    vals["lifetime"] = [rng.randrange(1000, 30000) for _ in range(n)]
    vals["rx_flags_seen"], vals["tx_flags_seen"], vals["flags"] = 0x12, 0x02, 0x10
    vals["src_sec_id"] = 30542
    kb, vb = keys.tobytes(), vals.tobytes()
    kbuf = ctypes.create_string_buffer(kb, len(kb))
    vbuf = ctypes.create_string_buffer(vb, len(vb))
    attr = bpfsys._attr("=QQQQIIQQ", 0, 0, ctypes.addressof(kbuf), ctypes.addressof(vbuf), n, fd, 0, 0)
    bpfsys._sys(MAP_UPDATE_BATCH, attr)


def bpftool_frame(path: str) -> pd.DataFrame:
    out = subprocess.run(
        ["bpftool", "map", "dump", "pinned", path, "-j"], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for e in json.loads(out):
        k = bytes(int(x, 16) for x in e["key"])
        v = bytes(int(x, 16) for x in e["value"])
        daddr, saddr, dport, sport, nh, fl = struct.unpack(">4s4sHHBB", k)
        life, eflags, revnat = struct.unpack_from("<IHH", v, 32)
        rows.append(
            {
                "proto": {6: "TCP"}.get(nh, str(nh)),
                "direction": "IN" if fl & 1 else "OUT",
                "src_ip": socket.inet_ntoa(daddr),
                "src_port": sport,
                "dst_ip": socket.inet_ntoa(saddr),
                "dst_port": dport,
                "expires": life,
                "flags": eflags,
                "rev_nat": socket.ntohs(revnat),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    a = ap.parse_args()
    bpffs.ensure()
    pin = BPFFS_ROOT / "bench-ct" / "node"
    pin.mkdir(parents=True, exist_ok=True)
    try:
        fd = bpfsys.map_create(bpfsys.MAP_LRU_HASH, 14, 56, 131072, 0, "cilium_ct4_global")
        bpfsys.obj_pin(fd, str(pin / "cilium_ct4_global"))
        fd2 = bpfsys.map_create(bpfsys.MAP_LRU_HASH, 14, 56, 65536, 0, "cilium_ct_any4_global")
        bpfsys.obj_pin(fd2, str(pin / "cilium_ct_any4_global"))
        t = time.perf_counter()
        fill(fd, a.entries)
        print(f"filled {a.entries} entries in {time.perf_counter() - t:.2f} s")
        reader = NodeMapReader("node", pin)
        best = []
        for _ in range(3):
            t = time.perf_counter()
            df = reader.ct()
            best.append(time.perf_counter() - t)
        assert len(df) >= a.entries * 0.99, len(df)
        t = time.perf_counter()
        bt = bpftool_frame(str(pin / "cilium_ct4_global"))
        tb = time.perf_counter() - t
        assert len(bt) == len(df)
        lk = min(best)
        print(f"labkit  NodeMapReader.ct(): {lk:.3f} s for {len(df)} rows (best of 3; DataFrame, schema CT)")
        print(f"bpftool map dump -j + json + DataFrame: {tb:.3f} s")
        print(
            f"speed-up: {tb / lk:.1f}x; target <= 1 s: {'met' if lk <= 1 else 'MISSED'}; "
            f"faster than bpftool: {'yes' if lk < tb else 'NO'}"
        )
        os.close(fd)
        os.close(fd2)
    finally:
        shutil.rmtree(BPFFS_ROOT / "bench-ct", ignore_errors=True)
        try:
            BPFFS_ROOT.rmdir()
        except OSError:
            pass


if __name__ == "__main__":
    main()
