"""Header fields of many frames at once, gathered with numpy from a packed buffer.

Why vectorised: a lab capture, a pcap of a busy link or the benchmark's million packets all
go through here, and per-packet Python objects (what scapy builds) are 10-100x slower.
Every field is an array with one entry per frame plus a validity mask per layer
(``is_arp``, ``is_ip``, ``is_tcp``, ...). Layers understood: Ethernet II, ARP (IPv4 over
Ethernet), IPv4, and on first fragments TCP, UDP and ICMP. Text is built in
:mod:`labkit.capture.summary`; the table in :mod:`labkit.capture.table`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import Frames

ETH_HLEN = 14
ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17


@dataclass
class Fields:
    """Decoded header fields, one array entry per frame (meaningless where masks are false)."""

    n: int
    ethertype: np.ndarray
    src_mac: np.ndarray  # 48-bit ints
    dst_mac: np.ndarray
    is_arp: np.ndarray
    arp_op: np.ndarray
    arp_sha: np.ndarray  # 48-bit int
    arp_tha: np.ndarray
    is_ip: np.ndarray
    ip_src: np.ndarray  # uint32 as int64 (ARP: sender protocol address)
    ip_dst: np.ndarray  # (ARP: target protocol address)
    ip_id: np.ndarray
    ip_proto: np.ndarray
    ip_len: np.ndarray  # total length field
    ip_hlen: np.ndarray  # header length in bytes
    first_frag: np.ndarray  # fragment offset 0 (L4 header present)
    l4: np.ndarray  # absolute index of the L4 header in buf
    l4_caplen: np.ndarray  # bytes of the L4 header and beyond that were captured
    is_tcp: np.ndarray
    is_udp: np.ndarray
    is_icmp: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_seq: np.ndarray
    tcp_ack: np.ndarray
    tcp_flags: np.ndarray  # the flags byte: FIN SYN RST PSH ACK URG ECE CWR
    tcp_hlen: np.ndarray  # TCP header length in bytes (data offset * 4)
    tcp_win: np.ndarray
    tcp_urp: np.ndarray
    payload_len: np.ndarray  # TCP/UDP payload, ICMP message length (from header lengths)
    icmp_type: np.ndarray
    icmp_code: np.ndarray
    icmp_id: np.ndarray
    icmp_seq: np.ndarray


def u8(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return buf[idx].astype(np.int64)


def be16(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (u8(buf, idx) << 8) | u8(buf, idx + 1)


def be32(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (be16(buf, idx) << 16) | be16(buf, idx + 2)


def be48(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (be16(buf, idx) << 32) | be32(buf, idx + 2)


def decode(frames: Frames) -> Fields:
    """Decode every frame of ``frames`` (Ethernet link type)."""
    buf, o, cap = frames.buf, frames.offset, frames.caplen
    n = len(o)
    eth = cap >= ETH_HLEN
    ethertype = np.where(eth, be16(buf, o + 12), -1)

    # ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4.
    a = o + ETH_HLEN
    is_arp = (
        (ethertype == ETH_P_ARP)
        & (cap >= ETH_HLEN + 28)
        & (be16(buf, a) == 1)
        & (be16(buf, a + 2) == ETH_P_IP)
        & (u8(buf, a + 4) == 6)
        & (u8(buf, a + 5) == 4)
    )

    # IPv4.
    vihl = u8(buf, a)
    ip_hlen = (vihl & 0x0F) * 4
    is_ip = (ethertype == ETH_P_IP) & (cap >= ETH_HLEN + 20) & ((vihl >> 4) == 4) & (ip_hlen >= 20)
    frag = be16(buf, a + 6)
    first_frag = (frag & 0x1FFF) == 0
    ip_len = be16(buf, a + 2)
    ip_proto = u8(buf, a + 9)
    ip_src = np.where(is_arp, be32(buf, a + 14), be32(buf, a + 12))
    ip_dst = np.where(is_arp, be32(buf, a + 24), be32(buf, a + 16))

    l4 = a + ip_hlen
    l4_caplen = cap - ETH_HLEN - ip_hlen
    l4_ok = is_ip & first_frag
    is_tcp = l4_ok & (ip_proto == IPPROTO_TCP) & (l4_caplen >= 20)
    is_udp = l4_ok & (ip_proto == IPPROTO_UDP) & (l4_caplen >= 8)
    is_icmp = l4_ok & (ip_proto == IPPROTO_ICMP) & (l4_caplen >= 8)

    byte12 = u8(buf, l4 + 12)
    tcp_hlen = (byte12 >> 4) * 4
    tcp_flags = u8(buf, l4 + 13)
    ip_payload = ip_len - ip_hlen
    payload_len = np.select([is_tcp, is_udp], [ip_payload - tcp_hlen, be16(buf, l4 + 4) - 8], ip_payload)
    ports = is_tcp | is_udp
    return Fields(
        n=n,
        ethertype=ethertype,
        src_mac=be48(buf, o + 6),
        dst_mac=be48(buf, o),
        is_arp=is_arp,
        arp_op=be16(buf, a + 6),
        arp_sha=be48(buf, a + 8),
        arp_tha=be48(buf, a + 18),
        is_ip=is_ip,
        ip_src=ip_src,
        ip_dst=ip_dst,
        ip_id=be16(buf, a + 4),
        ip_proto=ip_proto,
        ip_len=ip_len,
        ip_hlen=ip_hlen,
        first_frag=first_frag,
        l4=l4,
        l4_caplen=l4_caplen,
        is_tcp=is_tcp,
        is_udp=is_udp,
        is_icmp=is_icmp,
        sport=np.where(ports, be16(buf, l4), 0),
        dport=np.where(ports, be16(buf, l4 + 2), 0),
        tcp_seq=be32(buf, l4 + 4),
        tcp_ack=be32(buf, l4 + 8),
        tcp_flags=tcp_flags,
        tcp_hlen=tcp_hlen,
        tcp_win=be16(buf, l4 + 14),
        tcp_urp=be16(buf, l4 + 18),
        payload_len=payload_len,
        icmp_type=u8(buf, l4),
        icmp_code=u8(buf, l4 + 1),
        icmp_id=be16(buf, l4 + 4),
        icmp_seq=be16(buf, l4 + 6),
    )
