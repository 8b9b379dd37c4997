"""Cilium's and Hubble's formats (labkit/cilium/monitor.py, hubble.py) and the CoreDNS
stand-in's answers, without a lab: each assertion names the Cilium or CoreDNS behaviour."""

from __future__ import annotations

import importlib.util
import json
import socket
import struct
import sys
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from labkit import plan as planning
from labkit import spec
from labkit.cilium import hubble
from labkit.cilium import monitor as mon
from labkit.embedded import hosts

FIX = Path(__file__).parent / "fixtures" / "live" / "cilium"
WORKLOADS = Path(__file__).resolve().parent.parent / "labkit" / "workloads"


def _frame(flags: int = 0x02) -> bytes:
    eth = bytes.fromhex("1e97a367c6d1") + bytes.fromhex("a625b4a1250a") + b"\x08\x00"
    ip = (
        bytes([0x45, 0, 0, 60, 0x70, 0xF2, 0x40, 0, 63, 6, 0xB5, 0x4D])
        + socket.inet_aton("10.244.1.71")
        + socket.inet_aton("10.244.1.182")
    )
    opts = bytes.fromhex("020405b40402080a919a4e3c0000000001030307")
    tcp = struct.pack(">HHIIBBHHH", 42278, 80, 2226486015, 0, 0xA0, flags, 64240, 5958, 0) + opts
    return eth + ip + tcp


def test_trace_line_is_the_blogs():
    d = mon.dissect(_frame())
    summary = mon.trace_summary(0, 359, 359, "lxc49626b6ed5ee")
    line = mon.trace_line(
        summary, 0x2B611E1D, 30542, 32693, "new", "lxc49626b6ed5ee", "10.244.1.71", mon.connection_summary(d)
    )
    blog = (FIX / "monitor.blog-to-359.txt").read_text().splitlines()
    assert line == blog[3]


def test_drop_line_names_identity_zero_unknown():
    d = mon.dissect(_frame())
    line = mon.drop_line("Invalid source ip", 0xFDDD76F6, 0, 29, 2, 42, 0, 2, mon.connection_summary(d))
    assert line.startswith("xx drop (Invalid source ip) flow 0xfddd76f6 to endpoint 0, ifindex 29, file bpf_lxc.c:42, ")
    assert ", , identity unknown->world: 10.244.1.71:42278 -> 10.244.1.182:80 tcp SYN" in line


def test_sock_trace_line_as_dump_debug():
    assert mon.sock_line(3, 1, 4253, 4317, "10.96.92.233", 80, 1) == (
        "CPU 03: [pre-xlate-fwd] cgroup_id: 4253 sock_cookie: 4317, dst [10.96.92.233]:80 tcp "
    )


def test_monitor_json_has_cilium_fields_and_go_escaping():
    data = _frame()
    d = mon.dissect(data)
    doc = mon.trace_json(3, 0x2B611E1D, "lxc49626b6ed5ee", "new", "to-endpoint", "-> endpoint 359", 359, 74,
                         30542, 32693, 359, data, d)  # fmt: skip
    assert '"traceSummary":"-\\u003e endpoint 359"' in doc  # json.Marshal escapes ">"
    obj = json.loads(doc)
    assert list(obj) == ["cpu", "type", "mark", "ifindex", "state", "observationPoint", "traceSummary", "source",
                         "bytes", "srcLabel", "dstLabel", "dstID", "summary"]  # fmt: skip
    s = obj["summary"]
    assert s["ethernet"].startswith("Ethernet\t{Contents=[..14..] Payload=[..60..] SrcMAC=a6:25:b4:a1:25:0a")
    assert "Id=28914 Flags=DF FragOffset=0 TTL=63 Protocol=TCP Checksum=46413" in s["ipv4"]
    assert "SrcPort=42278 DstPort=80(http) Seq=2226486015 Ack=0 DataOffset=10 FIN=false SYN=true" in s["tcp"]
    assert s["l4"] == {"src": "42278", "dst": "80"}
    drop = json.loads(mon.drop_json(1, 1, "Invalid source ip", 0, 74, 0, 2, 0, 42, 2, 29, data, d))
    assert [k for k in drop if k[0].isupper()] == ["Line", "File", "ExtError", "Ifindex"]


