"""The datapath hooks of the embedded backend: what runs on top of the namespaces.

``ebpf`` (the default): labkit's Cilium-like datapath (bpf/, labkit/datapath/): per node
maps and programs, socket LB, tc delivery with bpf_redirect_peer, native routing with
FIB lookups, BPF masquerade, trace events.
``kernel``: plain kernel routing (the baseline, no eBPF): nothing to attach; services
have no load balancer (the cluster has no kube-proxy), so ClusterIPs do not answer.
Both get the "external host" (lk.<lab>.ext on the kind network) for masquerade labs.
"""
from __future__ import annotations

from ..errors import LabError
from ..plan import Plan, PodPlan
from ..spec import DatapathSpec
from .names import LabNames

AVAILABLE = ("ebpf", "kernel")
DEFAULT = "ebpf"


def check(datapath: str) -> None:
    if datapath not in AVAILABLE:
        raise LabError(f"datapath {datapath!r} is not available; choose one of {', '.join(AVAILABLE)}")


def attach_nodes(names: LabNames, plan: Plan, datapath: str, dp: DatapathSpec) -> None:
    """After the nodes exist: load and attach per-node programs and maps."""
    from ..datapath import exthost
    exthost.create(names)
    if datapath == "ebpf":
        from ..datapath import node
        node.attach_nodes(names, plan, dp)


def add_pods(names: LabNames, plan: Plan, datapath: str, dp: DatapathSpec,
             pods: list[PodPlan], links: dict[str, dict]) -> None:
    """After new pods' veths exist (``links``: pod key -> lxc_ifindex, macs): endpoints,
    programs on their lxc, ipcache and services of the updated ``plan``."""
    if datapath == "ebpf":
        from ..datapath import node
        node.add_pods(names, plan, pods, links)


def no_datapath(datapath: str, what: str) -> LabError:
    return LabError(f"{what} needs the eBPF datapath; this lab runs datapath {datapath!r} "
                    f"(labkit down, then labkit up --datapath ebpf)")
