"""Byte layouts of the map keys and values (bpf/lib/common.h), as numpy dtypes and packers.

One place that knows the C structs: readers turn a batch of raw entries into a numpy
structured array in one call (no per-entry Python), writers pack plan rows. Fields in
network byte order (addresses, ports, rev-NAT ids) are declared big-endian ('>u2', '>u4')
so numpy converts them for free. tests/test_bpf_layouts.py compiles the C structs and
compares every field's offsetof and each sizeof with these dtypes.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

import numpy as np

ENDPOINT_KEY = np.dtype([("ip4", ">u4"), ("pad", "V12"), ("family", "u1"), ("key", "u1"), ("cluster_id", "<u2")])
ENDPOINT_INFO = np.dtype(
    [
        ("ifindex", "<u4"),
        ("unused", "<u2"),
        ("lxc_id", "<u2"),
        ("flags", "<u4"),
        ("pad0", "V4"),
        ("mac", "V6"),
        ("pad1", "V2"),
        ("node_mac", "V6"),
        ("pad2", "V2"),
        ("sec_id", "<u4"),
        ("parent_ifindex", "<u4"),
        ("pad", "V8"),
    ]
)
IPCACHE_KEY = np.dtype(
    [("prefixlen", "<u4"), ("cluster_id", "<u2"), ("pad1", "u1"), ("family", "u1"), ("ip4", ">u4"), ("pad", "V12")]
)
IPCACHE_VALUE = np.dtype(
    [("sec_identity", "<u4"), ("tunnel_endpoint", ">u4"), ("pad", "<u2"), ("key", "u1"), ("flags", "u1")]
)
CT_KEY = np.dtype(
    [("daddr", ">u4"), ("saddr", ">u4"), ("dport", ">u2"), ("sport", ">u2"), ("nexthdr", "u1"), ("flags", "u1")]
)
CT_ENTRY = np.dtype(
    [
        ("reserved0", "<u8"),
        ("backend_id", "<u8"),
        ("packets", "<u8"),
        ("bytes", "<u8"),
        ("lifetime", "<u4"),
        ("flags", "<u2"),
        ("rev_nat_index", ">u2"),
        ("ifindex", "<u2"),
        ("tx_flags_seen", "u1"),
        ("rx_flags_seen", "u1"),
        ("src_sec_id", "<u4"),
        ("last_tx_report", "<u4"),
        ("last_rx_report", "<u4"),
    ]
)
NAT_ENTRY = np.dtype(
    [
        ("created", "<u8"),
        ("needs_ct", "<u8"),
        ("pad1", "<u8"),
        ("pad2", "<u8"),
        ("addr", ">u4"),
        ("port", ">u2"),
        ("pad3", "<u2"),
    ]
)
LB4_KEY = np.dtype(
    [("address", ">u4"), ("dport", ">u2"), ("backend_slot", "<u2"), ("proto", "u1"), ("scope", "u1"), ("pad", "V2")]
)
LB4_SERVICE = np.dtype(
    [
        ("backend_id", "<u4"),
        ("count", "<u2"),
        ("rev_nat_index", ">u2"),
        ("flags", "u1"),
        ("flags2", "u1"),
        ("qcount", "<u2"),
    ]
)
LB4_BACKEND = np.dtype(
    [
        ("address", ">u4"),
        ("port", ">u2"),
        ("proto", "u1"),
        ("flags", "u1"),
        ("cluster_id", "<u2"),
        ("zone", "u1"),
        ("pad", "u1"),
    ]
)
REVNAT_VALUE = np.dtype([("address", ">u4"), ("port", ">u2")])
METRICS_KEY = np.dtype([("reason", "u1"), ("dir", "u1"), ("line", "<u2"), ("file", "u1"), ("reserved", "V3")])
METRICS_VALUE = np.dtype([("count", "<u8"), ("bytes", "<u8")])
# cilium_lb4_reverse_sk (written by bpf_sock.c only) and labkit_node_config (written by sync.py)
REVNAT_SK_KEY = np.dtype([("cookie", "<u8"), ("address", ">u4"), ("port", ">u2"), ("pad", "<u2")])
REVNAT_SK_VALUE = np.dtype([("address", ">u4"), ("port", ">u2"), ("rev_nat_index", ">u2")])
NODE_CONFIG = np.dtype([("node_ipv4", ">u4"), ("router_ipv4", ">u4"), ("native_ifindex", "<u4"), ("pad", "<u4")])

for _dt, _size in (
    (ENDPOINT_KEY, 20),
    (ENDPOINT_INFO, 48),
    (IPCACHE_KEY, 24),
    (IPCACHE_VALUE, 12),
    (CT_KEY, 14),
    (CT_ENTRY, 56),
    (NAT_ENTRY, 40),
    (LB4_KEY, 12),
    (LB4_SERVICE, 12),
    (LB4_BACKEND, 12),
    (REVNAT_VALUE, 6),
    (METRICS_KEY, 8),
    (METRICS_VALUE, 16),
    (REVNAT_SK_KEY, 16),
    (REVNAT_SK_VALUE, 8),
    (NODE_CONFIG, 16),
):
    assert _dt.itemsize == _size, (_dt, _size)

# struct trace_sock_notify (bpf/lib/trace.h): Cilium's 38 bytes, then labkit's cpu and netns cookie
TRACE_SOCK_NOTIFY = np.dtype(
    [
        ("type", "u1"),
        ("xlate_point", "u1"),
        ("dst_ip", "V16"),
        ("dst_port", "<u2"),
        ("sock_cookie", "<u8"),
        ("cgroup_id", "<u8"),
        ("l4_proto", "u1"),
        ("flags", "u1"),
        ("cpu", "<u4"),
        ("netns_cookie", "<u8"),
    ]
)
PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP", 0: "ANY"}
PROTO_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ANY": 0}
FLAG_HOST = 1


def ip_bytes(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def ips(values: np.ndarray | list[int]) -> list[str]:
    """u32 addresses (host order values) -> dotted strings, converting each distinct one once."""
    uniq, inverse = np.unique(np.asarray(values, dtype=np.uint32), return_inverse=True)
    names = np.array([socket.inet_ntoa(int(u).to_bytes(4, "big")) for u in uniq], dtype=object)
    return list(names[inverse]) if len(uniq) else []


def macs(values: np.ndarray) -> list[str]:
    return [":".join(f"{b:02X}" for b in bytes(v)) for v in values]


# ------------------------------------------------------------------ packers (writers)
def endpoint_key(ip: str) -> bytes:
    return struct.pack("=4s12xBBH", ip_bytes(ip), 1, 0, 0)


def endpoint_info(ifindex: int, lxc_id: int, flags: int, mac: str | None, node_mac: str | None, sec_id: int) -> bytes:
    return struct.pack(
        "=IHHI4x6s2x6s2xII8x",
        ifindex,
        0,
        lxc_id,
        flags,
        mac_bytes(mac) if mac else b"\0" * 6,
        mac_bytes(node_mac) if node_mac else b"\0" * 6,
        sec_id,
        0,
    )


def ipcache_key(prefix: str) -> bytes:
    net = ipaddress.IPv4Network(prefix)
    return struct.pack("=IHBB4s12x", 32 + net.prefixlen, 0, 0, 1, net.network_address.packed)


def ipcache_value(identity: int, tunnel_endpoint: str = "0.0.0.0") -> bytes:
    """flags stay 0: Cilium 1.17 sets none (pkg/maps/ipcache, RemoteEndpointInfo)."""
    return struct.pack("=I4sHBB", identity, ip_bytes(tunnel_endpoint), 0, 0, 0)


def lb4_key(ip: str, port: int, proto: str, slot: int) -> bytes:
    return struct.pack("=4s2sHBB2x", ip_bytes(ip), struct.pack(">H", port), slot, PROTO_NUMBERS[proto], 0)


# lb4_service flags / flags2 bits (cilium bpf/lib/common.h SVC_FLAG_*)
SVC_FLAG_ROUTABLE = 1 << 6
SVC_FLAG_INT_LOCAL_SCOPE = 1 << 4  # in flags2


def lb4_service(backend_id: int, count: int, rev_nat: int, flags: int = 0, flags2: int = 0) -> bytes:
    return struct.pack("=IH2sBBH", backend_id, count, struct.pack(">H", rev_nat), flags, flags2, 0)


def lb4_backend(ip: str, port: int, proto: str) -> bytes:
    return struct.pack("=4s2sBBHBx", ip_bytes(ip), struct.pack(">H", port), PROTO_NUMBERS[proto], 0, 0, 0)


def revnat_key(rev_nat: int) -> bytes:
    return struct.pack(">H", rev_nat)


def revnat_value(ip: str, port: int) -> bytes:
    return ip_bytes(ip) + struct.pack(">H", port)


def node_config(node_ip: str, router_ip: str, native_ifindex: int, host_ep_id: int = 0) -> bytes:
    return struct.pack("=4s4sII", ip_bytes(node_ip), ip_bytes(router_ip), native_ifindex, host_ep_id)
