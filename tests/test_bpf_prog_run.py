"""The datapath's programs on crafted packets (BPF_PROG_TEST_RUN), as Cilium's bpf/tests do.

No lab: each test loads the lab's own compiled templates with fresh maps it fills (one
node, kind-worker, with the blog's client-pod and webpod), hands a frame to a program
and checks what a learner would see of it: the verdict, the bytes that leave, the CT and
NAT entries (`cilium bpf ct list` / `nat list`), the monitor lines and the metrics. Runs
happen in a private network namespace whose devices and routes the fixture makes, so FIB
lookups are deterministic and nothing touches the host.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from labkit.embedded.ebpf import bpfsys, source
from labkit.embedded.ebpf import layouts as L
from labkit.embedded.ebpf.testrun import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, Node

pytestmark = pytest.mark.root

FIX = Path(__file__).parent / "fixtures" / "live" / "cilium"

# The blog's kind-worker (endpoint list, monitor lines), on labkit's kind network.
NODE_IP, NODE_MAC, ROUTER_IP = "172.18.0.3", "02:42:ac:12:00:03", "10.244.1.113"
CLIENT = dict(ip="10.244.1.71", lxc="lxc-client", lxc_id=2543, identity=30542,
              mac="da:15:43:39:36:5e", node_mac="32:17:55:23:39:08")  # fmt: skip
WEB = dict(ip="10.244.1.182", lxc="lxc49626b6ed5ee", lxc_id=359, identity=32693,
           mac="1e:97:a3:67:c6:d1", node_mac="a6:25:b4:a1:25:0a")  # fmt: skip
# kind-worker2 and a pod of it (native routing: reached through eth0, no tunnel)
REMOTE_NODE_IP, REMOTE_NODE_MAC, REMOTE_POD, REMOTE_IDENTITY = "172.18.0.4", "02:42:ac:12:00:04", "10.244.2.45", 12845
UNRESOLVED_CIDR, UNRESOLVED_GW = "10.244.3.0/24", "172.18.0.5"  # a route whose gateway has no neighbour yet
EXTERNAL_IP = "172.18.0.100"  # the lab's external host: masqueraded
VIP, VIP_PORT, REV_NAT, BACKEND_ID = "10.96.92.233", 80, 7, 1
HOST_ID, WORLD_ID, REMOTE_NODE_ID = 1, 2, 6


def wire(node: Node) -> None:
    """Devices, routes and map entries of the blog's kind-worker, in the node's netns."""
    assert node.netns is not None
    node.netns.ip_batch(
        [
            "link set lo up",
            f"link add eth0 address {NODE_MAC} type veth peer name kindnet",
            f"link add {CLIENT['lxc']} address {CLIENT['node_mac']} type veth peer name client-eth0",
            f"link add {WEB['lxc']} address {WEB['node_mac']} type veth peer name web-eth0",
            *(f"link set {d} up" for d in ("eth0", "kindnet", CLIENT["lxc"], "client-eth0", WEB["lxc"], "web-eth0")),
            f"addr add {NODE_IP}/16 dev eth0",
            f"route add 10.244.2.0/24 via {REMOTE_NODE_IP} dev eth0",
            f"route add {UNRESOLVED_CIDR} via {UNRESOLVED_GW} dev eth0",
            f"neigh add {REMOTE_NODE_IP} lladdr {REMOTE_NODE_MAC} dev eth0 nud permanent",
        ]
    )
    node.netns.sysctl({"net.ipv4.conf.all.forwarding": "1"})
    node.set_config(NODE_IP, ROUTER_IP, node.ifindex("eth0"))
    for ip in (ROUTER_IP, NODE_IP):
        node.add_host_address(ip)
    for ep in (CLIENT, WEB):
        node.add_endpoint(ep["ip"], node.ifindex(ep["lxc"]), ep["lxc_id"], ep["identity"], ep["mac"], ep["node_mac"])
        node.add_ipcache(f"{ep['ip']}/32", ep["identity"])
    node.add_ipcache("0.0.0.0/0", WORLD_ID)
    node.add_ipcache(f"{NODE_IP}/32", HOST_ID)
    node.add_ipcache(f"{REMOTE_NODE_IP}/32", REMOTE_NODE_ID)
    node.add_ipcache(f"{REMOTE_POD}/32", REMOTE_IDENTITY, tunnel=REMOTE_NODE_IP)


@pytest.fixture
def node() -> Iterator[Node]:
    """kind-worker with the blog's helm values (socket LB on, BPF masquerade)."""
    with Node() as n:
        wire(n)
        yield n


