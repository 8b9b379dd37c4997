"""Where a capture keeps its frames: in memory while small, on disk (pcapng) when large.

Frames are packed as they arrive (one growing byte buffer and arrays of numbers, never one
Python object per packet). Past :data:`SPILL_BYTES` everything moves into a pcapng file in
a private temporary directory and later frames are appended there, so a long capture's
packet bytes live on disk, not in the process; the file goes when the store is closed.
"""

from __future__ import annotations

import atexit
import shutil
import struct
import tempfile
from array import array
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .frames import DIR_IN, DIR_OUT, LINKTYPE_ETHERNET, PAD, Frames
from .pcap import load
from .pcapng import EPB, IDB, SHB, _block, _option, _pad4, read_pcapng

SPILL_BYTES = 8 << 20
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


class FrameStore:
    def __init__(self, points: list[str], snaplen: int, spill_bytes: int = SPILL_BYTES) -> None:
        self.points, self.snaplen, self.spill_bytes = list(points), snaplen, spill_bytes
        self._buf = bytearray()
        self._offset = array("q")
        self._caplen = array("q")
        self._origlen = array("q")
        self._time = array("q")
        self._point = array("i")
        self._dir = array("b")
        self.kept = 0  # packets
        self.bytes = 0  # captured bytes (caplen) of all of them
        self._dir_path: str | None = None
        self._file: BinaryIO | None = None
        self.path: Path | None = None  # the pcapng file, once spilled

    def __len__(self) -> int:
        return self.kept

    def add(self, frame: bytes, origlen: int, ts: int, point: int, direction: int) -> None:
        self.kept += 1
        self.bytes += len(frame)
        if self._file is not None:
            self._write(frame, origlen, ts, point, direction)
            return
        self._offset.append(len(self._buf))
        self._buf += frame
        self._caplen.append(len(frame))
        self._origlen.append(origlen)
        self._time.append(ts)
        self._point.append(point)
        self._dir.append(direction)
        if len(self._buf) > self.spill_bytes:
            self._spill()

    # ------------------------------------------------------------------ on disk
    def _spill(self) -> None:
        self._dir_path = tempfile.mkdtemp(prefix="labkit-capture-")  # 0700: ours alone
        _SPILLED.add(self._dir_path)
        self.path = Path(self._dir_path) / "capture.pcapng"
        f = self._file = open(self.path, "wb", buffering=1 << 20)
        f.write(_block(SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _option(0, b"")))
        for name in self.points:
            opts = _option(2, name.encode()) + _option(9, bytes([9])) + _option(0, b"")
            f.write(_block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, self.snaplen) + opts))
        mv = memoryview(self._buf)
        for o, c, ol, t, p, d in zip(self._offset, self._caplen, self._origlen, self._time, self._point, self._dir):
            self._write(mv[o : o + c], ol, t, p, d)
        mv.release()
        self._buf = bytearray()
        for a in (self._offset, self._caplen, self._origlen, self._time, self._point, self._dir):
            del a[:]

    def _write(self, frame: bytes | memoryview, origlen: int, ts: int, point: int, direction: int) -> None:
        assert self._file is not None
        c = len(frame)
        flags = {DIR_IN: 1, DIR_OUT: 2}.get(direction)
        opt = (_option(2, struct.pack("<I", flags)) + _option(0, b"")) if flags else b""
        size = 32 + _pad4(c) + len(opt)
        self._file.write(struct.pack("<IIIIIII", EPB, size, point, ts >> 32, ts & 0xFFFFFFFF, c, origlen))
        self._file.write(frame)
        self._file.write(bytes(_pad4(c) - c) + opt + struct.pack("<I", size))

    # ------------------------------------------------------------------ reading
    def frames(self) -> Frames:
        """Everything kept so far, in capture order."""
        if self.path is not None:
            if self._file is not None:
                self._file.flush()
            f = read_pcapng(load(self.path), self.points[0] if self.points else "", str(self.path))
            return Frames(f.buf, f.offset, f.caplen, f.origlen, f.time_ns, f.point, f.direction, self.points)
        buf = np.frombuffer(bytes(self._buf) + bytes(PAD), dtype=np.uint8)
        return Frames(
            buf,
            np.frombuffer(self._offset, dtype=np.int64).copy(),
            np.frombuffer(self._caplen, dtype=np.int64).copy(),
            np.frombuffer(self._origlen, dtype=np.int64).copy(),
            np.frombuffer(self._time, dtype=np.int64).copy(),
            np.frombuffer(self._point, dtype=np.int32).copy(),
            np.frombuffer(self._dir, dtype=np.int8).copy(),
            self.points,
        )

    def close(self) -> None:
        """No more frames: close the spill file (it stays readable until :meth:`discard`)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Remove the spill file (also done when the store is collected, or at exit)."""
        self.close()
        if self._dir_path is not None:
            shutil.rmtree(self._dir_path, ignore_errors=True)
            _SPILLED.discard(self._dir_path)
            self._dir_path = None

    def __del__(self) -> None:
        try:
            self.discard()
        except Exception:
            pass


_SPILLED: set[str] = set()  # spill directories of this process, removed at exit


@atexit.register
def _remove_spills() -> None:
    for d in list(_SPILLED):
        shutil.rmtree(d, ignore_errors=True)
