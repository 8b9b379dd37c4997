"""The datapath variants of the embedded backend: what runs on top of the namespaces.

One strategy object per variant (the backend never switches on a name):

- :class:`EbpfDatapath` (``ebpf``, the default): labkit's Cilium-like datapath (bpf/,
  labkit/embedded/ebpf/): per-node maps and programs, socket LB, tc delivery with
  bpf_redirect_peer, native routing with FIB lookups, BPF masquerade, trace events.
- :class:`KernelDatapath` (``kernel``): plain kernel routing (the baseline, no eBPF):
  nothing to attach; services have no load balancer (the cluster has no kube-proxy), so
  ClusterIPs do not answer, and there are no maps or events to read.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import LabError
from ..plan import Plan, PodPlan
from ..spec import DatapathSpec
from .ebpf import node
from .ebpf.view import DatapathView
from .names import LabNames


class Datapath(Protocol):
    name: str
    # pinned maps (per node) holding what the agent writes from Kubernetes state; a failed
    # apply restores them (undo.py). Traffic state (CT, NAT, events, metrics) is not listed.
    state_maps: tuple[str, ...]
    service_lb: bool  # ClusterIPs answer (so pods can ask kube-dns by its ClusterIP)

    def attach_nodes(self, names: LabNames, plan: Plan, values: DatapathSpec) -> None:
        """After the nodes exist: load and attach per-node programs and maps."""

    def add_pods(
        self, names: LabNames, plan: Plan, values: DatapathSpec, pods: list[PodPlan], links: dict[str, dict]
    ) -> None:
        """After new pods' veths exist (``links``: pod key -> lxc_ifindex, macs): endpoints,
        programs on their lxc, ipcache and services of the updated ``plan``."""

    def view(self, names: LabNames, plan: Plan) -> DatapathView:
        """Maps, monitor and flows of a running lab."""


class EbpfDatapath:
    name = "ebpf"
    state_maps: tuple[str, ...] = (
        "cilium_lxc",
        "labkit_lxc_by_ifindex",
        "cilium_ipcache",
        "cilium_lb4_services_v2",
        "cilium_lb4_backends_v3",
        "cilium_lb4_reverse_nat",
    )
    service_lb = True

    def attach_nodes(self, names: LabNames, plan: Plan, values: DatapathSpec) -> None:
        node.attach_nodes(names, plan, values)

    def add_pods(
        self, names: LabNames, plan: Plan, values: DatapathSpec, pods: list[PodPlan], links: dict[str, dict]
    ) -> None:
        node.add_pods(names, plan, pods, links)

    def view(self, names: LabNames, plan: Plan) -> DatapathView:
        return DatapathView(names, plan)


class KernelDatapath:
    name = "kernel"
    state_maps: tuple[str, ...] = ()
    service_lb = False

    def attach_nodes(self, names: LabNames, plan: Plan, values: DatapathSpec) -> None:
        return None

    def add_pods(
        self, names: LabNames, plan: Plan, values: DatapathSpec, pods: list[PodPlan], links: dict[str, dict]
    ) -> None:
        return None

    def view(self, names: LabNames, plan: Plan) -> DatapathView:
        raise LabError(
            f"reading maps, monitor and flows needs the eBPF datapath; lab {names.lab!r} runs datapath 'kernel' "
            f"(labkit down --lab {names.lab}, then labkit up --lab {names.lab} --datapath ebpf)"
        )


DATAPATHS: dict[str, Datapath] = {d.name: d for d in (EbpfDatapath(), KernelDatapath())}
DEFAULT = "ebpf"


def get(name: str) -> Datapath:
    if name not in DATAPATHS:
        raise LabError(f"datapath {name!r} is not available; choose one of {', '.join(DATAPATHS)}")
    return DATAPATHS[name]