@pytest.fixture
def tclb_node() -> Iterator[Node]:
    """kind-worker with socketLB.enabled=false: services are DNATed per packet at tc."""
    with Node({"socketLB.enabled": False}) as n:
        wire(n)
        n.add_service(VIP, VIP_PORT, "TCP", REV_NAT, [(BACKEND_ID, WEB["ip"], 80)])
        yield n


@pytest.fixture(scope="module")
def mock_node() -> Iterator[Node]:
    """kind-worker on the build whose redirect helpers record where they send (testrun.MOCK_REDIRECTS).
    Module-scoped: the tests below only look at where each path redirects."""
    with Node(mock_redirects=True) as n:
        wire(n)
        yield n


def test_the_nodes_devices_live_only_in_its_private_namespace():
    with Node() as n:
        wire(n)
        assert n.netns is not None
        inside = set(n.netns.links())
        assert {"eth0", "kindnet", CLIENT["lxc"], WEB["lxc"]} <= inside
        for dev in ("kindnet", "client-eth0", "web-eth0"):  # names no host has
            with pytest.raises(OSError):
                socket.if_nametoindex(dev)
        fd = n.netns.fd
    with pytest.raises(OSError):  # closed: the namespace went with its last reference
        os.fstat(fd)


# ------------------------------------------------------------------ packets
def from_pod(ep: dict, dst: str, l4, ttl: int = 64) -> bytes:
    """A frame a pod sends: to its lxc's MAC (the router MAC it learnt by ARP)."""
    return bytes(Ether(src=ep["mac"], dst=ep["node_mac"]) / IP(src=ep["ip"], dst=dst, ttl=ttl, id=1) / l4)


def syn(sport: int = 42278, dport: int = 80) -> TCP:
    return TCP(sport=sport, dport=dport, flags="S", seq=1000)


def synack(sport: int = 80, dport: int = 42278) -> TCP:
    return TCP(sport=sport, dport=dport, flags="SA", seq=5000, ack=1001)


def checksums_ok(frame: bytes) -> bool:
    """The IP and L4 checksums are what scapy computes afresh for the same headers."""
    got = Ether(frame)
    fresh = got.copy()
    del fresh[IP].chksum
    del fresh[IP].payload.chksum
    fresh = Ether(bytes(fresh))
    return (got[IP].chksum, got[IP].payload.chksum) == (fresh[IP].chksum, fresh[IP].payload.chksum)


def blog_line(path: Path, start: str) -> str:
    return next(ln for ln in path.read_text().splitlines() if ln.startswith(start))


def masked(line: str) -> str:
    """A `cilium bpf ct list` line with the clock-dependent numbers masked."""
    return re.sub(r"(expires|LastRxReport|LastTxReport)=\d+", r"\1=N", line).strip()


def ct_lines(node: Node) -> list[str]:
    """`cilium bpf ct list global`, masked and sorted."""
    return sorted(masked(ln) for ln in node.maps.text("ct").splitlines() if ln.strip())


def metrics(node: Node) -> dict[tuple[str, str], tuple[int, int]]:
    m = node.maps.metrics()
    return {(r.reason, r.direction): (int(r.packets), int(r.bytes)) for r in m.itertuples()}


def source_line(name: str, needle: str) -> int:
    """The line of bpf/``name`` that contains ``needle`` (exactly one)."""
    hits = [i for i, ln in enumerate((source.BPF_DIR / name).read_text().splitlines(), 1) if needle in ln]
    assert len(hits) == 1, (name, needle, hits)
    return hits[0]