def test_protojson_timestamps_keep_only_needed_digits():
    assert hubble.timestamp(1754121654_000000000) == "2025-08-02T08:00:54Z"
    assert hubble.timestamp(1754121654_904000000) == "2025-08-02T08:00:54.904Z"
    assert hubble.timestamp(1754121654_904025000) == "2025-08-02T08:00:54.904025Z"
    assert hubble.timestamp(1754121654_904025113) == "2025-08-02T08:00:54.904025113Z"
    for text in ("2025-08-02T08:00:54Z", "2025-08-02T08:00:54.9Z", "2025-08-02T08:00:54.904025113Z"):
        assert hubble.parse_timestamp(text).year == 2025


def test_compact_line_as_hubbles_printer():
    line = (FIX / "hubble-observe.jsonl").read_text().splitlines()[0]
    out = hubble.compact(json.loads(line))
    assert out.startswith("Aug  2 07:00:54.904: native/client-pod:55240 (ID:30542) -> ")
    assert out.endswith("(ID:32693) to-endpoint FORWARDED (TCP Flags: SYN)")
    drop = {"flow": {"time": "2025-08-02T07:00:54Z", "verdict": "DROPPED", "IP": {"source": "1.1.1.1",
            "destination": "10.244.1.9"}, "source": {"identity": 2}, "destination": {"identity": 0},
            "event_type": {"type": 1, "sub_type": 132}, "Summary": "ICMPv4 EchoRequest"}}  # fmt: skip
    assert hubble.compact(drop) == (
        "Aug  2 07:00:54.000: 1.1.1.1 (world) <> 10.244.1.9 (unknown) Invalid source ip DROPPED (ICMPv4 EchoRequest)"
    )


# ------------------------------------------------------------------ the CoreDNS stand-in
@pytest.fixture(scope="module")
def kubedns():
    spec_ = importlib.util.spec_from_file_location("kubedns_under_test", WORKLOADS / "kubedns.py")
    mod = importlib.util.module_from_spec(spec_)
    sys.path.insert(0, str(WORKLOADS))
    spec_.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def zone():
    p, _ = planning.extend(
        planning.with_control_plane(planning.initial(spec.load_cluster())),
        spec.load_manifests([spec.CLUSTER_DIR / "manifests"]),
    )
    return p, hosts.zone(p)


def ask(kubedns, zone, name: str, qtype: str = "A", cluster: bool = True) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    return DNSRecord.parse(kubedns.answer(None, zone, q.pack(), cluster))


def test_service_and_endpoint_names(kubedns, zone):
    plan, z = zone
    web = plan.service("native", "webpod")
    r = ask(kubedns, z, "webpod.native.svc.cluster.local")
    assert r.header.aa == 1 and [str(a.rdata) for a in r.rr] == [web.cluster_ip] and r.rr[0].ttl == 30
    b = plan.endpoints(web)[0]
    r = ask(kubedns, z, f"{b.ip.replace('.', '-')}.webpod.native.svc.cluster.local")
    assert [str(a.rdata) for a in r.rr] == [b.ip]
    r = ask(kubedns, z, ".".join(reversed(b.ip.split("."))) + ".in-addr.arpa", "PTR")
    assert str(r.rr[0].rdata) == f"{b.ip.replace('.', '-')}.webpod.native.svc.cluster.local."
    r = ask(kubedns, z, "10-244-9-9.native.pod.cluster.local")  # pods insecure
    assert [str(a.rdata) for a in r.rr] == ["10.244.9.9"]


def test_missing_names_and_aaaa(kubedns, zone):
    _, z = zone
    r = ask(kubedns, z, "nope.native.svc.cluster.local")
    assert r.header.rcode == RCODE.NXDOMAIN and r.auth[0].rtype == QTYPE.SOA
    r = ask(kubedns, z, "webpod.native.svc.cluster.local", "AAAA")
    assert r.header.rcode == RCODE.NOERROR and not r.rr  # IPv4-only cluster: no AAAA, not an error
    r = ask(kubedns, z, "webpod.native.svc.cluster.local.svc.cluster.local")  # a search-list miss
    assert r.header.rcode == RCODE.NXDOMAIN


def test_node_names_come_from_the_upstream(kubedns, zone):
    plan, z = zone
    for cluster in (True, False):
        r = ask(kubedns, z, "kind-worker", cluster=cluster)
        assert [str(a.rdata) for a in r.rr] == [plan.node("kind-worker").ip]
    r = ask(kubedns, z, "webpod.native.svc.cluster.local", cluster=False)  # docker's DNS knows no services
    assert r.header.rcode == RCODE.NXDOMAIN
