"""Name resolution inside pods, without a DNS server: /etc/netns/<ns>/{hosts,resolv.conf}.

``ip netns exec`` bind-mounts these over /etc, so curl resolves ``webpod`` and
``webpod.native.svc.cluster.local`` to the ClusterIP, and tcpdump in a pod prints backend
pods as ``10-244-1-182.webpod.native.svc.cluster.local`` (the reverse names CoreDNS gives
service endpoints, as in the blog's captures). Lookups of anything else fail at once:
the resolver points at the pod's own loopback.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..plan import Plan, PodPlan
from .names import LabNames

DOMAIN = "cluster.local"


def pod_hosts(plan: Plan, me: PodPlan) -> str:
    lines = ["127.0.0.1\tlocalhost", f"{me.ip}\t{me.name}"]
    reverse_done = {me.ip}
    for svc in plan.services:
        fq = f"{svc.name}.{svc.namespace}.svc.{DOMAIN}"
        names = [fq, f"{svc.name}.{svc.namespace}.svc", f"{svc.name}.{svc.namespace}"]
        if svc.namespace == me.namespace:
            names.append(svc.name)
        lines.append(f"{svc.cluster_ip}\t" + " ".join(names))
        for p in plan.backends(svc):
            if p.ip not in reverse_done:
                reverse_done.add(p.ip)
                dashed = p.ip.replace(".", "-")
                lines.append(f"{p.ip}\t{dashed}.{fq} {dashed}.{p.namespace}.pod.{DOMAIN}")
    for p in plan.pods:
        if p.ip not in reverse_done:
            reverse_done.add(p.ip)
            lines.append(f"{p.ip}\t{p.ip.replace('.', '-')}.{p.namespace}.pod.{DOMAIN}")
    return "\n".join(lines) + "\n"


def pod_resolv(me: PodPlan) -> str:
    return (
        f"search {me.namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n"
        "nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n"
    )


def node_hosts(plan: Plan) -> str:
    return "127.0.0.1\tlocalhost\n" + "".join(f"{n.ip}\t{n.name}\n" for n in plan.nodes)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite in place (same inode) so shells already inside the pod see the update.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd, "w") as f:
        f.truncate(0)
        f.write(text)


def write_all(names: LabNames, plan: Plan) -> None:
    for n in plan.nodes:
        d = names.etc_netns(names.node(n.name))
        _write(d / "hosts", node_hosts(plan))
        _write(d / "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    for p in plan.pods:
        d = names.etc_netns(names.pod(p.namespace, p.name))
        _write(d / "hosts", pod_hosts(plan, p))
        _write(d / "resolv.conf", pod_resolv(p))
