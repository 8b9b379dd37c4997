"""Benchmark: `labkit capture` during an iperf3 flood inside a lab.

client-pod sends to the webpod on its own node with iperf3 for --seconds (default 10) while
`labkit capture` listens on client-pod:eth0 and every lxc of kind-worker with its default
bounds. Printed: the flood's throughput; the capture process's peak RSS and its ratio to the
512 MB bound a capture must stay under; packets and bytes kept and their ratio to
--max-bytes; how long the command ran. Baseline, measured in the same run: the same capture
of one ping (what an idle capture costs).

    .venv/bin/python benchmarks/capture_flood.py [--seconds 10] [--max-bytes N]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.capture.bounds import DEFAULT_MAX_BYTES
from labkit.lab import connect

RSS_BOUND_MB = 512
LAB = "bench-capflood"
# runs the CLI in this process, then reports its peak RSS (VmHWM) on the last stderr line
WRAP = (
    "import sys; from labkit.cli import main; rc = main(sys.argv[1:]); sys.stdout.flush();"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
    "print(hwm.strip(), file=sys.stderr); sys.exit(rc)"
)


def capture(points: list[str], command: list[str], max_bytes: int, out: Path) -> dict:
    argv = [sys.executable, "-c", WRAP, "capture", "--lab", LAB, "--max-bytes", str(max_bytes), "-w", str(out)]
    for p in points:
        argv += ["-p", p]
    t0 = time.monotonic()
    r = subprocess.run([*argv, "--", *command], capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    hwm = re.search(r"VmHWM:\s+(\d+) kB", r.stderr)
    packets = sum(int(n) for n in re.findall(r"^== .*: (\d+) packets$", r.stdout, re.M))
    kept = sum(f.stat().st_size for f in out.glob("*.pcapng"))
    return {
        "rc": r.returncode,
        "seconds": seconds,
        "rss_mb": int(hwm.group(1)) / 1024 if hwm else float("nan"),
        "packets": packets,
        "kept_bytes": kept,
        "stderr": [ln for ln in r.stderr.splitlines() if not ln.startswith("VmHWM")],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    a = ap.parse_args()
    lab = connect(LAB)
    lab.down()
    lab.up()
    lab.apply()
    try:
        pods = lab.pods.set_index("name")
        server = next(n for n in pods.index if n.startswith("webpod") and pods.loc[n, "node"] == "kind-worker")
        ip = pods.loc[server, "ip"]
        points = ["client-pod:eth0", "kind-worker:lxc*"]
        srv = lab.backend.popen(server, ["iperf3", "-s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
                idle = capture(points, ["ping", "-c", "1", "-W", "2", ip], a.max_bytes, Path(d1))
                flood = capture(points, ["iperf3", "-c", ip, "-t", f"{a.seconds:g}", "-J"], a.max_bytes, Path(d2))
            r = lab.backend.run("client-pod", ["iperf3", "-c", ip, "-t", "2", "-J"], timeout=60)
            gbps = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        finally:
            srv.kill()
            srv.wait()
    finally:
        lab.down()
    print(f"flood: iperf3 client-pod -> {server} for {a.seconds:g} s, {gbps:.2f} Gbit/s (2 s run without capture)")
    for name, f in (("idle (1 ping)", idle), ("flood", flood)):
        print(
            f"{name:14s} rc={f['rc']} command {f['seconds']:.1f} s, peak RSS {f['rss_mb']:.0f} MB "
            f"({f['rss_mb'] / RSS_BOUND_MB:.2f}x the {RSS_BOUND_MB} MB bound), {f['packets']} packets kept, "
            f"{f['kept_bytes'] / 2**20:.1f} MiB on disk ({f['kept_bytes'] / a.max_bytes:.2f}x --max-bytes "
            f"{a.max_bytes >> 20} MiB)"
        )
        for line in f["stderr"]:
            print(f"    {line}")
    print(f"ratio flood/idle peak RSS: {flood['rss_mb'] / idle['rss_mb']:.2f}x")
    return 0 if flood["rss_mb"] < RSS_BOUND_MB else 1


if __name__ == "__main__":
    sys.exit(main())
