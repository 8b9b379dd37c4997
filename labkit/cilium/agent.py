"""What `cilium-dbg status | version | endpoint list | identity list` print, as Cilium
1.17's cilium-dbg/cmd and pkg/command (``FormatStatusResponse``) write them: Go's
text/tabwriter over tab-separated cells. The values are the lab's; where the lab has no
equivalent (git commit, controllers, Go version) the text says labkit's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .identities import RESERVED_IDENTITIES

CILIUM_VERSION = "1.17.6"
GIT = "labkit"  # where Cilium prints its git commit
GO = "go1.24.4 linux/amd64"


def go_tabwriter(text: str, minwidth: int, padding: int) -> str:
    """Go's text/tabwriter (padchar ' ', no flags): a cell ends with a tab; the cells of
    one column are aligned over the consecutive lines that have that column."""
    lines = [ln.split("\t") for ln in text.split("\n")]
    widths: dict[tuple[int, int], int] = {}

    def fmt(line0: int, line1: int, col: int) -> None:
        i = line0
        while i < line1:
            if col >= len(lines[i]) - 1:
                i += 1
                continue
            j, width = i, minwidth
            while j < line1 and col < len(lines[j]) - 1:
                width = max(width, len(lines[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[(k, col)] = width
            fmt(i, j, col + 1)
            i = j

    fmt(0, len(lines), 0)
    out = []
    for n, cells in enumerate(lines):
        row = "".join(c.ljust(widths[(n, i)]) for i, c in enumerate(cells[:-1]))
        out.append(row + cells[-1])
    return "\n".join(out)


def pod_labels(namespace: str, labels: dict[str, str], serviceaccount: str = "default") -> list[str]:
    """A pod's identity labels as Cilium derives them (k8s labels, its namespace's name
    label, cluster, service account, namespace), sorted."""
    return sorted(
        [f"k8s:{k}={v}" for k, v in labels.items()]
        + [
            f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={namespace}",
            "k8s:io.cilium.k8s.policy.cluster=default",
            f"k8s:io.cilium.k8s.policy.serviceaccount={serviceaccount}",
            f"k8s:io.kubernetes.pod.namespace={namespace}",
        ]
    )


@dataclass
class Endpoint:
    id: int
    identity: int
    labels: list[str]
    ipv4: str
    owner: str = ""  # namespace/pod, or "router" / "" for the host
    status: str = "ready"


@dataclass
class NodeAgent:
    """What one node's agent knows, for the text of its commands."""

    node: str
    node_ip: str
    pod_cidr: str
    router_ip: str
    native_cidr: str
    endpoints: list[Endpoint]  # the host endpoint and the node's pods
    identities: dict[int, list[str]]  # every identity of the cluster -> labels
    socket_lb: bool = True
    masquerade: bool = True
    attach: str = "TCX"
    cpus: int = 1
    flows: int = 0
    max_flows: int = 4095
    uptime_s: float = 1.0
    seen_flows: int = 0
    k8s_version: str = "1.32 (v1.32.2) [linux/amd64]"
    bpf_maps: list[tuple[str, int]] = field(default_factory=list)


K8S_APIS = [
    "EndpointSliceOrEndpoint",
    "cilium/v2::CiliumClusterwideNetworkPolicy",
    "cilium/v2::CiliumEndpoint",
    "cilium/v2::CiliumNetworkPolicy",
    "cilium/v2::CiliumNode",
    "cilium/v2alpha1::CiliumCIDRGroup",
    "core/v1::Namespace",
    "core/v1::Pods",
    "core/v1::Service",
    "networking.k8s.io/v1::NetworkPolicy",
]