# ------------------------------------------------------------------ ARP responder
def test_arp_request_is_answered_with_the_lxc_mac_back_out_of_the_lxc(node):
    req = Ether(src=CLIENT["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=CLIENT["mac"], psrc=CLIENT["ip"], hwdst="00:00:00:00:00:00", pdst=ROUTER_IP
    )
    r = node.run("cil_from_container", bytes(req), ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT  # ctx_redirect(ctx, ctx_get_ifindex(ctx), 0): back to the pod
    want = Ether(src=CLIENT["node_mac"], dst=CLIENT["mac"]) / ARP(
        op=2, hwsrc=CLIENT["node_mac"], psrc=ROUTER_IP, hwdst=CLIENT["mac"], pdst=CLIENT["ip"]
    )
    assert r.packet == bytes(want)
    assert r.events == []  # Cilium sends no trace for ARP replies either


def test_arp_from_an_unknown_address_or_gratuitous_goes_to_the_stack_untouched(node):
    lxc = node.ifindex(CLIENT["lxc"])
    for sip, tip in (("10.244.1.99", ROUTER_IP), (CLIENT["ip"], CLIENT["ip"])):
        req = bytes(
            Ether(src=CLIENT["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT["mac"], psrc=sip, pdst=tip)
        )
        r = node.run("cil_from_container", req, ifindex=lxc)
        assert (r.verdict, r.packet) == (TC_ACT_OK, req)


# ------------------------------------------------------------------ same node: local delivery
def test_pod_to_pod_same_node_is_redirected_into_the_peer_with_its_macs(node):
    frame = from_pod(CLIENT, WEB["ip"], syn())
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT  # bpf_redirect_peer (the trace below names the ifindex)
    out = Ether(r.packet)
    assert (out.src, out.dst) == (WEB["node_mac"], WEB["mac"])  # from the web lxc, to the web pod
    assert (out[IP].src, out[IP].dst, out[IP].ttl) == (CLIENT["ip"], WEB["ip"], 63)
    assert checksums_ok(r.packet)
    [ev] = r.events
    assert (ev["type"], ev["observation_point"], ev["ifindex"]) == ("trace", "to-endpoint", node.ifindex(WEB["lxc"]))
    # The blog's `cilium monitor --to 359` line, flow hash aside.
    want = blog_line(FIX / "monitor.blog-to-359.txt", "-> endpoint 359 flow")
    assert re.sub(r"flow 0x[0-9a-f]+", "flow H", ev["line"]) == re.sub(r"flow 0x[0-9a-f]+", "flow H", want)
    size = len(frame)
    assert metrics(node) == {("Success", "EGRESS"): (1, size), ("Success", "INGRESS"): (1, size)}


def test_same_node_ct_entries_are_the_blogs_after_syn_and_synack(node):
    node.run("cil_from_container", from_pod(CLIENT, WEB["ip"], syn()), ifindex=node.ifindex(CLIENT["lxc"]))
    ct = node.maps.ct().set_index("direction")
    assert set(ct.index) == {"OUT", "IN"}  # OUT by the client's egress, IN by the delivery to the server
    assert list(ct.loc["OUT", ["tx_flags_seen", "rx_flags_seen"]]) == [0x02, 0x00]
    r = node.run("cil_from_container", from_pod(WEB, CLIENT["ip"], synack()), ifindex=node.ifindex(WEB["lxc"]))
    [ev] = r.events
    assert (ev["observation_point"], ev["dst_id"], ev["state"]) == ("to-endpoint", 2543, "reply")
    # Keys store the tuple reversed (Cilium's orientation): OUT {daddr=client, saddr=server, dport=80, sport=42278}.
    key = L.ip_bytes(CLIENT["ip"]) + L.ip_bytes(WEB["ip"]) + (80).to_bytes(2, "big") + (42278).to_bytes(2, "big")
    for flags in (0, 1):  # TUPLE_F_OUT, TUPLE_F_IN
        assert bpfsys.lookup(node.fd("cilium_ct4_global"), key + bytes([6, flags]), 56) is not None
    # after SYN and SYN-ACK: no non-SYN seen yet (CT_SYN_TIMEOUT), nothing closing
    common = "Packets=0 Bytes=0 RxFlagsSeen=0x{rx} LastRxReport=N TxFlagsSeen=0x{tx} LastTxReport=N Flags=0x0000 [ ] "
    tail = "RevNAT=0 SourceSecurityID=30542 IfIndex=0 BackendID=0"
    conn = "TCP {d} 10.244.1.71:42278 -> 10.244.1.182:80 expires=N "
    assert ct_lines(node) == sorted(
        [
            conn.format(d="OUT") + common.format(rx="12", tx="02") + tail,
            conn.format(d="IN") + common.format(rx="02", tx="12") + tail,
        ]
    )


def test_monitor_aggregation_reports_new_flags_only_but_metrics_count_every_packet(node):
    lxc = node.ifindex(CLIENT["lxc"])
    first = node.run("cil_from_container", from_pod(CLIENT, WEB["ip"], syn()), ifindex=lxc)
    again = node.run("cil_from_container", from_pod(CLIENT, WEB["ip"], syn()), ifindex=lxc)
    ack = node.run(
        "cil_from_container", from_pod(CLIENT, WEB["ip"], TCP(sport=42278, dport=80, flags="A")), ifindex=lxc
    )
    assert [len(first.events), len(again.events), len(ack.events)] == [1, 0, 1]
    assert ack.events[0]["state"] == "established" and ack.events[0]["tcp_flags"] == "ACK"
    assert metrics(node)[("Success", "EGRESS")][0] == 3


def test_ttl_one_is_dropped_on_delivery_with_its_reason(node):
    r = node.run("cil_from_container", from_pod(CLIENT, WEB["ip"], syn(), ttl=1), ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_SHOT
    [ev] = r.events
    assert (ev["type"], ev["drop_reason"]) == ("drop", "TTL exceeded")
    assert ("TTL exceeded", "INGRESS") in metrics(node)


# ------------------------------------------------------------------ drops at the source
def test_unknown_source_address_is_dropped_as_invalid_source_ip(node):
    frame = bytes(Ether(src=CLIENT["mac"], dst=CLIENT["node_mac"]) / IP(src="10.244.1.99", dst=WEB["ip"]) / syn())
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_SHOT
    [ev] = r.events
    line = source_line("bpf_lxc.c", "DROP_INVALID_SIP")
    assert ev["line"].startswith(
        f"xx drop (Invalid source ip) flow {ev['flow']:#x} to endpoint 0, ifindex {node.ifindex(CLIENT['lxc'])}, "
        f"file bpf_lxc.c:{line}, "
    )
    assert ev["line"].endswith(": 10.244.1.99:42278 -> 10.244.1.182:80 tcp SYN")
    raw = node.maps._metrics_raw()
    assert raw[["reason", "direction", "packets", "line", "file"]].values.tolist() == [
        ["Invalid source ip", "EGRESS", 1, line, "bpf_lxc.c"]
    ]
    assert node.maps.ct().empty  # nothing is tracked for a dropped packet


def test_non_ip_frames_from_a_pod_are_dropped_as_unsupported_l3(node):
    frame = bytes(Ether(src=CLIENT["mac"], dst=CLIENT["node_mac"]) / IPv6(src="fd00::1", dst="fd00::2") / UDP())
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_SHOT
    assert [e["drop_reason"] for e in r.events] == ["Unsupported L3 protocol"]
    # the line of the drop in the program's own function (bcc adds lines there: source.py keeps count)
    line = source_line("bpf_lxc.c", "DROP_UNKNOWN_L3")
    assert f"file bpf_lxc.c:{line}, " in r.events[0]["line"]
    assert node.maps._metrics_raw()[["reason", "line"]].values.tolist() == [["Unsupported L3 protocol", line]]


# ------------------------------------------------------------------ other node: FIB
def test_pod_to_remote_pod_takes_the_fib_path_out_of_eth0(node):
    frame = from_pod(CLIENT, REMOTE_POD, syn())
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT  # bpf_redirect to the FIB's egress device
    out = Ether(r.packet)
    assert (out.src, out.dst) == (NODE_MAC, REMOTE_NODE_MAC)  # eth0 -> the other node (its neighbour entry)
    assert (out[IP].src, out[IP].dst, out[IP].ttl) == (CLIENT["ip"], REMOTE_POD, 63)  # the pod IP is kept
    assert checksums_ok(r.packet)
    [ev] = r.events
    assert (ev["observation_point"], ev["ifname"], ev["state"]) == ("to-network", "eth0", "new")
    assert (ev["src_identity"], ev["dst_identity"]) == (CLIENT["identity"], REMOTE_IDENTITY)
    ct = node.maps.ct()
    assert ct.direction.tolist() == ["OUT"]  # the IN entry is the other node's business
    assert metrics(node) == {("Success", "EGRESS"): (1, len(frame))}


def test_unresolved_next_hop_goes_to_redirect_neigh_with_the_ttl_decremented(node):
    frame = from_pod(CLIENT, "10.244.3.7", syn())
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT  # bpf_redirect_neigh resolves the MACs after us
    out = Ether(r.packet)
    assert (out.src, out.dst) == (CLIENT["mac"], CLIENT["node_mac"]) and out[IP].ttl == 63
    assert checksums_ok(r.packet)
    assert [(e["observation_point"], e["ifname"]) for e in r.events] == [("to-network", "eth0")]


def test_no_route_is_dropped_as_fib_lookup_failed(node):
    r = node.run("cil_from_container", from_pod(CLIENT, "192.0.2.9", syn()), ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_SHOT
    assert [(e["type"], e["drop_reason"]) for e in r.events] == [("drop", "FIB lookup failed")]
    assert ("FIB lookup failed", "EGRESS") in metrics(node)


# ------------------------------------------------------------------ BPF masquerade
def test_to_netdev_masquerades_a_pod_flow_to_the_node_ip(node):
    frame = bytes(Ether(src=NODE_MAC, dst="02:42:ac:12:00:64") / IP(src=CLIENT["ip"], dst=EXTERNAL_IP) / syn())
    r = node.run("cil_to_netdev", frame, ifindex=node.ifindex("eth0"))
    assert r.verdict == TC_ACT_OK
    out = Ether(r.packet)
    assert (out[IP].src, out[TCP].sport, out[IP].dst, out[TCP].dport) == (NODE_IP, 42278, EXTERNAL_IP, 80)
    assert checksums_ok(r.packet)
    # `cilium bpf nat list`: the OUT entry and the IN entry the reply will hit
    nat = sorted(
        re.sub(r"Created=\d+sec ago", "Created=Nsec ago", ln).strip() for ln in node.maps.text("nat").splitlines()
    )
    assert [ln for ln in nat if ln] == [
        f"TCP IN {EXTERNAL_IP}:80 -> {NODE_IP}:42278 XLATE_DST {CLIENT['ip']}:42278 Created=Nsec ago NeedsCT=0",
        f"TCP OUT {CLIENT['ip']}:42278 -> {EXTERNAL_IP}:80 XLATE_SRC {NODE_IP}:42278 Created=Nsec ago NeedsCT=0",
    ]
    assert metrics(node) == {("Success", "EGRESS"): (1, len(frame))}


def test_to_netdev_picks_another_port_when_the_pods_port_is_taken(node):
    taken = bytes(Ether() / IP(src="10.244.1.50", dst=EXTERNAL_IP) / syn())
    node.add_endpoint("10.244.1.50", 99, 77, 40000, "02:00:00:00:00:01", "02:00:00:00:00:02")
    assert node.run("cil_to_netdev", taken, ifindex=node.ifindex("eth0")).verdict == TC_ACT_OK
    r = node.run("cil_to_netdev", from_pod(CLIENT, EXTERNAL_IP, syn()), ifindex=node.ifindex("eth0"))
    out = Ether(r.packet)
    assert out[IP].src == NODE_IP and 32768 <= out[TCP].sport <= 65535 and out[TCP].sport != 42278
    assert checksums_ok(r.packet)
    nat = node.maps.nat()
    mine = nat[(nat.direction == "OUT") & (nat.src_ip == CLIENT["ip"])]
    assert mine.xlate_port.tolist() == [out[TCP].sport]


def test_to_netdev_leaves_native_routing_alone(node):
    eth0 = node.ifindex("eth0")
    for frame in (
        from_pod(CLIENT, REMOTE_POD, syn()),  # inside ipv4NativeRoutingCIDR
        from_pod(CLIENT, REMOTE_NODE_IP, syn()),  # a cluster node (remote-node identity)
        bytes(Ether() / IP(src=NODE_IP, dst=REMOTE_NODE_IP) / TCP(sport=6443, dport=45678, flags="SA")),  # a server
    ):
        r = node.run("cil_to_netdev", frame, ifindex=eth0)
        assert (r.verdict, r.packet) == (TC_ACT_OK, frame)
    assert node.maps.nat().empty
    assert metrics(node)[("Success", "EGRESS")][0] == 3  # to-network counts every packet (_update_trace_metrics)


def test_to_netdev_tracks_the_nodes_own_connections_with_needs_ct(node):
    """snat_v4_needs_masquerade: source = IPV4_MASQUERADE -> SNAT to itself, NeedsCT=1, and the
    connection in the CT map (snat_v4_nat_handle_mapping); the to-network trace says so."""
    frame = bytes(Ether() / IP(src=NODE_IP, dst=REMOTE_NODE_IP) / TCP(sport=41234, dport=6443, flags="S"))
    r = node.run("cil_to_netdev", frame, ifindex=node.ifindex("eth0"))
    assert (r.verdict, r.packet) == (TC_ACT_OK, frame)  # address and port kept
    nat = sorted(
        re.sub(r"Created=\d+sec ago", "Created=N", ln).strip()
        for ln in node.maps.text("nat").splitlines()
        if ln.strip()
    )
    assert nat == [
        f"TCP IN {REMOTE_NODE_IP}:6443 -> {NODE_IP}:41234 XLATE_DST {NODE_IP}:41234 Created=N NeedsCT=1",
        f"TCP OUT {NODE_IP}:41234 -> {REMOTE_NODE_IP}:6443 XLATE_SRC {NODE_IP}:41234 Created=N NeedsCT=1",
    ]
    ct = node.maps.ct()
    assert ct[["direction", "src_ip", "dst_port", "src_identity"]].values.tolist() == [["OUT", NODE_IP, 6443, 0]]
    [ev] = r.events
    assert (
        ev["line"].startswith("-> network flow ") and " identity unknown->unknown state new ifindex eth0 " in ev["line"]
    )


def test_masqueraded_reply_is_translated_back_and_delivered_to_the_pod(node):
    lxc, eth0 = node.ifindex(CLIENT["lxc"]), node.ifindex("eth0")
    out = node.run("cil_from_container", from_pod(CLIENT, EXTERNAL_IP, syn()), ifindex=lxc)
    assert out.verdict == TC_ACT_REDIRECT and [e["ifname"] for e in out.events] == ["eth0"]
    wire_out = node.run("cil_to_netdev", out.packet, ifindex=eth0)
    sent = Ether(wire_out.packet)
    reply = bytes(
        Ether(src="02:42:ac:12:00:64", dst=NODE_MAC)
        / IP(src=EXTERNAL_IP, dst=sent[IP].src, ttl=64)
        / synack(dport=sent[TCP].sport)
    )
    r = node.run("cil_from_netdev", reply, ifindex=eth0)
    assert r.verdict == TC_ACT_REDIRECT
    back = Ether(r.packet)
    assert (back.dst, back[IP].src, back[IP].dst, back[TCP].dport) == (CLIENT["mac"], EXTERNAL_IP, CLIENT["ip"], 42278)
    assert back[IP].ttl == 63 and checksums_ok(r.packet)
    [ev] = r.events
    assert (ev["observation_point"], ev["dst_id"], ev["state"]) == ("to-endpoint", CLIENT["lxc_id"], "reply")
    assert ev["src_identity"] == WORLD_ID


def test_from_netdev_passes_traffic_for_the_node_to_the_stack(node):
    frame = bytes(Ether(dst=NODE_MAC) / IP(src=REMOTE_NODE_IP, dst=NODE_IP) / UDP(sport=5000, dport=53))
    r = node.run("cil_from_netdev", frame, ifindex=node.ifindex("eth0"))
    assert (r.verdict, r.packet, r.events) == (TC_ACT_OK, frame, [])


# ------------------------------------------------------------------ tc load balancer
def test_tc_lb_dnats_the_clusterip_to_a_backend_and_records_it_in_ct(tclb_node):
    node = tclb_node
    r = node.run("cil_from_container", from_pod(CLIENT, VIP, syn()), ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT
    out = Ether(r.packet)
    assert (out[IP].dst, out[TCP].dport, out.dst) == (WEB["ip"], 80, WEB["mac"])  # DNAT, then local delivery
    assert checksums_ok(r.packet)
    ct = node.maps.ct().set_index("direction")
    svc = ct.loc["SVC"]
    assert (svc.src_ip, svc.dst_ip, svc.dst_port, svc.rev_nat, svc.backend_id) == (
        CLIENT["ip"], VIP, VIP_PORT, REV_NAT, BACKEND_ID,
    )  # fmt: skip
    assert (ct.loc["OUT", "dst_ip"], ct.loc["OUT", "rev_nat"]) == (WEB["ip"], REV_NAT)
    assert ct.loc["IN", "rev_nat"] == 0
    [ev] = r.events
    assert (ev["observation_point"], ev["dst_id"], ev["dst_ip"]) == ("to-endpoint", WEB["lxc_id"], WEB["ip"])


def test_tc_lb_reply_gets_the_clusterip_back_as_its_source(tclb_node):
    node = tclb_node
    node.run("cil_from_container", from_pod(CLIENT, VIP, syn()), ifindex=node.ifindex(CLIENT["lxc"]))
    r = node.run("cil_from_container", from_pod(WEB, CLIENT["ip"], synack()), ifindex=node.ifindex(WEB["lxc"]))
    assert r.verdict == TC_ACT_REDIRECT
    back = Ether(r.packet)
    assert (back[IP].src, back[TCP].sport, back[IP].dst, back.dst) == (VIP, VIP_PORT, CLIENT["ip"], CLIENT["mac"])
    assert checksums_ok(r.packet)
    [ev] = r.events
    assert (ev["state"], ev["orig_ip"], ev["src_ip"]) == ("reply", WEB["ip"], VIP)  # orig-ip: before rev-NAT


def test_tc_lb_translates_the_port_and_udp_checksums(tclb_node):
    node = tclb_node
    node.add_service(VIP, 53, "UDP", 9, [(2, WEB["ip"], 5353)])
    frame = from_pod(CLIENT, VIP, UDP(sport=40000, dport=53) / b"query")
    r = node.run("cil_from_container", frame, ifindex=node.ifindex(CLIENT["lxc"]))
    out = Ether(r.packet)
    assert (r.verdict, out[IP].dst, out[UDP].dport) == (TC_ACT_REDIRECT, WEB["ip"], 5353)
    assert checksums_ok(r.packet)
    udp = node.maps.ct()
    assert set(udp.proto) == {"UDP"} and set(udp.direction) == {"SVC", "OUT", "IN"}


def test_tc_lb_service_without_backends_is_dropped(tclb_node):
    node = tclb_node
    node.add_service(VIP, 443, "TCP", 8, [])
    r = node.run("cil_from_container", from_pod(CLIENT, VIP, syn(dport=443)), ifindex=node.ifindex(CLIENT["lxc"]))
    assert r.verdict == TC_ACT_SHOT
    assert [e["drop_reason"] for e in r.events] == ["Service backend not found"]


def test_icmp_echo_to_a_local_pod_is_tracked_with_its_id(node):
    r = node.run("cil_from_container", from_pod(CLIENT, WEB["ip"], ICMP(type=8, id=0x1234, seq=1)),
                 ifindex=node.ifindex(CLIENT["lxc"]))  # fmt: skip
    assert r.verdict == TC_ACT_REDIRECT and checksums_ok(r.packet)
    ct = node.maps.ct()
    assert set(ct.proto) == {"ICMP"} and set(ct.direction) == {"OUT", "IN"}


# ------------------------------------------------------------------ where each path redirects
def arp_request() -> bytes:
    return bytes(
        Ether(src=CLIENT["mac"], dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=CLIENT["mac"], psrc=CLIENT["ip"], pdst=ROUTER_IP)
    )


@pytest.mark.parametrize(
    "prog, frame, arrives_on, helper, target",
    [
        ("cil_from_container", arp_request(), CLIENT["lxc"], "redirect", CLIENT["lxc"]),  # the ARP reply: same lxc
        ("cil_from_container", from_pod(CLIENT, WEB["ip"], syn()), CLIENT["lxc"], "peer", WEB["lxc"]),
        ("cil_from_container", from_pod(CLIENT, REMOTE_POD, syn()), CLIENT["lxc"], "redirect", "eth0"),  # FIB
        ("cil_from_container", from_pod(CLIENT, "10.244.3.7", syn()), CLIENT["lxc"], "neigh", None),
        (
            "cil_from_netdev",
            bytes(Ether(dst=NODE_MAC) / IP(src=REMOTE_POD, dst=WEB["ip"]) / syn(sport=5555)),
            "eth0",
            "peer",
            WEB["lxc"],
        ),  # from another node, into the pod
    ],
    ids=["arp-reply", "same-node", "other-node", "unresolved-next-hop", "from-netdev"],
)
def test_each_path_redirects_with_its_helper_to_its_device(mock_node, prog, frame, arrives_on, helper, target):
    r = mock_node.run(prog, frame, ifindex=mock_node.ifindex(arrives_on))
    assert r.verdict == TC_ACT_REDIRECT
    assert r.redirect == (helper, mock_node.ifindex(target) if target else 0)
