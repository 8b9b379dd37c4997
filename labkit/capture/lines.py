"""tcpdump-like text lines: ``HH:MM:SS.uuuuuu <summary>`` in local time, like ``tcpdump -nS -r``.

Times come from integer nanoseconds (not the table's float seconds) so the microsecond
digits are exactly tcpdump's, which truncates.
"""

from __future__ import annotations

import time

import numpy as np


def clock_text(time_ns: np.ndarray) -> list[str]:
    """``HH:MM:SS.uuuuuu`` in local time for each timestamp."""
    sec = time_ns // 1_000_000_000
    usec = (time_ns % 1_000_000_000) // 1000
    hms = {s: time.strftime("%H:%M:%S", time.localtime(s)) for s in np.unique(sec).tolist()}
    return [f"{hms[s]}.{u:06d}" for s, u in zip(sec.tolist(), usec.tolist())]


def format_lines(time_ns: np.ndarray, summary, points=None, directions=None) -> list[str]:
    """One line per packet; with ``points`` (and ``directions``), name where it was seen
    like ``tcpdump -i any`` does: ``time point In|Out summary``."""
    clock = clock_text(np.asarray(time_ns, dtype=np.int64))
    if points is None:
        return [f"{c} {s}" for c, s in zip(clock, summary)]
    dirs = directions if directions is not None else [""] * len(clock)
    word = {"in": "In", "out": "Out", "": "?"}
    return [f"{c} {p} {word.get(d, d)} {s}" for c, p, d, s in zip(clock, points, dirs, summary)]
