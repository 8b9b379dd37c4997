"""Writing the plan into a node's maps: what the Cilium agent does from Kubernetes state.

- cilium_lxc: the node's pods (endpoint id, identity, lxc ifindex, MACs) and (localhost)
  rows for the router IP and the node IP;
- cilium_ipcache: every pod of the cluster (tunnelendpoint = its node's IP when remote),
  every node IP (host, remote-node, or kube-apiserver for the API server's node) and
  router IP, and the world prefix 0.0.0.0/0;
- lb4 services/backends/reverse NAT: every service port, slot 0 + one slot per backend.
The sync is idempotent (applied in full after each ``apply``); backend ids already in the
map are kept, so SVC CT entries keep pointing at the right backend.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ...plan import Plan
from . import bpfsys
from . import layouts as L

HOST_ID, WORLD_ID, REMOTE_NODE_ID, KUBE_APISERVER_ID = 1, 2, 6, 7


class NodeMaps:
    """Open fds of one node's pinned maps (closed on exit)."""

    def __init__(self, pin_dir: Path) -> None:
        self.pin_dir = pin_dir
        self.fds: dict[str, int] = {}

    def fd(self, name: str) -> int:
        if name not in self.fds:
            self.fds[name] = bpfsys.obj_get(str(self.pin_dir / name))
        return self.fds[name]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> NodeMaps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_node_config(m: NodeMaps, node_ip: str, router_ip: str, eth0_ifindex: int, host_ep_id: int = 0) -> None:
    bpfsys.update(
        m.fd("labkit_node_config"), struct.pack("=I", 0), L.node_config(node_ip, router_ip, eth0_ifindex, host_ep_id)
    )


def node_identity(plan: Plan, node: str, of: str) -> int:
    """The identity ``node``'s agent gives node ``of``'s IP: host for itself; for another
    node remote-node, or kube-apiserver where the API server runs (Cilium labels the
    addresses of the ``kubernetes`` endpoints reserved:kube-apiserver)."""
    if of == node:
        return HOST_ID
    api = plan.service("default", "kubernetes")
    if api is not None and any(b.node == of for b in plan.endpoints(api)):
        return KUBE_APISERVER_ID
    return REMOTE_NODE_ID


def sync_node(m: NodeMaps, plan: Plan, node: str, links: dict[str, dict]) -> None:
    me = plan.node(node)
    # endpoints
    lxc = m.fd("cilium_lxc")
    for ip in (me.router_ip, me.ip):
        bpfsys.update(lxc, L.endpoint_key(ip), L.endpoint_info(0, 0, L.FLAG_HOST, None, None, 0))
    by_ifindex = m.fd("labkit_lxc_by_ifindex")
    for p in plan.pods_on(node):
        f = links.get(p.key)
        if not f:
            continue
        info = L.endpoint_info(f["lxc_ifindex"], p.endpoint_id, 0, f["pod_mac"], f["lxc_mac"], p.identity)
        bpfsys.update(lxc, L.endpoint_key(p.ip), info)
        bpfsys.update(by_ifindex, struct.pack("=I", f["lxc_ifindex"]), info)
    # ipcache (pkg/ipcache: a remote node's addresses and pods carry its IP as tunnel
    # endpoint, the local ones 0.0.0.0; the node IP itself has none)
    ipc = m.fd("cilium_ipcache")
    bpfsys.update(ipc, L.ipcache_key("0.0.0.0/0"), L.ipcache_value(WORLD_ID))
    for n in plan.nodes:
        local = n.name == node
        bpfsys.update(ipc, L.ipcache_key(f"{n.ip}/32"), L.ipcache_value(node_identity(plan, node, n.name)))
        router_identity = HOST_ID if local else REMOTE_NODE_ID
        bpfsys.update(
            ipc, L.ipcache_key(f"{n.router_ip}/32"), L.ipcache_value(router_identity, "0.0.0.0" if local else n.ip)
        )
    node_ip = {n.name: n.ip for n in plan.nodes}
    for p in plan.pods:
        tunnel = "0.0.0.0" if p.node == node else node_ip[p.node]
        bpfsys.update(ipc, L.ipcache_key(f"{p.ip}/32"), L.ipcache_value(p.identity, tunnel))
    _sync_services(m, plan, node)


def _sync_services(m: NodeMaps, plan: Plan, node: str) -> None:
    svc_fd, be_fd, rn_fd = (
        m.fd("cilium_lb4_services_v2"),
        m.fd("cilium_lb4_backends_v3"),
        m.fd("cilium_lb4_reverse_nat"),
    )
    known: dict[tuple[int, int, int], int] = {}
    kb, vb, n = bpfsys.lookup_batch(be_fd, 4, 12, 65536)
    if n:
        have = np.frombuffer(kb, dtype="<u4")
        vals = np.frombuffer(vb, dtype=L.LB4_BACKEND)
        for i, v in zip(have, vals):
            known[(int(v["address"]), int(v["port"]), int(v["proto"]))] = int(i)
    next_id = max(known.values(), default=0) + 1
    for s in plan.services:
        backends = plan.endpoints(s, node)
        flags2 = L.SVC_FLAG_INT_LOCAL_SCOPE if s.internal_local else 0
        for port, sid in zip(s.ports, s.port_ids()):
            proto = port["protocol"]
            ids: list[int] = []
            for b in backends:
                k = (int.from_bytes(L.ip_bytes(b.ip), "big"), port["target_port"], L.PROTO_NUMBERS[proto])
                if k not in known:
                    known[k] = next_id
                    next_id += 1
                    bpfsys.update(be_fd, struct.pack("=I", known[k]), L.lb4_backend(b.ip, port["target_port"], proto))
                ids.append(known[k])
            for slot, bid in enumerate(ids, start=1):
                bpfsys.update(
                    svc_fd, L.lb4_key(s.cluster_ip, port["port"], proto, slot), L.lb4_service(bid, 0, sid, 0, flags2)
                )
            bpfsys.update(
                svc_fd, L.lb4_key(s.cluster_ip, port["port"], proto, 0), L.lb4_service(0, len(ids), sid, 0, flags2)
            )
            bpfsys.update(rn_fd, L.revnat_key(sid), L.revnat_value(s.cluster_ip, port["port"]))
