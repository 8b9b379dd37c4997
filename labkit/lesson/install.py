"""Lesson 1, the blog's install: what the helm values made of the cluster (pod CIDRs,
router IPs, the routes of autoDirectNodeRoutes and endpointRoutes, the endpoint map), read
back from the running lab, and one value changed on a companion lab to see it act on a
packet (a narrower ipv4NativeRoutingCIDR: the same call is masqueraded)."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pandas as pd

from ..i18n import _
from ..lab import Lab
from .cast import cast
from .claims import Claim, claim
from .conversation import connection
from .scenarios import companion

NATIVE_CIDR = "10.244.0.0/16"  # ipv4NativeRoutingCIDR of cluster/cilium-values.yaml


@dataclass(frozen=True)
class Install:
    """What the install lesson reads from the lab, for its tables and its claims."""

    nodes: pd.DataFrame
    routes: pd.DataFrame  # every node's routes
    endpoints: pd.DataFrame  # the client's node's endpoint map, joined with its pods
    cilium_host: dict[str, str]  # node -> the address on its cilium_host
    node: str  # the client's node
    other_node: str
    other_node_ip: str

    def node_routes(self, node: str | None = None) -> pd.DataFrame:
        n = node or self.node
        return self.routes[self.routes.node == n].reset_index(drop=True)

    def next_hop(self, to_node: str) -> str:
        """The gateway of the client's node's route to ``to_node``'s pod CIDR."""
        cidr = self.nodes.set_index("name").loc[to_node, "pod_cidr"]
        r = self.routes[(self.routes.node == self.node) & (self.routes.dst == cidr)]
        return str(r.gateway.iloc[0]) if len(r) else ""


def built(lab: Lab) -> Install:
    c = cast(lab)
    hosts = {}
    for node in lab.nodes.name:
        addrs = json.loads(lab.node(node).sh(["ip", "-j", "-4", "addr", "show", "dev", "cilium_host"]) or "[]")
        hosts[node] = next((a["local"] for x in addrs for a in x.get("addr_info", [])), "")
    ep = lab.maps(c.node).endpoints()
    pods = lab.pods[lab.pods.node == c.node]
    joined = ep[~ep.is_host].merge(pods, on="ip", suffixes=("", "_pod"))[
        [
            "ip",
            "name",
            "endpoint_id",
            "endpoint_id_pod",
            "ifindex",
            "lxc",
            "lxc_ifindex",
            "mac",
            "pod_mac",
            "node_mac",
            "lxc_mac",
        ]
    ]
    return Install(lab.nodes, lab.routes, joined, hosts, c.node, c.other_node, c.other_node_ip)


@dataclass(frozen=True)
class NarrowCIDR:
    """The cross-node call on a companion lab whose ipv4NativeRoutingCIDR is only the
    client node's pod CIDR: what source the other node's eth0 sees."""

    cidr: str
    source_seen: str  # source of the SYN on the server node's eth0
    client_ip: str
    client_node_ip: str

    def source_kind(self) -> str:
        """What a learner predicts: "pod IP" or "node IP" (or the address, if neither)."""
        return {self.client_ip: "pod IP", self.client_node_ip: "node IP"}.get(self.source_seen, self.source_seen)


def source_kind(narrow: NarrowCIDR | None) -> str | None:
    """ "pod IP" or "node IP" on the narrow-CIDR lab (None where it could not be built)."""
    return narrow.source_kind() if narrow is not None else None


def narrower_native_cidr(lab: Lab) -> NarrowCIDR | None:
    """Build (once) a companion lab with ipv4NativeRoutingCIDR = the client node's pod CIDR
    and make the cross-node call there (None where companions are not available)."""
    c = cast(lab)
    cidr = lab.nodes.set_index("name").loc[c.node, "pod_cidr"]
    other = companion(lab, "n", options={"ipv4NativeRoutingCIDR": cidr})
    if other is None:
        return None
    oc = cast(other)
    point = f"{oc.other_node}:eth0"
    run = other.run_captured(oc.client["name"], ["curl", "-s", "--max-time", "5", f"http://{oc.web_other.ip}"], [point])
    pk = connection(run.packets, oc.client.ip, 80)
    pk = pd.concat([pk, run.packets[(run.packets.proto == "TCP") & (run.packets.dst_ip == oc.web_other.ip)]])
    syn = pk[(pk.tcp_flags == "[S]") & (pk.dst_ip == oc.web_other.ip)]
    return NarrowCIDR(cidr, str(syn.src_ip.iloc[0]) if len(syn) else "", oc.client.ip, oc.node_ip)


def claims(inst: Install, narrow: NarrowCIDR | None = None) -> list[Claim]:
    """Every sentence of lesson 1 that says what the lab shows, checked on this run."""
    native = ipaddress.IPv4Network(NATIVE_CIDR)
    cidrs = list(inst.nodes.pod_cidr)
    inside = all(ipaddress.IPv4Network(x).subnet_of(native) for x in cidrs)
    routes = inst.node_routes()
    others = inst.nodes[inst.nodes.name != inst.node]
    via = {
        r.pod_cidr: str(routes[routes.dst == r.pod_cidr].gateway.iloc[0]) if (routes.dst == r.pod_cidr).any() else ""
        for r in others.itertuples()
    }
    want_via = dict(zip(others.pod_cidr, others.internal_ip))
    ep = inst.endpoints
    out = [
        claim("Every node's pod CIDR is inside 10.244.0.0/16.", inside, ", ".join(cidrs)),
        claim(
            "Each node's router IP sits on its cilium_host interface.",
            all(inst.cilium_host.get(n.name) == n.router_ip for n in inst.nodes.itertuples()),
            ", ".join(f"{n}: {a}" for n, a in inst.cilium_host.items()),
        ),
        claim(
            "The client's node routes each other node's pod CIDR via that node's IP on eth0 (autoDirectNodeRoutes).",
            via == want_via and (routes[routes.dst.isin(list(want_via))].dev == "eth0").all(),
            "; ".join(f"{k} via {v}" for k, v in via.items()),
        ),
        claim(
            "Each local pod has a /32 route to its own lxc (endpointRoutes).",
            len(ep) > 0 and all(((routes.dst == e.ip) & (routes.dev == e.lxc)).any() for e in ep.itertuples()),
            _("{n} local pods").format(n=len(ep)),
        ),
        claim(
            "The endpoint map's ifindex and MACs are the kernel's: the lxc's ifindex, the pod's MAC, the lxc's "
            "MAC as nodemac.",
            len(ep) > 0
            and (ep.ifindex == ep.lxc_ifindex).all()
            and (ep.mac.str.lower() == ep.pod_mac.str.lower()).all()
            and (ep.node_mac.str.lower() == ep.lxc_mac.str.lower()).all(),
            _("{n} endpoints compared").format(n=len(ep)),
        ),
    ]
    if narrow is not None:
        out.append(
            claim(
                "With ipv4NativeRoutingCIDR narrowed to the client node's pod CIDR, the other node sees the "
                "client node's IP as source: BPF masquerade.",
                narrow.source_seen == narrow.client_node_ip,
                _("source seen: {ip}").format(ip=narrow.source_seen or _("no SYN")),
            )
        )
    return out
