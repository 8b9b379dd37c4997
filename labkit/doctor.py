"""``labkit doctor``: is this machine ready for the embedded backend? Says how to fix each."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _probe(argv: list[str]) -> tuple[bool, str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    lines = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, lines[-1] if lines else ""


BCC_PROBE = """
from bcc import BPF
b = BPF(text="int f(struct __sk_buff *skb) { return 0; }")
b.load_func("f", BPF.SCHED_CLS)
print("compiled and loaded a tc program")
"""


def run_checks() -> list[Check]:
    kver = platform.release()
    checks = [Check("root", os.geteuid() == 0, f"uid {os.geteuid()}", "run as root (sudo)")]
    for tool, pkg in (("ip", "iproute2"), ("tcpdump", "tcpdump"), ("curl", "curl"), ("ping", "iputils-ping"),
                      ("iperf3", "iperf3")):
        path = shutil.which(tool)
        checks.append(Check(tool, bool(path), path or "not found", f"apt-get install {pkg} (or: make lab)"))
    ok, out = _probe(["ip", "netns", "list"])
    checks.append(Check("network namespaces", ok, "ip netns works" if ok else out, "a kernel with CONFIG_NET_NS"))
    cg = Path("/sys/fs/cgroup/unified")
    cg = cg if cg.exists() else Path("/sys/fs/cgroup")
    checks.append(Check("cgroup v2", (cg / "cgroup.procs").exists() and (cg / "cgroup.controllers").exists(),
                        str(cg), "mount -t cgroup2 none /sys/fs/cgroup/unified"))
    checks.append(Check("BTF", Path("/sys/kernel/btf/vmlinux").exists(), "/sys/kernel/btf/vmlinux",
                        "a kernel built with CONFIG_DEBUG_INFO_BTF"))
    build = Path(f"/lib/modules/{kver}/build")
    checks.append(Check("kernel headers", (build / "include").exists(), str(build.resolve()) if build.exists() else "missing",
                        "make lab (links the distribution's linux-headers when the kernel has none)"))
    ok, out = _probe([sys.executable, "-c", BCC_PROBE])
    checks.append(Check("bcc compile", ok, out, "apt-get install python3-bpfcc linux-headers-amd64, then make lab"))
    return checks
