"""The embedded cluster's wiring: which ``ip`` commands build nodes and pods.

Pure functions from the plan to per-namespace command lists (tested without root), plus
``build_nodes`` / ``build_pods`` that run them. The layout mirrors kind + Cilium in native
routing mode with endpointRoutes and autoDirectNodeRoutes:

    [kind network ns]  bridge "kind" 172.18.0.1/16, one veth per node
    [node ns]          eth0 172.18.0.N/16 (MAC 02:42:ac:12:00:0N, as docker assigns)
                       cilium_host <-> cilium_net, router IP /32 on cilium_host
                       <pod CIDR of node M> via <node M IP> dev eth0   (autoDirectNodeRoutes)
                       <pod IP>/32 dev lxc...                           (endpointRoutes)
    [pod ns]           eth0 <pod IP>/32, <router IP> dev eth0 scope link,
                       default via <router IP>                          (as Cilium sets pods up)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .. import netns
from ..netns import NetNS
from ..plan import KIND_GATEWAY, KIND_NETWORK, NodePlan, Plan, PodPlan
from .names import LabNames

BRIDGE = "kind"
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    # IPv6 is off in the blog's cluster; off here too, so captures show no ND/MLD noise.
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
QUIET_SYSCTLS = {k: v for k, v in NODE_SYSCTLS.items() if "ipv6" in k}


def bridge_port(node: str) -> str:
    """Name of a node's veth on the kind bridge (docker names them veth + 7 hex)."""
    return "veth" + hashlib.sha256(node.encode()).hexdigest()[:7]


def kind_net_commands(plan: Plan) -> list[str]:
    return [
        "link set lo up",
        f"link add {BRIDGE} type bridge mcast_snooping 0",
        f"link set {BRIDGE} up",
        f"addr add {KIND_GATEWAY}/{KIND_NETWORK.prefixlen} dev {BRIDGE}",
    ]


def kind_net_attach(plan: Plan) -> list[str]:
    return [
        c
        for n in plan.nodes
        for c in (f"link set {bridge_port(n.name)} master {BRIDGE}", f"link set {bridge_port(n.name)} up")
    ]


def node_commands(names: LabNames, plan: Plan, node: NodePlan) -> list[str]:
    cmds = [
        "link set lo up",
        f"link add eth0 address {node.mac} type veth peer name {bridge_port(node.name)} netns {names.kind_net}",
        f"addr add {node.ip}/{KIND_NETWORK.prefixlen} dev eth0",
        "link set eth0 up",
        "link add cilium_host type veth peer name cilium_net",
        "link set cilium_host up",
        "link set cilium_net up",
        f"addr add {node.router_ip}/32 dev cilium_host scope link",
    ]
    for other in plan.nodes:  # autoDirectNodeRoutes: the other nodes' pod CIDRs via their node IP
        if other.name != node.name:
            cmds.append(f"route add {other.pod_cidr} via {other.ip} dev eth0")
    cmds.append(f"route add default via {KIND_GATEWAY} dev eth0")
    return cmds


def lxc_commands(names: LabNames, pod: PodPlan) -> list[str]:
    """In the node: the pod's veth pair (peer named eth0, created in the pod) and its /32 route."""
    return [
        f"link add {pod.lxc} type veth peer name eth0 netns {names.pod(pod.namespace, pod.name)}",
        f"link set {pod.lxc} up",
        f"route add {pod.ip}/32 dev {pod.lxc}",
    ]


def pod_commands(pod: PodPlan, node: NodePlan) -> list[str]:
    return [
        "link set lo up",
        f"addr add {pod.ip}/32 dev eth0",
        "link set eth0 up",
        f"route add {node.router_ip} dev eth0 scope link",
        f"route add default via {node.router_ip} dev eth0",
    ]


def build_nodes(names: LabNames, plan: Plan) -> None:
    kind_net = NetNS(names.kind_net)
    nodes = [(n, NetNS(names.node(n.name))) for n in plan.nodes]
    netns.create([kind_net, *(ns for _, ns in nodes)], userns=names.userns)
    kind_net.sysctl(QUIET_SYSCTLS)
    for _, ns in nodes:
        ns.sysctl(NODE_SYSCTLS)
    kind_net.ip_batch(kind_net_commands(plan))
    for n, ns in nodes:
        ns.ip_batch(node_commands(names, plan, n))
    kind_net.ip_batch(kind_net_attach(plan))


def build_pods(names: LabNames, plan: Plan, pods: Iterable[PodPlan]) -> dict[str, dict]:
    """Create the pods' namespaces and veths; return their link facts by pod key."""
    pods = list(pods)
    netns.create((NetNS(names.pod(p.namespace, p.name)) for p in pods), userns=names.userns)
    for p in pods:
        NetNS(names.pod(p.namespace, p.name)).sysctl(QUIET_SYSCTLS)
    by_node: dict[str, list[PodPlan]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).append(p)
    facts: dict[str, dict] = {}
    for node, group in by_node.items():
        node_ns = NetNS(names.node(node))
        node_ns.ip_batch([c for p in group for c in lxc_commands(names, p)])
        node_links = node_ns.links()
        for p in group:
            pod_ns = NetNS(names.pod(p.namespace, p.name))
            pod_ns.ip_batch(pod_commands(p, plan.node(node)))
            eth0 = pod_ns.links()["eth0"]
            lxc = node_links[p.lxc]
            facts[p.key] = {
                "lxc_ifindex": lxc["ifindex"],
                "lxc_mac": lxc["address"],
                "pod_mac": eth0["address"],
                "pod_ifindex": eth0["ifindex"],
            }
    return facts
