"""A batch of raw frames packed into one buffer: the common currency of the capture layer.

The engine, the pcap reader/writer and the decoder all speak :class:`Frames`, so none of
them needs per-packet Python objects: the decoder gathers header fields for every frame at
once with numpy fancy indexing into ``buf``. ``buf`` always ends with :data:`PAD` zero bytes
so such gathers never run off the end (fields past ``caplen`` are masked by the decoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LINKTYPE_ETHERNET = 1
PCAPNG_MAGIC = 0x0A0D0D0A
PAD = 256  # zero bytes after the last frame: longer than any header we read
DIR_UNKNOWN, DIR_IN, DIR_OUT = 0, 1, 2
DIRECTIONS = np.array(["", "in", "out"], dtype=object)


@dataclass
class Frames:
    """``n`` Ethernet frames: frame ``i`` is ``buf[offset[i] : offset[i] + caplen[i]]``."""

    buf: np.ndarray  # uint8, padded with PAD zero bytes
    offset: np.ndarray  # int64 start of each frame in buf
    caplen: np.ndarray  # int64 bytes captured
    origlen: np.ndarray  # int64 length on the wire
    time_ns: np.ndarray  # int64 nanoseconds since the epoch
    point: np.ndarray  # int32 index into ``points``
    direction: np.ndarray  # int8 DIR_UNKNOWN / DIR_IN / DIR_OUT
    points: list[str]  # capture point names

    def __len__(self) -> int:
        return len(self.offset)

    def frame(self, i: int) -> bytes:
        o = int(self.offset[i])
        return self.buf[o : o + int(self.caplen[i])].tobytes()

    def select(self, mask: np.ndarray) -> Frames:
        """The frames where ``mask`` is true (sharing ``buf``, no copy of packet bytes)."""
        return Frames(
            self.buf,
            self.offset[mask],
            self.caplen[mask],
            self.origlen[mask],
            self.time_ns[mask],
            self.point[mask],
            self.direction[mask],
            self.points,
        )

    def sorted(self) -> Frames:
        """Frames in time order (stable, so equal times keep capture order)."""
        order = np.argsort(self.time_ns, kind="stable")
        return self.select(order)

    @classmethod
    def empty(cls, points: Sequence[str] = ()) -> Frames:
        return cls.pack([], [], [], [], [], list(points))

    @classmethod
    def pack(
        cls,
        data: Sequence[bytes],
        time_ns: Sequence[int],
        origlen: Sequence[int],
        point: Sequence[int],
        direction: Sequence[int],
        points: list[str],
    ) -> Frames:
        """Pack separate frames (as captured) into one buffer."""
        caplen = np.fromiter((len(d) for d in data), dtype=np.int64, count=len(data))
        offset = np.zeros(len(data), dtype=np.int64)
        if len(data):
            np.cumsum(caplen[:-1], out=offset[1:])
        buf = np.frombuffer(b"".join(data) + bytes(PAD), dtype=np.uint8)
        return cls(
            buf,
            offset,
            caplen,
            np.asarray(origlen, dtype=np.int64).reshape(-1),
            np.asarray(time_ns, dtype=np.int64).reshape(-1),
            np.asarray(point, dtype=np.int32).reshape(-1),
            np.asarray(direction, dtype=np.int8).reshape(-1),
            list(points),
        )


def u32(buf: np.ndarray, idx: np.ndarray, endian: str) -> np.ndarray:
    """The 32-bit unsigned integers at ``idx`` (any alignment), as int64."""
    b = [buf[idx + k].astype(np.int64) for k in range(4)]
    if endian == "<":
        b.reverse()
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
