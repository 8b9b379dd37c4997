"""Packet captures: the socket capture engine, the vectorised decoder and pcap files.

``Capture`` arms AF_PACKET sockets in the capture points' namespaces; ``read_packets``
turns a pcap/pcapng file into the same PACKETS table a capture gives. The submodules load
on first use (pandas and numpy are heavy), so ``labkit.capture.bounds`` is cheap to import
for the CLI's parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Capture", "Frames", "packets_table", "read_packets", "read_pcap", "write_pcap", "write_pcapng"]
_WHERE = {
    "Capture": "engine",
    "Frames": "frames",
    "packets_table": "table",
    "read_pcap": "pcap",
    "write_pcap": "pcap",
    "write_pcapng": "pcapng",
}


def read_packets(path: str | Path, point: str | None = None) -> pd.DataFrame:
    """The PACKETS table of a pcap or pcapng file (``point`` defaults to the file's stem)."""
    from .pcap import read_pcap
    from .table import packets_table

    return packets_table(read_pcap(path, point))


def __getattr__(name: str) -> Any:
    if name in _WHERE:  # heavy submodules (numpy, pandas): imported when first asked for
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
