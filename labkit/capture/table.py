"""Frames -> the PACKETS table (:data:`labkit.tables.PACKETS`), for captures and pcap files alike."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..backend import CapturePoint
from ..tables import PACKETS
from .decode import decode
from .frames import DIRECTIONS, Frames
from .summary import TCP_FLAGS, ip_text, mac_text, summaries, text_of

_PROTO = {1: "ICMP", 6: "TCP", 17: "UDP"}


def _nullable(values: np.ndarray, valid: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(valid, values, 0).astype(np.int64), ~valid)


def _point_column(frames: Frames, names: list[str]) -> np.ndarray:
    return np.array(names, dtype=object)[frames.point]


def packets_table(frames: Frames, points: Mapping[str, CapturePoint] | None = None) -> pd.DataFrame:
    """Decode ``frames`` into a PACKETS DataFrame, in the frames' order.

    ``points`` (by point name) fills node, pod and interface; a point without one (e.g. a
    pcap file) gets ``node``/``pod`` "" and ``interface`` = the part after ``:``.
    """
    points = points or {}
    f = decode(frames)
    l3 = f.is_ip | f.is_arp
    src = np.where(l3, text_of(f.ip_src, ip_text), "")
    dst = np.where(l3, text_of(f.ip_dst, ip_text), "")
    proto = np.where(
        f.is_arp,
        "ARP",
        np.array([f"0x{e & 0xFFFF:04x}" for e in range(0x10000)], dtype=object)[np.clip(f.ethertype, 0, 0xFFFF)],
    )
    ip_names = np.array([_PROTO.get(p, f"ip-proto-{p}") for p in range(256)], dtype=object)
    proto = np.where(f.is_ip, ip_names[f.ip_proto & 0xFF], proto)
    proto = np.where(f.ethertype < 0, "", proto)
    ports = f.is_tcp | f.is_udp
    meta = [points.get(p) for p in frames.points]
    cols = {
        "time": (frames.time_ns // 1_000_000_000) + (frames.time_ns % 1_000_000_000) / 1e9,
        "point": _point_column(frames, frames.points),
        "node": _point_column(frames, [m.node if m else "" for m in meta]),
        "pod": _point_column(frames, [m.pod if m else "" for m in meta]),
        "interface": _point_column(
            frames, [m.interface if m else p.rpartition(":")[2] for p, m in zip(frames.points, meta)]
        ),
        "direction": DIRECTIONS[frames.direction],
        "src_mac": text_of(f.src_mac, mac_text),
        "dst_mac": text_of(f.dst_mac, mac_text),
        "proto": proto,
        "src_ip": src,
        "dst_ip": dst,
        "src_port": _nullable(f.sport, ports),
        "dst_port": _nullable(f.dport, ports),
        "tcp_flags": np.where(f.is_tcp, np.array([f"[{t}]" for t in TCP_FLAGS], dtype=object)[f.tcp_flags], ""),
        "seq": _nullable(f.tcp_seq, f.is_tcp),
        "ack": _nullable(f.tcp_ack, f.is_tcp),
        "ip_id": _nullable(f.ip_id, f.is_ip),
        "length": frames.origlen,
        "summary": summaries(frames, f, src, dst),
    }
    return PACKETS.frame(pd.DataFrame(cols))
