"""What every backend provides. The Lab facade (labkit/lab.py) talks only to this.

Two backends implement it: ``embedded`` (labkit/embedded/: network namespaces and our own
eBPF datapath) and ``kind`` (labkit/live/: a real kind cluster with Cilium). Both return the
tables of :mod:`labkit.tables`.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol, Sequence

import pandas as pd


@dataclass(frozen=True)
class CapturePoint:
    """One interface to capture on, resolved from a pattern like ``kind-worker:lxc*``.

    ``netns`` is how to reach the interface's network namespace: a path such as
    ``/run/netns/<name>`` for the embedded backend; the live backend fills ``exec_prefix``
    (an argv prefix like ``["docker", "exec", "-i", "kind-worker"]``) instead.
    """

    point: str          # "kind-worker:lxc1a2b3c4d5e6f" or "client-pod:eth0"
    node: str           # node the interface lives on (for pod points, the pod's node)
    pod: str            # pod that owns the interface (pod eth0, or the pod behind an lxc); "" otherwise
    interface: str      # interface name inside that namespace
    netns: str = ""     # path of the network namespace (embedded)
    exec_prefix: tuple[str, ...] = ()   # argv prefix that runs a command there (live)


class Backend(Protocol):
    name: str   # "embedded" or "kind"
    lab: str    # lab name

    def up(self) -> None: ...
    def down(self) -> None: ...
    def is_up(self) -> bool: ...
    def apply(self, paths: Sequence[str]) -> None: ...
    def nodes(self) -> pd.DataFrame: ...
    def pods(self) -> pd.DataFrame: ...
    def services(self) -> pd.DataFrame: ...
    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``target`` (a node or pod name)."""
    def run(self, target: str, argv: Sequence[str], *, timeout: float | None = 60,
            input: str | None = None) -> subprocess.CompletedProcess: ...
    def popen(self, target: str, argv: Sequence[str], **kw) -> subprocess.Popen: ...
    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]: ...
    # datapath views (tables of labkit.tables)
    def maps(self, node: str): ...
    def monitor(self, node: str | None = None, *, from_: int | None = None, to: int | None = None,
                related_to: int | None = None, seconds: float | None = None, **kw) -> pd.DataFrame: ...
    def flows(self, node: str | None = None, *, seconds: float | None = None, **kw) -> pd.DataFrame: ...
