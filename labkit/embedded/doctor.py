"""What the embedded backend needs of this machine, as ``labkit doctor`` checks."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

from ..doctor import Check, probe

BCC_PROBE = """
from bcc import BPF
b = BPF(text="int f(struct __sk_buff *skb) { return 0; }")
b.load_func("f", BPF.SCHED_CLS)
print("compiled and loaded a tc program")
"""


def checks() -> list[Check]:
    kver = platform.release()
    out = [Check("root", os.geteuid() == 0, f"uid {os.geteuid()}", "run as root (sudo)")]
    for tool, pkg in (
        ("ip", "iproute2"),
        ("tcpdump", "tcpdump"),
        ("curl", "curl"),
        ("ping", "iputils-ping"),
        ("iperf3", "iperf3"),
    ):
        path = shutil.which(tool)
        out.append(Check(tool, bool(path), path or "not found", f"apt-get install {pkg} (or: make lab)"))
    ok, text = probe(["ip", "netns", "list"])
    out.append(Check("network namespaces", ok, "ip netns works" if ok else text, "a kernel with CONFIG_NET_NS"))
    cg = Path("/sys/fs/cgroup/unified")
    cg = cg if cg.exists() else Path("/sys/fs/cgroup")
    out.append(
        Check(
            "cgroup v2",
            (cg / "cgroup.procs").exists() and (cg / "cgroup.controllers").exists(),
            str(cg),
            "mount -t cgroup2 none /sys/fs/cgroup/unified",
        )
    )
    build = Path(f"/lib/modules/{kver}/build")
    out.append(
        Check(
            "kernel headers",
            (build / "include").exists(),
            str(build.resolve()) if build.exists() else "missing",
            "make lab (links the distribution's linux-headers when the kernel has none)",
        )
    )
    ok, text = probe([sys.executable, "-c", BCC_PROBE])
    out.append(Check("bcc compile", ok, text, "apt-get install python3-bpfcc linux-headers-amd64, then make lab"))
    return out
