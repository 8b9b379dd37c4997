"""Benchmark: what `labkit trace` costs, and how many events it sustains.

One eBPF lab, same-node iperf3 TCP (client-pod -> the webpod on its node), three ways in
one run, interleaved:
  off:      no trace (the baseline)
  other:    tracing 'tcp and port 80' while iperf3 runs on port 5201: every packet passes
            our tc hooks (filter evaluated, not matched) and every skb tracepoint looks
            its skb up (not tracked): the cost a trace puts on traffic it does not follow
  followed: tracing 'tcp and port 5201': every iperf3 packet is followed, each of its
            events goes through the ring buffer to Python: events per second sustained,
            and events lost when the ring buffer is full
Also the fixed cost of one trace of a command that does nothing (load, attach, detach).

    .venv/bin/python benchmarks/trace_overhead.py [--seconds 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.ebpf import skbfilter, tracer
from labkit.lab import Lab

LAB = "bench-trace"
# client and server pinned to fixed CPUs, the same in every setup (as datapath_throughput.py)
SERVER_CPU, CLIENT_CPU = ("1", "0") if (os.cpu_count() or 1) > 1 else ("0", "0")


def iperf(lab: Lab, server: str, ip: str, seconds: float) -> float:
    """Gbit/s of one iperf3 run (retried when the server was not listening yet)."""
    for attempt in range(3):
        srv = lab.backend.popen(
            server,
            ["taskset", "-c", SERVER_CPU, "iperf3", "-s", "-1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5 + attempt)
            argv = ["taskset", "-c", CLIENT_CPU, "iperf3", "-c", ip, "-t", str(seconds), "-J"]
            r = lab.backend.run("client-pod", argv, timeout=seconds + 30)
            end = json.loads(r.stdout or "{}").get("end", {})
            if "sum_received" in end:
                return end["sum_received"]["bits_per_second"] / 1e9
        finally:
            srv.kill()
            srv.wait()
    raise RuntimeError(f"iperf3 failed: {r.stdout[-300:]}")


def traced(lab: Lab, server: str, ip: str, seconds: float, flt: str) -> tuple[float, dict, float]:
    """(Gbit/s, kernel counters, seconds the trace was attached) of iperf3 under a trace."""
    b = lab.backend
    assert isinstance(b, EmbeddedBackend)
    out: dict[str, float] = {}
    opts = tracer.Options(skbfilter.parse(flt), (), seconds + 30, tracer.MAX_EVENTS)
    t0 = time.monotonic()
    session, _ = tracer.run(b.names, b.plan(), opts, lambda: out.update(g=iperf(lab, server, ip, seconds)))
    return out["g"], session.counters | {"read": len(session.records)}, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4, help="length of each iperf3 run")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; setups interleaved, medians reported")
    a = ap.parse_args()
    lab = Lab(EmbeddedBackend(LAB))
    lab.down()
    try:
        lab.up()
        lab.apply()
        pods = lab.pods.set_index("name")
        web = pods[(pods.app == "whoami") & (pods.node == pods.loc["client-pod", "node"])]
        server, ip = web.index[0], web.ip.iloc[0]
        lab.trace("client-pod", ["true"])  # compile the templates (cached) outside the figures
        fixed = []
        for _ in range(3):
            t = time.monotonic()
            lab.trace("client-pod", ["true"], filter="tcp and port 80")
            fixed.append(time.monotonic() - t)
        runs: dict[str, list[float]] = {"off": [], "other": [], "followed": []}
        rates, lost, read = [], [], []
        for _ in range(a.repeat):
            runs["off"].append(iperf(lab, server, ip, a.seconds))
            runs["other"].append(traced(lab, server, ip, a.seconds, "tcp and port 80")[0])
            g, counters, attached = traced(lab, server, ip, a.seconds, "tcp and port 5201")
            runs["followed"].append(g)
            rates.append(counters["emitted"] / a.seconds)
            lost.append(counters["lost"])
            read.append(counters["read"] / max(1, counters["emitted"]))
    finally:
        lab.down()
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"same-node iperf3, {a.seconds:g} s runs, median of {a.repeat}; all runs:")
    for k, v in runs.items():
        print(f"  {k:9} {med[k]:6.2f} Gbit/s   " + ", ".join(f"{x:.2f}" for x in v))
    print(f"overhead, tracing other traffic:  {med['other'] / med['off']:.2f}x of untraced throughput")
    print(f"overhead, following every packet: {med['followed'] / med['off']:.2f}x of untraced throughput")
    print(
        f"events sustained while following: {statistics.median(rates):,.0f} events/s emitted; "
        f"lost (ring buffer full): {statistics.median(lost):,.0f}; read by the tracer: {min(read):.0%}"
    )
    print(f"fixed cost of one trace (load, attach, detach, 0.3 s settle): {statistics.median(fixed):.2f} s")


if __name__ == "__main__":
    main()
