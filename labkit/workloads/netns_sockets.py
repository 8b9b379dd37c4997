"""Sockets in other network namespaces, for the lab's one-process-many-namespaces daemons.

A socket belongs to the network namespace its creator was in: a short-lived thread
enters the namespace (setns(2) changes the calling thread only), makes the socket and
leaves; the daemon's main loop then serves it from anywhere. So one small process can be
the API server of one node and the kubelet of every node (stdlib only: run as a script).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(path: str, fn: Callable[[], socket.socket]) -> socket.socket:
    """``fn()`` run inside the network namespace at ``path``."""
    box: dict = {}

    def run() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {path}")
            box["sock"] = fn()
        except BaseException as e:
            box["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def listener(path: str, ip: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        if kind == socket.SOCK_STREAM:
            s.listen(64)
        s.setblocking(False)
        return s

    return in_netns(path, make)


def stream(path: str) -> socket.socket:
    """A TCP socket of that namespace, not yet connected (non-blocking)."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        return s

    return in_netns(path, make)
