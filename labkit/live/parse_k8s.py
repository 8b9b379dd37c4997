"""Parsers: `kubectl get nodes/pods/services/endpointslices/ciliumnodes -o json` and a
node's `ip -o link` -> NODES, PODS, SERVICES.

The inputs are the JSON documents kubectl prints (or the kubernetes client's objects passed
through ``ApiClient().sanitize_for_serialization``, which is the same JSON).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

from ..tables import NODES, PODS, SERVICES

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")


def _items(doc: Mapping | None) -> list[dict]:
    if not doc:
        return []
    if doc.get("kind", "").endswith("List") or "items" in doc:
        return list(doc.get("items") or [])
    return [dict(doc)]


def parse_nodes(nodes_json: Mapping, ciliumnodes_json: Mapping | None = None) -> pd.DataFrame:
    """Nodes -> NODES. The router IP (cilium_host) comes from the CiliumNode's
    ``CiliumInternalIP`` address; missing without it."""
    router = {}
    for cn in _items(ciliumnodes_json):
        for a in (cn.get("spec") or {}).get("addresses") or []:
            if a.get("type") == "CiliumInternalIP" and ":" not in a.get("ip", ":"):
                router[cn["metadata"]["name"]] = a["ip"]
    rows = []
    for n in _items(nodes_json):
        meta, spec, status = n.get("metadata", {}), n.get("spec", {}), n.get("status", {})
        labels = meta.get("labels") or {}
        role = "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker"
        ip = next(
            (
                a["address"]
                for a in status.get("addresses") or []
                if a.get("type") == "InternalIP" and ":" not in a.get("address", "")
            ),
            None,
        )
        cidr = spec.get("podCIDR") or next((c for c in spec.get("podCIDRs") or [] if ":" not in c), None)
        rows.append(
            dict(name=meta["name"], role=role, internal_ip=ip, pod_cidr=cidr, router_ip=router.get(meta["name"]))
        )
    return NODES.frame(rows)


def app_of(image: str) -> str:
    """What a pod runs, from its image: whoami (HTTP server) or idle (netshoot); '' otherwise."""
    name = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return {"whoami": "whoami", "netshoot": "idle"}.get(name, "")


_LINK = re.compile(
    r"^(?P<idx>\d+):\s+(?P<name>[^:@\s]+)(?:@(?P<peer>\S+?))?:\s+<[^>]*>.*?"
    r"link/\S+\s+(?P<mac>[0-9a-fA-F:]{17})?"
)


def parse_ip_link(text: str) -> list[dict]:
    """`ip -o link` -> [{ifindex, name, mac}] (mac '' for links without one)."""
    out = []
    for line in text.splitlines():
        m = _LINK.match(line.strip())
        if m:
            out.append(dict(ifindex=int(m["idx"]), name=m["name"], mac=(m["mac"] or "").lower()))
    return out


def parse_pods(
    pods_json: Mapping,
    endpoints: pd.DataFrame | None = None,
    links: Mapping[str, Iterable[Mapping]] | None = None,
    namespaces: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Pods -> PODS.

    ``endpoints`` (ENDPOINTS rows of every node) give endpoint id, identity, lxc ifindex, pod
    MAC and lxc MAC, joined on (node, pod IP); ``links`` (node -> `ip -o link` rows) name the
    lxc. Without them those columns stay missing. ``namespaces`` limits the namespaces; by
    default every namespace but the system ones. Host-network pods are left out (they have
    no endpoint of their own).
    """
    ep: dict[tuple[str, str], dict] = {}
    if endpoints is not None:
        for r in endpoints.to_dict("records"):
            if not r.get("is_host"):
                ep[(r["node"], r["ip"])] = r
    names: dict[tuple[str, int], str] = {}
    for node, rows in (links or {}).items():
        for r in rows:
            names[(node, int(r["ifindex"]))] = r["name"]
    wanted = set(namespaces) if namespaces is not None else None
    rows = []
    for p in _items(pods_json):
        meta, spec, status = p.get("metadata", {}), p.get("spec", {}), p.get("status", {})
        ns = meta.get("namespace", "default")
        if (wanted is not None and ns not in wanted) or (wanted is None and ns in SYSTEM_NAMESPACES):
            continue
        if spec.get("hostNetwork"):
            continue
        node = spec.get("nodeName") or ""
        ip = status.get("podIP")
        image = (spec.get("containers") or [{}])[0].get("image", "")
        labels = meta.get("labels") or {}
        row = dict(
            namespace=ns,
            name=meta["name"],
            node=node,
            ip=ip,
            image=image,
            app=app_of(image),
            labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        )
        e = ep.get((node, ip))
        if e:
            idx = e.get("ifindex")
            row.update(
                endpoint_id=e.get("endpoint_id"),
                identity=e.get("identity"),
                lxc_ifindex=idx,
                pod_mac=e.get("mac"),
                lxc_mac=e.get("node_mac"),
            )
            if idx is not None and not pd.isna(idx):
                row["lxc"] = names.get((node, int(idx)))
        rows.append(row)
    return PODS.frame(rows)


def parse_services(
    services_json: Mapping, endpointslices_json: Mapping | None = None, namespaces: Iterable[str] | None = None
) -> pd.DataFrame:
    """Services (+ EndpointSlices for the backends) -> SERVICES, one row per service port.

    Headless services (clusterIP None) have no virtual IP and are left out.
    """
    slices: dict[tuple[str, str], list[dict]] = {}
    for s in _items(endpointslices_json):
        meta = s.get("metadata", {})
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if svc:
            slices.setdefault((meta.get("namespace", "default"), svc), []).append(s)
    wanted = set(namespaces) if namespaces is not None else None
    rows = []
    for svc in _items(services_json):
        meta, spec = svc.get("metadata", {}), svc.get("spec", {})
        ns, name = meta.get("namespace", "default"), meta["name"]
        if (wanted is not None and ns not in wanted) or (wanted is None and ns in SYSTEM_NAMESPACES):
            continue
        vip = spec.get("clusterIP")
        if not vip or vip == "None":
            continue
        for port in spec.get("ports") or []:
            tp = port.get("targetPort", port.get("port"))
            backends = []
            for s in slices.get((ns, name), []):
                sport = next(
                    (
                        sp.get("port")
                        for sp in s.get("ports") or []
                        if (sp.get("name") or "") == (port.get("name") or "")
                    ),
                    None,
                )
                if sport is None:
                    continue
                if isinstance(tp, str) or tp is None:
                    tp = sport
                for e in s.get("endpoints") or []:
                    if (e.get("conditions") or {}).get("ready") is False:
                        continue
                    backends += [f"{a}:{sport}" for a in e.get("addresses") or []]
            rows.append(
                dict(
                    namespace=ns,
                    name=name,
                    type=spec.get("type", "ClusterIP"),
                    cluster_ip=vip,
                    port=int(port["port"]),
                    target_port=int(tp) if str(tp).isdigit() else int(port["port"]),
                    protocol=port.get("protocol", "TCP"),
                    backends=",".join(sorted(backends, key=_ipkey)),
                )
            )
    return SERVICES.frame(rows)


def _ipkey(s: str):
    host, _, port = s.rpartition(":")
    try:
        return (tuple(int(x) for x in host.split(".")), int(port))
    except ValueError:
        return ((999,), s)
