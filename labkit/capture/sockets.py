"""AF_PACKET sockets: what ``tcpdump -i IFACE`` sees, opened in the interface's namespace.

One socket per capture point, bound to its interface with ETH_P_ALL (both directions).
The socket is created with protocol 0 and only then bound, so it never queues packets of
other interfaces. Kernel timestamps (SO_TIMESTAMPNS) order packets seen at different points
correctly even though one reader thread drains the sockets in turn.
"""

from __future__ import annotations

import errno
import socket
import struct
import time

from ..backend import CapturePoint
from ..errors import LabError
from ..netns import call_in
from .frames import DIR_IN, DIR_OUT

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_STATISTICS = 263, 6
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RCVBUF = 8 << 20
_ANC = socket.CMSG_SPACE(16)


def open_packet_socket(point: CapturePoint) -> socket.socket:
    """A non-blocking packet socket on ``point.interface`` inside ``point.netns``."""
    if not point.netns and point.exec_prefix:
        raise LabError(
            f"capture point {point.point} has no network namespace path; "
            "the socket capture engine needs the embedded backend"
        )

    def make() -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            s.bind((point.interface, ETH_P_ALL))
            s.setblocking(False)
        except OSError as e:
            s.close()
            if e.errno == errno.ENODEV:
                raise LabError(
                    f"no interface {point.interface!r} for capture point {point.point}; "
                    "list the interfaces with `labkit exec NODE -- ip -br link`"
                ) from None
            raise LabError(f"cannot capture on {point.point}: {e.strerror}; run as root") from None
        return s

    try:
        return call_in(point.netns, make, what=point.point)
    except PermissionError:
        raise LabError(f"cannot capture on {point.point}: permission denied; run as root") from None


def receive(s: socket.socket, buf: bytearray) -> tuple[bytes, int, int, int]:
    """One packet: (frame up to len(buf), length on the wire, time ns, DIR_IN/DIR_OUT).

    Raises BlockingIOError when the socket is empty.
    """
    n, anc, _flags, addr = s.recvmsg_into([buf], _ANC, socket.MSG_TRUNC)
    now = time.time_ns()
    ts = now
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            stamp = sec * 1_000_000_000 + nsec
            if abs(stamp - now) < 60_000_000_000:  # a real-time stamp, not an EDT leftover
                ts = stamp
    direction = DIR_OUT if addr[2] == PACKET_OUTGOING else DIR_IN
    return bytes(buf[: min(n, len(buf))]), n, ts, direction


def drops(s: socket.socket) -> int:
    """Packets the kernel dropped for this socket since the last call (queue full)."""
    try:
        _packets, dropped = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except OSError:
        return 0
    return dropped
