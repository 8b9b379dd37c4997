"""The bounds of a capture, one set for the API (``lab.capture``) and the CLI (``labkit
capture``): how many packets, how long, how many bytes, how much of each frame.

A capture always has a byte bound (:data:`DEFAULT_MAX_BYTES` unless told otherwise), so a
flood at line rate cannot eat the machine: 9 Gbit/s fills it in a fraction of a second and
the capture stops, keeping what it has. Each packet counts its captured bytes plus
:data:`RECORD_BYTES`, about what one row of the PACKETS table costs once decoded, so a
flood of tiny packets is bounded as well as one of 64 KiB GSO frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import check_seconds
from ..errors import LabError

DEFAULT_MAX_BYTES = 32 << 20  # keeps a capture process well under 512 MB RSS (benchmarks/capture_flood.py)
MAX_MAX_BYTES = 1 << 40
RECORD_BYTES = 256
DEFAULT_SNAPLEN = 262144  # tcpdump's
MIN_SNAPLEN = 14  # an Ethernet header
MAX_COUNT = 10**9


@dataclass(frozen=True)
class Bounds:
    count: int | None
    seconds: float | None
    max_bytes: int
    snaplen: int


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabError(f"capture {name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise LabError(f"capture {name} must be between {low} and {high}, got {value}")
    return value


def check(
    count: object = None, seconds: object = None, max_bytes: object = None, snaplen: object = DEFAULT_SNAPLEN
) -> Bounds:
    """The bounds, or a one-line error for a bad one (bad input changes nothing)."""
    return Bounds(
        None if count is None else _whole("count", count, 1, MAX_COUNT),
        check_seconds("capture seconds", seconds, positive=True),
        DEFAULT_MAX_BYTES if max_bytes is None else _whole("max_bytes", max_bytes, RECORD_BYTES + 1, MAX_MAX_BYTES),
        _whole("snaplen", DEFAULT_SNAPLEN if snaplen is None else snaplen, MIN_SNAPLEN, DEFAULT_SNAPLEN),
    )