def status(a: NodeAgent, verbose: bool = False) -> str:
    """cilium-dbg status [--verbose] (FormatStatusResponse, then Cluster / Modules health)."""
    pods = [e for e in a.endpoints if "reserved:host" not in e.labels]
    ctrl = 2 * len(a.endpoints) + 10
    w = ["KVStore:\tDisabled\t", f"Kubernetes:\tOk\t{a.k8s_version}"]
    w.append('Kubernetes APIs:\t["' + '", "'.join(sorted(K8S_APIS)) + '"]')
    dev = f"eth0 {a.node_ip} (Direct Routing)"
    w.append(f"KubeProxyReplacement:\tTrue\t[{dev}]")
    w += ["Host firewall:\tDisabled", "SRv6:\tDisabled", "CNI Chaining:\tnone"]
    w.append("CNI Config file:\tsuccessfully wrote CNI configuration file to /host/etc/cni/net.d/05-cilium.conflist")
    w.append(f"Cilium:\tOk   {CILIUM_VERSION} (v{CILIUM_VERSION}-{GIT})")
    w.append(f"NodeMonitor:\tListening for events on {a.cpus} CPUs with 64x4096 of shared memory")
    w.append(f"IPAM:\tIPv4: {len(pods) + 1}/254 allocated from {a.pod_cidr}, ")
    if verbose:
        w.append("Allocated addresses:")
        owners = [f"  {a.router_ip} (router)"] + [f"  {e.ipv4} ({_owner(e)})" for e in pods]
        w += sorted(owners)
    w += ["IPv4 BIG TCP:\tDisabled", "IPv6 BIG TCP:\tDisabled", "BandwidthManager:\tDisabled"]
    w += ["Routing:\tNetwork: Native\tHost: BPF", f"Attach Mode:\t{a.attach}", "Device Mode:\tveth"]
    if a.masquerade:
        w.append(f"Masquerading:\tBPF\t[eth0]\t{a.native_cidr} [IPv4: Enabled, IPv6: Disabled]")
    else:
        w.append("Masquerading:\tDisabled")
    if verbose:
        w.append("Clock Source for BPF:\tktime")
    w.append(f"Controller Status:\t{ctrl}/{ctrl} healthy")
    w.append(f"Proxy Status:\tOK, ip {a.router_ip}, 0 redirects active on ports 10000-20000, Envoy: external")
    w.append("Global Identity Range:\tmin 256, max 65535")
    pct = 100.0 * a.flows / a.max_flows if a.max_flows else 0.0
    rate = a.seen_flows / a.uptime_s if a.uptime_s > 0 else 0.0
    w.append(f"Hubble:\tOk\tCurrent/Max Flows: {a.flows}/{a.max_flows} ({pct:.2f}%), Flows/s: {rate:.2f}\tMetrics: Ok")
    if verbose:
        # nested tabwriters write into the outer one: their lines carry no tabs, so they
        # also end the outer writer's column blocks
        slb = "Enabled" if a.socket_lb else "Disabled"
        w.append("KubeProxyReplacement Details:")
        kpr = [
            "  Status:\tTrue",
            f"  Socket LB:\t{slb}",
            "  Socket LB Tracing:\tEnabled",
            "  Socket LB Coverage:\tFull",
            f"  Devices:\t{dev}",
            "  Mode:\tSNAT",
            "  Backend Selection:\tRandom",
            "  Session Affinity:\tEnabled",
            "  Graceful Termination:\tEnabled",
            "  NAT46/64 Support:\tDisabled",
            "  XDP Acceleration:\tDisabled",
            "  Services:",
            "  - ClusterIP:\tEnabled",
            "  - NodePort:\tEnabled (Range: 30000-32767) ",
            "  - LoadBalancer:\tEnabled ",
            "  - externalIPs:\tEnabled ",
            "  - HostPort:\tEnabled",
        ]
        w += go_tabwriter("\n".join(kpr), 0, 3).split("\n")
        w.append("BPF Maps:\tdynamic sizing: on (ratio: 0.002500)")
        w += go_tabwriter("\n".join(["  Name\tSize"] + [f"  {n}\t{s}" for n, s in a.bpf_maps]), 0, 3).split("\n")
    w += [
        "Encryption:\tDisabled\t",
        "Cluster health:\t\tProbe disabled",
        f"Modules Health:\tStopped(0) Degraded(0) OK({ctrl})",
    ]
    return go_tabwriter("\n".join(w) + "\n", 2, 3)


def _owner(e: Endpoint) -> str:
    return e.owner


def version() -> str:
    """cilium-dbg version."""
    return f"Client: {CILIUM_VERSION} {GIT} go version {GO}\nDaemon: {CILIUM_VERSION} {GIT} go version {GO}\n"


def endpoint_list(a: NodeAgent, output: str = "text") -> str:
    """cilium-dbg endpoint list (endpoint_list.go printEndpointList)."""
    eps = sorted(a.endpoints, key=lambda e: e.id)
    if output == "json":
        return json.dumps([_endpoint_model(e) for e in eps], indent=2)
    rows = ["ENDPOINT\tPOLICY (ingress)\tPOLICY (egress)\tIDENTITY\tLABELS (source:key[=value])\tIPv6\tIPv4\tSTATUS\t"]
    rows.append("\tENFORCEMENT\tENFORCEMENT\t\t\t\t\t\t")
    for e in eps:
        labels = sorted(e.labels) or ["no labels"]
        rows.append(f"{e.id}\tDisabled\tDisabled\t{e.identity}\t{labels[0]}\t\t{e.ipv4}\t{e.status}\t")
        rows += [f"\t\t\t\t{lb}\t\t\t\t" for lb in labels[1:]]
    return go_tabwriter("\n".join(rows) + "\n", 5, 3)


def _endpoint_model(e: Endpoint) -> dict:
    return {
        "id": e.id,
        "spec": {"label-configuration": {}},
        "status": {
            "identity": {"id": e.identity, "labels": sorted(e.labels)},
            "networking": {"addressing": [{"ipv4": e.ipv4}] if e.ipv4 else []},
            "state": e.status,
        },
    }


def identity_list(identities: dict[int, list[str]], output: str = "text") -> str:
    """cilium-dbg identity list: reserved identities, then the cluster's, by id."""
    ids = {i: [f"reserved:{n}"] for i, n in RESERVED_IDENTITIES.items() if i}
    ids[7] = ["reserved:kube-apiserver", "reserved:remote-node"]
    ids.update(identities)
    if output == "json":
        return json.dumps([{"id": i, "labels": sorted(ids[i])} for i in sorted(ids)], indent=2)
    rows = ["ID\tLABELS"]
    for i in sorted(ids):
        labels = sorted(ids[i])
        rows.append(f"{i}\t{labels[0]}")
        rows += [f"\t{lb}" for lb in labels[1:]]
    return go_tabwriter("\n".join(rows) + "\n", 5, 3)
