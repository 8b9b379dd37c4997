"""Name resolution in the lab, as in a kind cluster: real DNS.

Pods get what the kubelet writes: ``/etc/resolv.conf`` pointing at the ``kube-dns``
ClusterIP with the pod namespace's search domains and ``ndots:5``, and the
Kubernetes-managed ``/etc/hosts`` (localhost and the pod's own name). Nodes get what
docker writes for a kind node: ``nameserver 127.0.0.11`` (docker's embedded DNS, which
knows the node names) and the node's own name in ``/etc/hosts``. ``ip netns exec``
bind-mounts ``/etc/netns/<ns>/*`` over ``/etc``.

The DNS records themselves (``zone``) are written to a file that the lab's CoreDNS
stand-in (labkit/workloads/kubedns.py) serves; it re-reads the file when it changes.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

from ..plan import DNS_DOMAIN, Plan, PodPlan
from .names import LabNames

POD_HOSTS = (
    "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
)
NODE_HOSTS = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)
NODE_RESOLVER = "127.0.0.11"  # docker's embedded DNS in every container of a user network
KIND_NETWORK_NAME = "kind"


def kube_dns_ip(plan: Plan) -> str:
    svc = plan.service("kube-system", "kube-dns")
    return svc.cluster_ip if svc else str(ipaddress.IPv4Network(plan.service_subnet).network_address + 10)


def pod_resolv(plan: Plan, me: PodPlan, service_lb: bool = True) -> str:
    """What the kubelet writes (dnsPolicy ClusterFirst). Without a service load balancer
    (the kernel-routing baseline has no kube-proxy) a ClusterIP never answers, so there
    pods ask the first CoreDNS pod directly."""
    server = kube_dns_ip(plan)
    if not service_lb:
        dns = plan.service("kube-system", "kube-dns")
        pods = plan.backends(dns) if dns else []
        server = pods[0].ip if pods else server
    return (
        f"search {me.namespace}.svc.{DNS_DOMAIN} svc.{DNS_DOMAIN} {DNS_DOMAIN}\nnameserver {server}\noptions ndots:5\n"
    )


def pod_hosts(me: PodPlan) -> str:
    return POD_HOSTS + f"{me.ip}\t{me.name}\n"


def node_hosts(plan: Plan, node: str) -> str:
    return NODE_HOSTS + f"{plan.node(node).ip}\t{node}\n"


def _ptr(ip: str) -> str:
    return ipaddress.IPv4Address(ip).reverse_pointer + "."


def zone(plan: Plan) -> dict:
    """CoreDNS's records (kubernetes plugin, pods insecure) and docker's (node names)."""
    d = DNS_DOMAIN + "."
    a: dict[str, list[str]] = {}
    ptr: dict[str, list[str]] = {}
    names = {d, f"svc.{d}", f"pod.{d}"}
    for ns in plan.namespaces:
        names |= {f"{ns}.svc.{d}", f"{ns}.pod.{d}"}
    for s in plan.services:
        fq = f"{s.name}.{s.namespace}.svc.{d}"
        a[fq] = [s.cluster_ip]
        ptr.setdefault(_ptr(s.cluster_ip), []).append(fq)
        for b in plan.endpoints(s):
            host = f"{b.ip.replace('.', '-')}.{fq}"
            a.setdefault(host, []).append(b.ip)
            ptr.setdefault(_ptr(b.ip), []).append(host)
    upstream_a, upstream_ptr = {}, {}
    for n in plan.nodes:
        upstream_a[f"{n.name}."] = n.ip
        upstream_a[f"{n.name}.{KIND_NETWORK_NAME}."] = n.ip
        upstream_ptr[_ptr(n.ip)] = f"{n.name}.{KIND_NETWORK_NAME}."
    return {
        "domain": DNS_DOMAIN,
        "serial": len(plan.services) * 1000 + len(plan.pods),
        "namespaces": list(plan.namespaces),
        "names": sorted(names),
        "a": a,
        "ptr": ptr,
        "upstream_a": upstream_a,
        "upstream_ptr": upstream_ptr,
    }


def zone_path(names: LabNames) -> Path:
    return names.state_dir / "dns" / "zone.json"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite in place (same inode) so shells already inside the pod see the update.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd, "w") as f:
        f.truncate(0)
        f.write(text)


def write_all(names: LabNames, plan: Plan, service_lb: bool = True) -> None:
    for n in plan.nodes:
        etc = names.etc_netns(names.node(n.name))
        _write(etc / "hosts", node_hosts(plan, n.name))
        _write(etc / "resolv.conf", f"nameserver {NODE_RESOLVER}\noptions ndots:0\n")
    for p in plan.pods:
        etc = names.etc_netns(names.pod(p.namespace, p.name))
        _write(etc / "hosts", pod_hosts(p))
        _write(etc / "resolv.conf", pod_resolv(plan, p, service_lb))
    path = zone_path(names)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(zone(plan), indent=1, sort_keys=True))
    os.replace(tmp, path)
