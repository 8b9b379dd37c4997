"""Packet captures: the socket capture engine, the vectorised decoder and pcap files.

``Capture`` arms AF_PACKET sockets in the capture points' namespaces; ``read_packets``
turns a pcap/pcapng file into the same PACKETS table a capture gives.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .engine import Capture
from .frames import Frames
from .pcap import read_pcap, write_pcap
from .pcapng import write_pcapng
from .table import packets_table


def read_packets(path: str | Path, point: str | None = None) -> pd.DataFrame:
    """The PACKETS table of a pcap or pcapng file (``point`` defaults to the file's stem)."""
    return packets_table(read_pcap(path, point))


__all__ = ["Capture", "Frames", "packets_table", "read_packets", "read_pcap", "write_pcap", "write_pcapng"]
