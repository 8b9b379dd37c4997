"""The datapath's programs run on crafted packets (BPF_PROG_TEST_RUN), with no lab.

As Cilium's bpf/tests do, a program is handed a packet and a context by the kernel
(``bpf(BPF_PROG_TEST_RUN)``) and we look at what it did: its verdict, the packet as it
left it, the map entries it made, the events it emitted. Here the programs are the very
templates a lab loads (build.py, the same cache), loaded with fresh, unpinned maps that
the caller fills like the agent would (one :class:`Node` is one node's worth of maps
and programs). Runs happen in a private network namespace (netns.PrivateNetNS): its
devices and routes are the test's own, so FIB lookups are deterministic and the host's
interfaces are never involved. Nothing is pinned, attached or sent; closing the Node
(or the process ending) frees everything.

Results read back with the lab's own readers: CT/NAT/metrics through
:class:`~labkit.embedded.ebpf.maps.NodeMapReader` (so ``node.maps.text("ct")`` is what
``labkit bpf ct list`` prints), events through events.decode (EVENTS rows with Cilium's
monitor line).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from ...netns import PrivateNetNS
from ...plan import initial
from ...spec import load_cluster, load_values
from . import bpfsys, build, loader
from . import layouts as L
from .events import decode, now_ns
from .maps import NodeMapReader
from .ringbuf import RingBuffer

# tc verdicts (include/uapi/linux/pkt_cls.h)
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
# struct __sk_buff (include/uapi/linux/bpf.h): the fields BPF_PROG_TEST_RUN takes in and out
SKB_SIZE, SKB_INGRESS_IFINDEX, SKB_IFINDEX, SKB_CB = 192, 36, 40, 48
# Cilium's bpf/tests mock the redirect helpers to see where a packet would go (the kernel
# only hands back the verdict). A Node(mock_redirects=True) loads the same sources compiled
# with these two -D flags on top of the lab's: bpf_redirect_peer and bpf_redirect record
# their kind and ifindex in skb->cb[0..1], which BPF_PROG_TEST_RUN copies back out. Every
# caller in bpf/ names its context ``skb``. bpf_redirect_neigh stays real: a redirect
# with nothing recorded is one.
MOCK_REDIRECTS = [
    "-Dbpf_redirect_peer(i,f)=({ skb->cb[0] = 1; skb->cb[1] = (i); (f) ? TC_ACT_SHOT : TC_ACT_REDIRECT; })",
    "-Dbpf_redirect(i,f)=({ skb->cb[0] = 2; skb->cb[1] = (i); (f) ? TC_ACT_SHOT : TC_ACT_REDIRECT; })",
]
REDIRECT_KINDS = {1: "peer", 2: "redirect"}


def feature_flags(overrides: dict[str, Any] | None = None) -> list[str]:
    """The -D flags a lab built from cluster/ with these ``--set`` overrides compiles with."""
    return build.cflags(load_values(overrides=overrides), initial(load_cluster()))


@dataclass
class Run:
    """One BPF_PROG_TEST_RUN: what the program returned and left behind."""

    verdict: int  # the tc return code (TC_ACT_*)
    packet: bytes  # the frame as the program left it
    events: list[dict] = field(default_factory=list)  # EVENTS rows (with the monitor "line")
    duration_ns: int = 0
    # with mock_redirects: ("peer" | "redirect", ifindex), ("neigh", 0) for bpf_redirect_neigh
    redirect: tuple[str, int] | None = None


class FreshMaps(NodeMapReader):
    """The lab's map reader, over a Node's unpinned maps."""

    def __init__(self, node: str, fds: dict[str, int]) -> None:  # no pin dir: nothing is pinned
        self.node = node
        self.fds = fds

    def _open(self, name: str) -> int:
        return os.dup(self.fds[name])


class Node:
    """One node's maps and programs, loaded from the lab's templates, without a lab.

    ``overrides`` are helm ``--set`` values (``{"socketLB.enabled": False}`` gives the tc
    load balancer build); ``name`` is the node name the events and tables carry.
    """

    def __init__(
        self, overrides: dict[str, Any] | None = None, name: str = "kind-worker", mock_redirects: bool = False
    ) -> None:
        self.name = name
        self.mock_redirects = mock_redirects
        self.flags = feature_flags(overrides) + (MOCK_REDIRECTS if mock_redirects else [])
        self.templates = build.templates(self.flags)
        self.map_fds: dict[str, int] = {}
        self.prog_fds: dict[str, int] = {}
        self.netns: PrivateNetNS | None = None
        self.ring: RingBuffer | None = None
        self._records: list[bytes] = []
        try:
            for t in self.templates.values():
                for m, shape in t.maps.items():
                    if m not in self.map_fds:
                        self.map_fds[m] = bpfsys.map_create(
                            shape["type"], shape["key_size"], shape["value_size"], shape["max_entries"],
                            shape["flags"], m,
                        )  # fmt: skip
            for src, t in self.templates.items():
                for fn in t.progs:
                    self.prog_fds[fn] = loader.load_program(src, t, fn, self.map_fds)
            size = self.templates["bpf_lxc.c"].maps["cilium_events"]["max_entries"]
            self.ring = RingBuffer(self.map_fds["cilium_events"], size, self._records.append)
            self.netns = PrivateNetNS()
        except BaseException:
            self.close()
            raise
        self.maps = FreshMaps(name, self.map_fds)

    # ------------------------------------------------------------------ filling the maps
    def fd(self, name: str) -> int:
        """The fd of map ``name`` (sync.py's NodeMaps interface)."""
        return self.map_fds[name]

    def put(self, name: str, key: bytes, value: bytes) -> None:
        bpfsys.update(self.map_fds[name], key, value)

    def set_config(self, node_ip: str, router_ip: str, native_ifindex: int) -> None:
        """labkit_node_config: what Cilium bakes into node_config.h."""
        self.put("labkit_node_config", struct.pack("=I", 0), L.node_config(node_ip, router_ip, native_ifindex))

    def add_endpoint(self, ip: str, ifindex: int, lxc_id: int, identity: int, mac: str, node_mac: str) -> None:
        """A local pod in cilium_lxc (endpoint_v4_add_entry in Cilium's tests), and behind its
        lxc (labkit_lxc_by_ifindex: the endpoint a packet from that lxc belongs to)."""
        info = L.endpoint_info(ifindex, lxc_id, 0, mac, node_mac, identity)
        self.put("cilium_lxc", L.endpoint_key(ip), info)
        self.put("labkit_lxc_by_ifindex", struct.pack("=I", ifindex), info)

    def add_host_address(self, ip: str) -> None:
        """A (localhost) row of cilium_lxc: the router IP or the node IP."""
        self.put("cilium_lxc", L.endpoint_key(ip), L.endpoint_info(0, 0, L.FLAG_HOST, None, None, 0))

    def add_ipcache(self, prefix: str, identity: int, tunnel: str = "0.0.0.0") -> None:
        self.put("cilium_ipcache", L.ipcache_key(prefix), L.ipcache_value(identity, tunnel))

    def add_service(self, vip: str, port: int, proto: str, rev_nat: int, backends: list[tuple[int, str, int]]) -> None:
        """A service: slot 0, one slot per (backend id, ip, port), the backends, reverse NAT."""
        for slot, (bid, ip, bport) in enumerate(backends, start=1):
            self.put("cilium_lb4_backends_v3", struct.pack("=I", bid), L.lb4_backend(ip, bport, proto))
            self.put("cilium_lb4_services_v2", L.lb4_key(vip, port, proto, slot), L.lb4_service(bid, 0, rev_nat))
        self.put("cilium_lb4_services_v2", L.lb4_key(vip, port, proto, 0), L.lb4_service(0, len(backends), rev_nat))
        self.put("cilium_lb4_reverse_nat", L.revnat_key(rev_nat), L.revnat_value(vip, port))

    # ------------------------------------------------------------------ running
    def ifnames(self) -> dict[int, str]:
        """ifindex -> name of the devices in ``self.netns`` (if_nameindex(3), no subprocess)."""
        assert self.netns is not None
        return dict(self.netns.call(socket.if_nameindex))

    def ifindex(self, ifname: str) -> int:
        """ifindex of a device the caller made in ``self.netns``."""
        return {name: i for i, name in self.ifnames().items()}[ifname]

    def run(self, fn: str, frame: bytes, ifindex: int = 1, ingress_ifindex: int | None = None) -> Run:
        """Run program ``fn`` on ``frame`` (Ethernet first) as if it arrived on ``ifindex``
        (a device of ``self.netns``; 1 is its loopback). The events it emitted are in the
        result; map entries stay in the maps."""
        assert self.netns is not None and self.ring is not None
        ctx = bytearray(SKB_SIZE)
        struct.pack_into("=II", ctx, SKB_INGRESS_IFINDEX, ifindex if ingress_ifindex is None else ingress_ifindex,
                         ifindex)  # fmt: skip
        self.ring.drain()
        self._records.clear()
        fd = self.prog_fds[fn]
        r = self.netns.call(lambda: bpfsys.prog_test_run(fd, frame, bytes(ctx)), what=fn)
        self.ring.drain()
        t = now_ns()
        events = decode([(t, rec) for rec in self._records], self.name, self.ifnames())
        redirect = None
        if self.mock_redirects and r.retval == TC_ACT_REDIRECT:
            kind, target = struct.unpack_from("=II", r.ctx, SKB_CB)
            redirect = (REDIRECT_KINDS[kind], target) if kind else ("neigh", 0)
        return Run(r.retval, r.data, events, r.duration_ns, redirect)

    # ------------------------------------------------------------------ cleaning up
    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None
        if self.netns is not None:
            self.netns.close()
            self.netns = None
        for fd in [*self.prog_fds.values(), *self.map_fds.values()]:
            os.close(fd)
        self.prog_fds.clear()
        self.map_fds.clear()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
