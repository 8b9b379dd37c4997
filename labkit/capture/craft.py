"""Build Ethernet frames by hand: for tests, the benchmark and offline lab demos.

Small and explicit on purpose: each function returns bytes for one layer with correct
lengths and checksums, so decoded fields can be asserted exactly (and checked by tcpdump).
"""

from __future__ import annotations

import socket
import struct
from array import array

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "W": 0x80}
BROADCAST = "ff:ff:ff:ff:ff:ff"


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ip4(text: str) -> bytes:
    return socket.inet_aton(text)


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return socket.htons(~total & 0xFFFF)


def ether(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def arp(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str, eth_dst: str | None = None) -> bytes:
    """An ARP frame (op 1 request, 2 reply); requests go to broadcast by default."""
    body = (
        struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac(sender_mac) + ip4(sender_ip) + mac(target_mac) + ip4(target_ip)
    )
    dst = eth_dst or (BROADCAST if op == 1 else target_mac)
    return ether(dst, sender_mac, 0x0806, body)


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
    df: bool = True,
    frag_offset: int = 0,
    more_frags: bool = False,
) -> bytes:
    frag = (0x4000 if df else 0) | (0x2000 if more_frags else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0, ip4(src), ip4(dst))
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    *,
    flags: str = "A",
    seq: int = 0,
    ack: int = 0,
    win: int = 64240,
    options: bytes = b"",
    payload: bytes = b"",
    urg: int = 0,
) -> bytes:
    """A TCP segment (header + payload) with its checksum; ``flags`` like "S", "SA", "PA"."""
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    bits = sum(FLAG_BITS[c] for c in flags)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(options) // 4) << 4, bits, win, 0, urg)
    seg = hdr + options + payload
    csum = checksum(_pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = checksum(_pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


def icmp_echo(ident: int, seq: int, payload: bytes = b"", *, reply: bool = False) -> bytes:
    msg = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def syn_options(mss: int = 1460, ts_val: int = 1, ts_ecr: int = 0, wscale: int = 7) -> bytes:
    """Linux's SYN options: mss, sackOK, TS, nop, wscale."""
    return (
        struct.pack("!BBH", 2, 4, mss)
        + b"\x04\x02"
        + struct.pack("!BBII", 8, 10, ts_val, ts_ecr)
        + struct.pack("!BBBB", 1, 3, 3, wscale)
    )


def ts_options(ts_val: int, ts_ecr: int) -> bytes:
    """Linux's options on every other segment: nop, nop, TS."""
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, ts_val, ts_ecr)


def ip_frame(src_mac: str, dst_mac: str, packet: bytes) -> bytes:
    return ether(dst_mac, src_mac, 0x0800, packet)
