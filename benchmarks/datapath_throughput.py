"""Benchmark: same-node pod -> pod with the eBPF datapath vs kernel routing vs a veth pair.

Three setups on this machine, measured in one run:
  ebpf:   a lab with labkit's eBPF datapath (bpf_redirect_peer between the two lxcs)
  kernel: a lab with plain kernel routing (pod -> lxc -> node routing -> lxc -> pod)
  veth:   two namespaces joined by one veth pair (the limit: no routing hop at all)
For each: iperf3 TCP throughput (client-pod -> the webpod on its node) and a TCP
request/response rate (1-byte ping-pong over one connection, from a small Python client:
its absolute figure is Python-bound, the ratios compare the paths).
Targets: ebpf >= 1.0x kernel routing, >= 0.9x the veth pair.

Also prints compile and load time per node for a cold (empty cache) and a warm `up`.

    .venv/bin/python benchmarks/datapath_throughput.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.embedded import netns
from labkit.embedded.backend import EmbeddedBackend
from labkit.lab import Lab

RR_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def serve(c=c):
        while True:
            d = c.recv(64)
            if not d:
                return
            c.sendall(d)
    threading.Thread(target=serve, daemon=True).start()
"""
RR_CLIENT = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n, end = 0, time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < end:
    c.sendall(b"x"); c.recv(64); n += 1
print(n / float(sys.argv[3]))
"""
RR_PORT = 7777


class Ns:
    """Run things in a plain network namespace (the veth pair setup)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def popen(self, argv, **kw):
        return subprocess.Popen(netns.exec_argv(self.name, argv), **kw)

    def run(self, argv, timeout=120):
        return subprocess.run(netns.exec_argv(self.name, argv), capture_output=True, text=True, timeout=timeout)


class PodNs:
    def __init__(self, lab: Lab, pod: str) -> None:
        self.lab, self.pod = lab, pod

    def popen(self, argv, **kw):
        return self.lab.backend.popen(self.pod, argv, **kw)

    def run(self, argv, timeout=120):
        return self.lab.backend.run(self.pod, argv, timeout=timeout)


SERVER_CPU, CLIENT_CPU = ("1", "0") if (os.cpu_count() or 1) > 1 else ("0", "0")


def measure(server, client, ip: str, seconds: float) -> tuple[float, float]:
    """Client and server pinned to fixed CPUs (taskset), the same in every setup, so the
    scheduler's placement does not decide the figures."""
    pin_s, pin_c = ["taskset", "-c", SERVER_CPU], ["taskset", "-c", CLIENT_CPU]
    procs = [
        server.popen([*pin_s, "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        server.popen(
            [*pin_s, sys.executable, "-c", RR_SERVER, str(RR_PORT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ),
    ]
    try:
        procs[1].stdout.readline()
        time.sleep(0.3)
        r = client.run([*pin_c, "iperf3", "-c", ip, "-t", str(seconds), "-J"], timeout=seconds + 30)
        gbps = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        r = client.run([*pin_c, sys.executable, "-c", RR_CLIENT, ip, str(RR_PORT), str(seconds)], timeout=seconds + 30)
        rr = float(r.stdout.strip())
        return gbps, rr
    finally:
        for p in procs:
            p.kill()
            p.wait()


def lab_pair(datapath: str, env_cache: str | None = None) -> tuple[Lab, dict]:
    lab = Lab(EmbeddedBackend(f"bench-{datapath}"))
    lab.down()
    t = time.monotonic()
    if env_cache:
        os.environ["LABKIT_CACHE"] = env_cache
    lab.up(datapath=datapath)
    up_s = time.monotonic() - t
    lab.apply()
    figures = {"up_s": round(up_s, 2)}
    dpj = Path(lab.backend.names.state_dir) / "datapath.json"
    if dpj.exists():
        figures.update(json.loads(dpj.read_text()))
    return lab, figures


def veth_pair() -> tuple[Ns, Ns, str]:
    a, b = Ns("lk.benchveth.a"), Ns("lk.benchveth.b")
    netns.delete_netns([a.name, b.name])
    netns.add_netns([a.name, b.name])
    netns.ip_batch(
        a.name,
        [
            "link set lo up",
            f"link add eth0 type veth peer name eth0 netns {b.name}",
            "addr add 10.99.0.1/24 dev eth0",
            "link set eth0 up",
        ],
    )
    netns.ip_batch(b.name, ["link set lo up", "addr add 10.99.0.2/24 dev eth0", "link set eth0 up"])
    return a, b, "10.99.0.2"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5, help="length of each measurement")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; setups are interleaved, medians reported")
    a = ap.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"ebpf": [], "kernel": [], "veth": []}
    cold = tempfile.mkdtemp(prefix="labkit-cache-")
    saved_cache = os.environ.get("LABKIT_CACHE")
    va = vb = None
    try:
        lab, fig_cold = lab_pair("ebpf", env_cache=cold)  # cold: compiles into an empty cache
        lab.down()
        if saved_cache is None:
            os.environ.pop("LABKIT_CACHE", None)
        else:
            os.environ["LABKIT_CACHE"] = saved_cache
        lab, fig_warm = lab_pair("ebpf")
        print(
            f"compile (cold cache, 3 sources in parallel): {fig_cold['compile_s']:.2f} s; "
            f"load+attach per node: {fig_cold['load_s']}"
        )
        print(
            f"compile (warm cache): {fig_warm['compile_s']:.3f} s; load+attach per node: {fig_warm['load_s']}; "
            f"whole `up`: cold {fig_cold['up_s']} s, warm {fig_warm['up_s']} s"
        )
        klab, _ = lab_pair("kernel")
        va, vb, vip = veth_pair()
        setups = {}
        for name, lb in (("ebpf", lab), ("kernel", klab)):
            p = lb.pods.set_index("name")
            web = p[(p.app == "whoami") & (p.node == "kind-worker")].index[0]
            setups[name] = (PodNs(lb, web), PodNs(lb, "client-pod"), p.loc[web, "ip"])
        setups["veth"] = (vb, va, vip)
        for _ in range(a.repeat):
            for name, (srv, cli, ip) in setups.items():
                runs[name].append(measure(srv, cli, ip, a.seconds))
    finally:
        for name in ("bench-ebpf", "bench-kernel"):
            Lab(EmbeddedBackend(name)).down()
        if va is not None:
            netns.delete_netns([va.name, vb.name])
        import shutil

        shutil.rmtree(cold, ignore_errors=True)
    med = {k: (statistics.median(g for g, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()}
    print(f"{'setup':8} {'TCP Gbit/s':>11} {'RR trans/s':>11}   (median of {a.repeat}; all runs)")
    for k, (g, r) in med.items():
        print(f"{k:8} {g:11.2f} {r:11.0f}   " + ", ".join(f"{x:.2f}/{y:.0f}" for x, y in runs[k]))
    e, k, v = med["ebpf"], med["kernel"], med["veth"]
    print(f"ebpf / kernel routing: throughput {e[0] / k[0]:.2f}x, RR {e[1] / k[1]:.2f}x (target >= 1.0x)")
    print(f"ebpf / veth pair:      throughput {e[0] / v[0]:.2f}x, RR {e[1] / v[1]:.2f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()
