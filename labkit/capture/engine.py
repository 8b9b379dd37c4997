"""Capture packets on several interfaces at once, in their own network namespaces.

Why a socket engine instead of one tcpdump per interface: ``start()`` returns only once
every socket is bound (armed), so traffic started afterwards is captured from its first
packet (ARP, SYN) without racing tcpdump's "listening on" line, and packets of all points
share one kernel clock, which the ladder diagram needs to order them.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ..backend import CapturePoint
from ..errors import LabError
from . import bounds
from .bounds import DEFAULT_SNAPLEN
from .frames import Frames
from .lines import format_lines
from .pcap import write_pcap
from .pcapng import write_pcapng
from .remote import RemoteTap
from .sockets import drops, open_packet_socket, receive
from .store import FrameStore
from .table import packets_table

_BATCH = 512  # packets drained from one socket before looking at the others


class Capture:
    """Capture on ``points`` until stopped or a bound is reached (packets, bytes, seconds).

    Use it as a context manager (armed on entry, stopped on exit) or call
    :meth:`start`/:meth:`stop`. Bounds count all points together and are those of
    :mod:`labkit.capture.bounds` (the CLI's too): ``max_bytes`` (default 32 MiB) bounds what
    is kept, frames up to ``snaplen``; large captures are kept on disk (store.py).
    Results: :attr:`packets` (the PACKETS table), :meth:`save` (pcap files), :meth:`lines`
    (tcpdump-like text); :attr:`stopped_by` says which bound ended it.
    """

    def __init__(
        self,
        points: Sequence[CapturePoint],
        *,
        count: int | None = None,
        seconds: float | None = None,
        max_bytes: int | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        opener: Callable[[Sequence[CapturePoint]], list[socket.socket]] | None = None,
    ) -> None:
        self.points = list(points)
        self._opener = opener  # who opens the sockets (a classroom broker for students); default here
        if not self.points:
            raise LabError("nothing to capture: give at least one capture point, e.g. kind-worker:eth0")
        names = [p.point for p in self.points]
        if len(set(names)) != len(names):
            raise LabError(
                f"capture points repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}; "
                "name each interface once"
            )
        b = bounds.check(count, seconds, max_bytes, snaplen)
        self.count, self.seconds, self.max_bytes, self.snaplen = b.count, b.seconds, b.max_bytes, b.snaplen
        self._lock = threading.Lock()
        self._store = FrameStore(names, self.snaplen)
        self._cost = 0  # bytes counted against max_bytes
        self._drops = [0] * len(self.points)
        self._socks: list[socket.socket] = []
        self._sock_point: list[int] = []  # point index of each socket
        self._taps: list[RemoteTap] = []
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._table: tuple[int, Frames, pd.DataFrame] | None = None
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.stopped_by: str | None = None  # "count", "seconds", "max_bytes", "error" or None (stop())

    # lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Capture:
        """Open and bind every socket (all or none), then read in the background."""
        if self._thread is not None:
            raise LabError("this capture was already started; make a new Capture to capture again")
        self._wake = os.pipe()
        try:
            local = [i for i, p in enumerate(self.points) if p.netns or not p.exec_prefix]
            if self._opener and local:  # all at once (one request to a classroom's broker)
                self._socks += self._opener([self.points[i] for i in local])
                self._sock_point += local
            else:
                for i in local:
                    self._socks.append(open_packet_socket(self.points[i]))
                    self._sock_point.append(i)
            for i, p in enumerate(self.points):
                if i not in local:  # reached through a command (live backend): tcpdump streams pcap back
                    tap = RemoteTap(i, p, self.snaplen, self._add, self.errors)
                    self._taps.append(tap)
                    tap.start()
        except BaseException:
            self._close()
            raise
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name="labkit-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Capture:
        """Stop reading, close the sockets and wait for the reader thread (idempotent)."""
        if self._thread is not None and self._wake is not None:
            try:
                os.write(self._wake[1], b"x")
            except OSError:
                pass
            self._thread.join()
        self._close()
        self._store.close()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a bound stops the capture (or ``timeout`` s); True if it stopped."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def drops(self) -> dict[str, int]:
        """Packets the kernel dropped per point because the reader fell behind."""
        return {p.point: d for p, d in zip(self.points, self._drops)}

    def _close(self) -> None:
        for tap in self._taps:
            tap.stop()
        self._taps = []
        for i, s in zip(self._sock_point, self._socks):
            self._drops[i] += drops(s)
            s.close()
        self._socks, self._sock_point = [], []
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    # reader thread -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # never lose the thread silently: say it in .errors
            self.errors.append(f"capture stopped: {e}")
            self.stopped_by = "error"
        finally:
            self._done.set()

    def _loop(self) -> None:
        assert self._wake is not None
        poller = select.poll()
        by_fd = {s.fileno(): k for k, s in enumerate(self._socks)}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        deadline = time.monotonic() + self.seconds if self.seconds else None
        bufs = [bytearray(self.snaplen) for _ in self._socks]
        while True:
            wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
            events = poller.poll(wait_ms)
            if deadline is not None and time.monotonic() >= deadline:
                self.stopped_by = self.stopped_by or "seconds"
                return
            for fd, _ev in events:
                if fd == self._wake[0]:
                    return
                i = by_fd[fd]
                state = self._drain(i, bufs[i])
                if state == "bound":
                    return
                if state == "gone":
                    poller.unregister(fd)

    def _drain(self, k: int, buf: bytearray) -> str:
        """Read what socket ``k`` holds: "more" (go on), "bound" (a bound is reached) or
        "gone" (the socket failed, e.g. its interface was deleted)."""
        s, i = self._socks[k], self._sock_point[k]
        for _ in range(_BATCH):
            try:
                frame, origlen, ts, direction = receive(s, buf)
            except (BlockingIOError, InterruptedError):
                return "more"
            except OSError as e:  # e.g. ENETDOWN: the interface was deleted or set down
                self.errors.append(f"{self.points[i].point}: {e.strerror}")
                return "gone"
            if not self._add(frame, origlen, ts, i, direction):
                return "bound"
        return "more"

    def _add(self, frame: bytes, origlen: int, ts: int, i: int, direction: int) -> bool:
        """Keep one captured frame; False once a bound (count, bytes) is reached. Called by
        the socket loop and by remote taps' threads, hence the lock."""
        with self._lock:
            if self._done.is_set() or self.stopped_by is not None:
                return False  # a bound was reached (maybe by another tap's thread)
            cost = len(frame) + bounds.RECORD_BYTES
            if self._cost + cost > self.max_bytes:
                self._bound("max_bytes")
                return False
            self._store.add(frame, origlen, ts, i, direction)
            self._cost += cost
            n = len(self._store)
        if self.count is not None and n >= self.count:
            self._bound("count")
            return False
        return True

    def _bound(self, which: str) -> None:
        """A bound was reached: wake the loop so the capture stops."""
        self.stopped_by = self.stopped_by or which
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"b")
            except OSError:
                pass

    # results -------------------------------------------------------------------------------
    @property
    def frames(self) -> Frames:
        """What was captured so far, in time order, packed for the decoder."""
        return self._decoded()[0]

    @property
    def kept_bytes(self) -> int:
        """Bytes counted against ``max_bytes`` so far (frames plus their records)."""
        return self._cost

    @property
    def packets(self) -> pd.DataFrame:
        """The PACKETS table of what was captured so far (one row per packet per point)."""
        return self._decoded()[1].copy()

    def _decoded(self) -> tuple[Frames, pd.DataFrame]:
        """Frames in time order and their table, decoded once per number of packets."""
        with self._lock:
            n = len(self._store)
            if self._table is None or self._table[0] != n:
                frames = self._store.frames().sorted()
                self._table = (n, frames, packets_table(frames, {p.point: p for p in self.points}))
            return self._table[1], self._table[2]

    def __len__(self) -> int:
        return len(self._store)

    def lines(self, point: str | None = None) -> list[str]:
        """tcpdump-like lines. For one ``point``: exactly ``tcpdump -nS -r <saved file>``'s;
        for all points: ``time point In|Out summary``, like ``tcpdump -i any``."""
        frames, table = self._decoded()
        if point is None:
            return format_lines(frames.time_ns, table["summary"], table["point"], table["direction"])
        if point not in {p.point for p in self.points}:
            raise LabError(f"no capture point {point!r}; the points are: {', '.join(p.point for p in self.points)}")
        mask = (table["point"] == point).to_numpy()
        return format_lines(frames.time_ns[mask], table["summary"][mask])

    def save(self, directory: str | Path, *, fmt: str = "pcapng") -> list[Path]:
        """One file per point in ``directory``: ``<point>.pcapng`` (with in/out flags) or
        ``<point>.pcap`` (classic); both read by ``tcpdump -r`` and Wireshark."""
        if fmt not in ("pcap", "pcapng"):
            raise LabError(f"unknown capture file format {fmt!r}; use pcap or pcapng")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        frames = self.frames
        paths = []
        for i, p in enumerate(self.points):
            one = frames.select(frames.point == i)
            one = Frames(
                one.buf, one.offset, one.caplen, one.origlen, one.time_ns, one.point * 0, one.direction, [p.point]
            )
            path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', p.point)}.{fmt}"
            (write_pcapng if fmt == "pcapng" else write_pcap)(path, one, self.snaplen)
            paths.append(path)
        return paths
