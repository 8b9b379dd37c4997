"""Classic pcap files, read and written without libpcap, scapy or dpkt.

Reading walks the record headers once (the only per-packet Python step: each record's
position depends on the previous one's length) and leaves the packet bytes in one padded
numpy buffer, so :func:`labkit.capture.decode.decode` can gather fields for all of them.
Reads little/big-endian, micro/nanosecond files (what tcpdump -w and we write) and, via
:mod:`labkit.capture.pcapng`, pcapng. Only the Ethernet link type is decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import LabError
from .frames import LINKTYPE_ETHERNET, PAD, PCAPNG_MAGIC, Frames, u32
from .pcapng import read_pcapng

MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D


def load(path: str | Path) -> np.ndarray:
    """The whole file in a uint8 array followed by PAD zero bytes."""
    path = Path(path)
    try:
        size = path.stat().st_size
        buf = np.zeros(size + PAD, dtype=np.uint8)
        with open(path, "rb") as fh:
            fh.readinto(buf.data[:size])
    except OSError as e:
        raise LabError(f"cannot read capture file {path}: {e.strerror}; check the path") from None
    return buf


def read_pcap(path: str | Path, point: str | None = None) -> Frames:
    """Read a pcap or pcapng file; every frame is attributed to ``point`` (default: file stem).

    pcapng files with named interfaces attribute each frame to its interface's name instead.
    """
    buf = load(path)
    name = point or Path(path).stem
    magic_le = int.from_bytes(buf[:4].tobytes(), "little")
    if magic_le == PCAPNG_MAGIC:
        return read_pcapng(buf, name, str(path), force_point=point is not None)
    for endian in "<>":
        magic = struct.unpack_from(endian + "I", buf.data, 0)[0]
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise LabError(f"{path} is not a pcap or pcapng file; write captures with tcpdump -w or labkit")
    linktype = struct.unpack_from(endian + "I", buf.data, 20)[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        raise LabError(f"{path}: link type {linktype} is not Ethernet; capture on one interface (tcpdump -i IFACE)")
    size = len(buf) - PAD
    offsets = _walk(buf, size, endian)
    ts_sec, ts_frac, caplen, origlen = (u32(buf, offsets + k, endian) for k in (0, 4, 8, 12))
    time_ns = ts_sec * 1_000_000_000 + (ts_frac if magic == MAGIC_NS else ts_frac * 1000)
    n = len(offsets)
    return Frames(buf, offsets + 16, caplen, origlen, time_ns, np.zeros(n, np.int32), np.zeros(n, np.int8), [name])


def _walk(buf: np.ndarray, size: int, endian: str) -> np.ndarray:
    """Start of every record header (records are chained by their caplen)."""
    caplen_at = struct.Struct(endian + "I").unpack_from
    mv = buf.data
    starts: list[int] = []
    add = starts.append
    off = 24
    while off + 16 <= size:
        add(off)
        off += 16 + caplen_at(mv, off + 8)[0]
    if off > size:  # last record cut short (capture still being written): drop it
        starts.pop()
    return np.array(starts, dtype=np.int64)


def write_pcap(path: str | Path, frames: Frames, snaplen: int = 262144) -> Path:
    """Write ``frames`` as a classic nanosecond pcap (Ethernet); returns the path."""
    path = Path(path)
    n = len(frames)
    hdr = np.empty((n, 4), dtype="<u4")
    hdr[:, 0] = frames.time_ns // 1_000_000_000
    hdr[:, 1] = frames.time_ns % 1_000_000_000
    hdr[:, 2] = frames.caplen
    hdr[:, 3] = frames.origlen
    hb = hdr.tobytes()
    mv = frames.buf.data
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for i, (o, c) in enumerate(zip(frames.offset.tolist(), frames.caplen.tolist())):
            fh.write(hb[16 * i : 16 * i + 16])
            fh.write(mv[o : o + c])
    return path
