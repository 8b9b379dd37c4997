"""Benchmark: time from `labkit up` + `apply` to every pod answering; memory of many labs.

Prints figures and ratios against a baseline measured in the same run: the bare kernel
work of the same topology (namespaces, veths, addresses, routes) done by `ip -batch` alone.
Targets: up + apply <= 10 s; <= 100 MB per lab with 10 labs up.
Run as root: .venv/bin/python benchmarks/lab_up.py [--labs 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit.embedded.backend import EmbeddedBackend  # noqa: E402
from labkit.embedded.processes import lab_pids  # noqa: E402
from labkit.lab import Lab  # noqa: E402

CLI = [sys.executable, "-m", "labkit.cli"]


def answering(lab: Lab) -> None:
    """Every whoami answers a curl from client-pod, every pod answers a ping."""
    pods = lab.pods
    for p in pods.itertuples():
        if p.app == "whoami":
            lab.pod("client-pod").sh(["curl", "-s", "--max-time", "5", f"http://{p.ip}"])
        elif p.name != "client-pod":
            lab.pod("client-pod").sh(["ping", "-c", "1", "-W", "2", p.ip])


def cold(name: str, datapath: str) -> float:
    """New processes, as a user types them: labkit up; labkit apply; then probes."""
    t = time.perf_counter()
    subprocess.run([*CLI, "up", "--lab", name, "--datapath", datapath], check=True, capture_output=True)
    subprocess.run([*CLI, "apply", "--lab", name, "cluster/manifests"], check=True, capture_output=True, cwd=ROOT)
    answering(Lab(EmbeddedBackend(name)))
    return time.perf_counter() - t


def warm(name: str, datapath: str) -> float:
    """In a process that already has labkit loaded (a notebook kernel)."""
    lab = Lab(EmbeddedBackend(name))
    t = time.perf_counter()
    lab.up(datapath=datapath)
    lab.apply()
    answering(lab)
    return time.perf_counter() - t


def baseline(name: str) -> float:
    """The same namespaces and veths, addresses and routes by `ip` alone (no labkit)."""
    from labkit import plan as planning
    from labkit import spec
    from labkit.embedded import topology
    from labkit.embedded.names import LabNames

    names = LabNames(name)
    p, _ = planning.extend(planning.initial(spec.load_cluster()), spec.load_manifests([spec.CLUSTER_DIR / "manifests"]))
    t = time.perf_counter()
    all_ns = [names.kind_net] + [names.node(n.name) for n in p.nodes] + [names.pod(x.namespace, x.name) for x in p.pods]
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in all_ns), text=True, check=True)

    def batch(ns, cmds):
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)

    batch(names.kind_net, topology.kind_net_commands(p))
    for n in p.nodes:
        batch(names.node(n.name), topology.node_commands(names, p, n))
        batch(names.node(n.name), [c for x in p.pods_on(n.name) for c in topology.lxc_commands(names, x)])
    for x in p.pods:
        batch(names.pod(x.namespace, x.name), topology.pod_commands(x, p.node(x.node)))
    elapsed = time.perf_counter() - t
    subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns delete {n}\n" for n in all_ns), text=True)
    return elapsed


def mem_available_kb() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


def rss_kb(pids) -> int:
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labs", type=int, default=10)
    ap.add_argument("--datapath", default="ebpf", help="datapath of the many-labs run")
    args = ap.parse_args()
    tag = f"bu{os.getpid() % 10000}"
    base = min(baseline(f"{tag}b{i}") for i in range(3))
    print(f"baseline (same topology, bare ip -batch):   {base * 1000:8.0f} ms")
    for dp in ("kernel", "ebpf"):
        t_cold = cold(f"{tag}c", dp)
        EmbeddedBackend(f"{tag}c").down()
        t_warm = min(warm(f"{tag}w{i}", dp) for i in range(3))
        for i in range(3):
            EmbeddedBackend(f"{tag}w{i}").down()
        print(
            f"[{dp:6}] up + apply + every pod answering, cold CLI: {t_cold * 1000:6.0f} ms "
            f"({t_cold / base:5.1f}x baseline; target <= 10 s)"
        )
        print(
            f"[{dp:6}] up + apply + every pod answering, warm API: {t_warm * 1000:6.0f} ms "
            f"({t_warm / base:5.1f}x baseline)"
        )

    before = mem_available_kb()
    t = time.perf_counter()
    names = [f"{tag}m{i}" for i in range(args.labs)]
    try:
        for n in names:
            lab = Lab(EmbeddedBackend(n))
            lab.up(datapath=args.datapath)
            lab.apply()
        t_many = time.perf_counter() - t
        used = before - mem_available_kb()
        procs = rss_kb(pid for n in names for pid in lab_pids(EmbeddedBackend(n).names))
        per_lab = t_many / args.labs * 1000
        print(f"{args.labs} labs up side by side ({args.datapath}):       {t_many:8.2f} s   ({per_lab:.0f} ms per lab)")
        print(f"memory per lab (MemAvailable drop / labs):  {used / 1024 / args.labs:8.1f} MB  (target <= 100 MB)")
        print(f"  of which workload processes (RSS):       {procs / 1024 / args.labs:8.1f} MB")
    finally:
        for n in names:
            EmbeddedBackend(n).down()


if __name__ == "__main__":
    main()
