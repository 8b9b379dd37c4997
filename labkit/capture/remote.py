"""Capture points reached through a command (the live backend: ``docker exec`` into a kind
node, ``kubectl exec`` into a pod): tcpdump runs there and streams pcap back.

Two tcpdumps per point, ``-Q in`` and ``-Q out``, so every packet keeps its direction as the
socket engine's do. ``start()`` returns once every tcpdump has said "listening on" (armed,
like the socket engine), and each stream is parsed record by record into the engine's sink.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import threading
import time
from collections.abc import Callable

from ..backend import CapturePoint
from ..errors import LabError
from .frames import DIR_IN, DIR_OUT

Sink = Callable[[bytes, int, int, int, int], bool]  # (frame, origlen, time_ns, point, direction) -> go on?
MAGICS = {0xA1B2C3D4: ("<", 1000), 0xA1B23C4D: ("<", 1), 0xD4C3B2A1: (">", 1000), 0x4D3CB2A1: (">", 1)}


def tcpdump_argv(point: CapturePoint, direction: str, snaplen: int) -> list[str]:
    return [
        *point.exec_prefix,
        "tcpdump",
        "-i",
        point.interface,
        "-Q",
        direction,
        "-U",
        "-n",
        "--immediate-mode",
        "-s",
        str(snaplen),
        "-w",
        "-",
    ]


class RemoteTap:
    """tcpdump on one point, both directions, feeding ``sink``."""

    def __init__(self, index: int, point: CapturePoint, snaplen: int, sink: Sink, errors: list[str]) -> None:
        self.index, self.point, self.snaplen, self.sink, self.errors = index, point, snaplen, sink, errors
        self.procs: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []

    def start(self, timeout: float = 15.0) -> None:
        for direction, code in (("in", DIR_IN), ("out", DIR_OUT)):
            try:
                proc = subprocess.Popen(
                    tcpdump_argv(self.point, direction, self.snaplen),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            except FileNotFoundError as e:
                raise LabError(f"capture on {self.point.point}: {e.filename} not found", exit_code=1) from None
            self.procs.append(proc)
            _wait_listening(proc, self.point.point, timeout)
            t = threading.Thread(
                target=self._read, args=(proc, code), daemon=True, name=f"labkit-tap-{self.point.point}-{direction}"
            )
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self.threads:
            t.join(timeout=5)

    def _read(self, proc: subprocess.Popen, direction: int) -> None:
        out = proc.stdout
        assert out is not None
        head = _read_exact(out, 24)
        if head is None:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic not in MAGICS:
            self.errors.append(f"{self.point.point}: tcpdump wrote no pcap stream")
            return
        endian, frac_ns = MAGICS[magic]
        if struct.unpack(endian + "I", head[20:24])[0] != 1:
            self.errors.append(f"{self.point.point}: not an Ethernet interface")
            return
        record = struct.Struct(endian + "IIII")
        while True:
            rh = _read_exact(out, 16)
            if rh is None:
                return
            sec, frac, caplen, origlen = record.unpack(rh)
            data = _read_exact(out, caplen)
            if data is None:
                return
            if not self.sink(data, origlen, sec * 1_000_000_000 + frac * frac_ns, self.index, direction):
                return


def _read_exact(stream, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _wait_listening(proc: subprocess.Popen, what: str, timeout: float) -> None:
    """Block until tcpdump says "listening on" (it is armed), or fail with its message."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    text = ""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        chunk = os.read(fd, 4096).decode(errors="replace") if ready else ""
        if ready and not chunk:
            break  # tcpdump exited
        text += chunk
        if "listening on" in text:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
            return
    proc.kill()
    last = [ln for ln in text.strip().splitlines() if ln][-1:] or ["no answer in time"]
    raise LabError(f"capture on {what} could not start tcpdump: {last[0]}", exit_code=1)
