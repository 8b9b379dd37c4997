"""Run a function inside another network namespace, on a throw-away thread.

Python 3.11 has no ``os.setns``; ``setns(2)`` through libc changes the namespace of the
calling *thread* only, so we do it on a fresh thread that ends right after: the rest of the
process (the notebook kernel, the capture reader) never leaves its own namespace. Sockets
keep the namespace they were created in, which is all the capture engine needs.
"""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable, TypeVar

from ..errors import LabError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def call_in_netns(netns: str, fn: Callable[[], T], *, what: str = "") -> T:
    """``fn()`` run in the network namespace at path ``netns`` ("" = the current one)."""
    if not netns:
        return fn()
    label = f" of {what}" if what else ""
    try:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise LabError(f"network namespace {netns}{label} is missing ({e.strerror}); "
                       "is the lab up? check with `labkit status`") from None
    box: dict[str, object] = {}

    def run() -> None:
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                box["error"] = LabError(f"cannot enter network namespace {netns}{label}: "
                                        f"{os.strerror(err)}; run as root on the lab's machine")
                return
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    try:
        t = threading.Thread(target=run, name=f"labkit-netns-{os.path.basename(netns)}", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
