"""pcapng, for what classic pcap cannot say: the interface name and each packet's direction.

:meth:`Capture.save` writes one pcapng per capture point whose interface is named after the
point and whose packets carry ``epb_flags`` in/out bits; ``tcpdump -r`` reads it, Wireshark
shows the direction. Reading handles Section Header, Interface Description and Enhanced
Packet blocks (other blocks are skipped).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import LabError
from .frames import DIR_IN, DIR_OUT, DIR_UNKNOWN, LINKTYPE_ETHERNET, PAD, PCAPNG_MAGIC, Frames, u32

SHB, IDB, EPB = PCAPNG_MAGIC, 1, 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_IF_NAME, OPT_IF_TSRESOL, OPT_EPB_FLAGS = 0, 2, 9, 2


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(_pad4(len(value)) - len(value))


def _block(kind: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def write_pcapng(path: str | Path, frames: Frames, snaplen: int = 262144) -> Path:
    """Write ``frames`` as pcapng: one interface per point (named after it), nanosecond times."""
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(_block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _option(OPT_END, b"")))
        for name in frames.points:
            opts = _option(OPT_IF_NAME, name.encode()) + _option(OPT_IF_TSRESOL, bytes([9])) + _option(OPT_END, b"")
            fh.write(_block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + opts))
        flags = {
            DIR_IN: _option(OPT_EPB_FLAGS, struct.pack("<I", 1)) + _option(OPT_END, b""),
            DIR_OUT: _option(OPT_EPB_FLAGS, struct.pack("<I", 2)) + _option(OPT_END, b""),
            DIR_UNKNOWN: b"",
        }
        mv = frames.buf.data
        for o, c, ol, t, p, d in zip(
            frames.offset.tolist(),
            frames.caplen.tolist(),
            frames.origlen.tolist(),
            frames.time_ns.tolist(),
            frames.point.tolist(),
            frames.direction.tolist(),
        ):
            opt = flags[d]
            size = 32 + _pad4(c) + len(opt)
            fh.write(struct.pack("<IIIIIII", EPB, size, p, t >> 32, t & 0xFFFFFFFF, c, ol))
            fh.write(mv[o : o + c])
            fh.write(bytes(_pad4(c) - c) + opt + struct.pack("<I", size))
    return path


def _options(buf: np.ndarray, start: int, end: int, endian: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    mv = buf.data
    while start + 4 <= end:
        code, size = struct.unpack_from(endian + "HH", mv, start)
        if code == OPT_END:
            break
        out.setdefault(code, bytes(mv[start + 4 : start + 4 + size]))
        start += 4 + _pad4(size)
    return out


def _tick_ns(resol: int) -> tuple[int, int]:
    """if_tsresol -> (multiply, divide) that turn timestamp units into nanoseconds."""
    if resol & 0x80:
        return 1_000_000_000, 1 << (resol & 0x7F)
    return (10 ** (9 - resol), 1) if resol <= 9 else (1, 10 ** (resol - 9))


def read_pcapng(buf: np.ndarray, default_point: str, path: str, force_point: bool = False) -> Frames:
    """Frames of a pcapng already loaded in ``buf`` (see :func:`labkit.capture.pcap.load`)."""
    size, mv = len(buf) - PAD, buf.data
    endian, off = "<", 0
    names: list[str] = []
    ticks: list[tuple[int, int]] = []
    epbs: list[int] = []
    flagged: list[int] = []
    while off + 12 <= size:
        kind = struct.unpack_from("<I", mv, off)[0]
        if kind == SHB:
            bom = struct.unpack_from("<I", mv, off + 8)[0]
            section = "<" if bom == BYTE_ORDER_MAGIC else ">"
            if epbs and section != endian:
                raise LabError(f"{path}: sections of mixed byte order are not supported")
            endian = section
        else:
            kind = struct.unpack_from(endian + "I", mv, off)[0]
        length = struct.unpack_from(endian + "I", mv, off + 4)[0]
        if length < 12 or off + length > size:
            break
        if kind == IDB:
            linktype, _, _ = struct.unpack_from(endian + "HHI", mv, off + 8)
            if linktype != LINKTYPE_ETHERNET:
                raise LabError(f"{path}: link type {linktype} is not Ethernet; capture on one interface")
            opts = _options(buf, off + 16, off + length - 4, endian)
            names.append(opts.get(OPT_IF_NAME, b"").decode(errors="replace") or default_point)
            ticks.append(_tick_ns(opts.get(OPT_IF_TSRESOL, b"\x06")[0]))
        elif kind == EPB:
            epbs.append(off)
            caplen = struct.unpack_from(endian + "I", mv, off + 20)[0]
            if length > 32 + _pad4(caplen):
                flagged.append(len(epbs) - 1)
        off += length
    starts = np.array(epbs, dtype=np.int64)
    iface, hi, lo, caplen, origlen = (u32(buf, starts + k, endian) for k in (8, 12, 16, 20, 24))
    if len(starts) and (not names or iface.max() >= len(names)):
        raise LabError(f"{path}: packet refers to an undeclared interface; the file is damaged")
    raw = (hi << 32) | lo
    mul = np.array([m for m, _ in ticks] or [1], dtype=np.int64)[iface]
    div = np.array([d for _, d in ticks] or [1], dtype=np.int64)[iface]
    time_ns = raw * mul // div
    direction = np.zeros(len(starts), dtype=np.int8)
    for i in flagged:
        o = int(starts[i])
        opts = _options(
            buf, o + 28 + _pad4(int(caplen[i])), o + struct.unpack_from(endian + "I", mv, o + 4)[0] - 4, endian
        )
        if OPT_EPB_FLAGS in opts:
            direction[i] = {1: DIR_IN, 2: DIR_OUT}.get(
                struct.unpack(endian + "I", opts[OPT_EPB_FLAGS][:4])[0] & 3, DIR_UNKNOWN
            )
    if force_point:
        names, iface = [default_point], np.zeros_like(iface)
    return Frames(
        buf, starts + 28, caplen, origlen, time_ns, iface.astype(np.int32), direction, names or [default_point]
    )
