"""The Lab: what notebooks and the CLI hold. Backend-agnostic; it only talks to a Backend.

    lab = labkit.connect()                       # embedded lab "default"
    lab.up(); lab.apply()                        # nodes, then cluster/manifests
    lab.pods                                     # DataFrame (labkit.tables.PODS)
    lab.pod("client-pod").run(["curl", "-s", "http://webpod"])
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from .backend import Backend
from .errors import LabError
from .spec import CLUSTER_DIR

BACKENDS = ("embedded", "kind")


@dataclass(frozen=True)
class Target:
    """A node or a pod of the lab, where commands run."""

    lab: "Lab"
    name: str

    def run(self, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run ``argv`` (a list, never a shell string) here; stdout/stderr are captured as text."""
        if isinstance(argv, str):
            raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
        r = self.lab.backend.run(self.name, argv, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise LabError(f"{' '.join(argv)} in {self.name} exited {r.returncode}: {r.stderr.strip()[:200]}",
                           exit_code=1)
        return r

    def sh(self, argv: Sequence[str], **kw) -> str:
        """Run and return stdout (raises on a non-zero exit)."""
        return self.run(argv, check=True, **kw).stdout


@dataclass(frozen=True)
class Captured:
    """What ``Lab.run_captured`` returns: the command's result and the capture."""

    result: subprocess.CompletedProcess
    capture: object   # labkit.capture.Capture

    @property
    def packets(self) -> pd.DataFrame:
        return self.capture.packets

    def seen(self, **match) -> set[str]:
        """Points where a packet matching ``match`` (column=value, e.g. tcp_flags="[S]") was seen."""
        pk = self.packets
        for col, val in match.items():
            pk = pk[pk[col] == val]
        return set(pk.point)

    def lines(self, point: str | None = None) -> list[str]:
        return self.capture.lines(point)


class Lab:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.lab

    def __repr__(self) -> str:
        return f"<Lab {self.name!r} on {self.backend.name}: {'up' if self.is_up else 'down'}>"

    # lifecycle
    @property
    def is_up(self) -> bool:
        return self.backend.is_up()

    def up(self, **kw) -> str:
        return self.backend.up(**kw)

    def down(self) -> str:
        return self.backend.down()

    def apply(self, *paths: str | Path) -> list[str]:
        """Apply manifests (files or folders); default: the lab's cluster/manifests."""
        return self.backend.apply([str(p) for p in paths] or [str(CLUSTER_DIR / "manifests")])

    # tables
    @property
    def nodes(self) -> pd.DataFrame:
        return self.backend.nodes()

    @property
    def pods(self) -> pd.DataFrame:
        return self.backend.pods()

    @property
    def services(self) -> pd.DataFrame:
        return self.backend.services()

    @property
    def routes(self) -> pd.DataFrame:
        """Every node's routing table (labkit.tables.ROUTES), read from the nodes themselves."""
        from .tables import ROUTES
        rows = []
        for node in self.nodes.name:
            r = self.backend.run(node, ["ip", "-j", "-4", "route", "show"])
            if r.returncode != 0:
                raise LabError(f"ip route on {node} failed: {r.stderr.strip()}", exit_code=1)
            for route in json.loads(r.stdout or "[]"):
                rows.append({"node": node, "dst": route.get("dst", ""), "gateway": route.get("gateway", ""),
                             "dev": route.get("dev", ""), "scope": route.get("scope", "global"),
                             "src": route.get("prefsrc", "")})
        return ROUTES.frame(rows)

    def topology(self):
        """A plotly figure of nodes, pods, lxc interfaces, IPs and routes of the running lab."""
        from .plots.topology import topology
        return topology(self.nodes, self.pods, self.routes)

    # captures
    def capture(self, points: Sequence[str], *, count: int | None = None, seconds: float | None = None,
                max_bytes: int | None = None, snaplen: int = 262144):
        """Capture on ``points`` (``node:iface``, ``pod:iface``, globs like ``kind-worker:lxc*``).

        Use as ``with lab.capture([...]) as cap: ...``: armed before the block runs, so the
        first packet of the traffic is never lost; ``cap.packets`` is the PACKETS table.
        """
        from .capture import Capture
        if isinstance(points, str):
            points = [points]
        return Capture(self.backend.capture_points(points), count=count, seconds=seconds,
                       max_bytes=max_bytes, snaplen=snaplen)

    def run_captured(self, target: str, argv: Sequence[str], points: Sequence[str], *, seconds: float = 10,
                     settle: float = 0.3) -> "Captured":
        """Run ``argv`` in ``target`` while capturing on ``points``: the blog's method in one call."""
        with self.capture(points, seconds=seconds) as cap:
            result = self.pod(target).run(argv, timeout=seconds)
            cap.wait(settle)
        return Captured(result, cap)

    def capture_choices(self) -> list[tuple[str, str]]:
        """(label, point) for every interface worth capturing on: each pod's eth0, each node's
        eth0 and every lxc (labelled with its pod), in path order node by node."""
        pods = self.pods
        out = []
        for node in self.nodes.name:
            here = pods[pods.node == node]
            out += [(f"{p.name}:eth0", f"{p.name}:eth0") for p in here.itertuples()]
            out += [(f"{node}:{p.lxc} ({p.name})", f"{node}:{p.lxc}") for p in here.itertuples()]
            out.append((f"{node}:eth0", f"{node}:eth0"))
        return out

    # datapath (eBPF maps, monitor events, flows)
    def maps(self, node: str):
        """The node's datapath maps: .endpoints() .ct() .nat() .lb() .ipcache() .metrics(), .flush("ct"|"nat")."""
        return self._datapath("maps")(node)

    def monitor(self, node: str | None = None, *, from_: int | None = None, to: int | None = None,
                related_to: int | None = None, **kw) -> pd.DataFrame:
        """Trace/drop events (labkit.tables.EVENTS), filtered like `cilium monitor --from/--to/
        --related-to`. ``during=callable`` (run it and return what it caused) and
        ``duration=`` work on both backends; the embedded one also takes ``seconds=`` (the
        events of the last seconds, default all kept)."""
        args = {k: v for k, v in dict(from_=from_, to=to, related_to=related_to, **kw).items() if v is not None}
        return self._datapath("monitor")(node, **args)

    def flows(self, node: str | None = None, **kw) -> pd.DataFrame:
        """Hubble-like flows (labkit.tables.FLOWS); embedded: ``seconds=`` like monitor."""
        return self._datapath("flows")(node, **kw)

    def _datapath(self, what: str):
        fn = getattr(self.backend, what, None)
        if fn is None:
            raise LabError(f"lab.{what}() is not available on the {self.backend.name} backend")
        return fn

    # targets
    def pod(self, name: str) -> Target:
        self.backend.argv(name, ["true"])  # validates the name now, with a clear error
        return Target(self, name)

    def node(self, name: str) -> Target:
        return self.pod(name)


def connect(lab: str | None = None, backend: str | None = None) -> Lab:
    """The lab named ``lab`` (default "default", or $LABKIT_LAB) on ``backend``
    ("embedded", the default, or "kind"; or $LABKIT_BACKEND). Nothing is built here."""
    backend = backend or os.environ.get("LABKIT_BACKEND") or "embedded"
    if backend == "kind":
        # a kind cluster is named in cluster/kind.yaml ("kind"); --lab picks another one
        lab = lab or os.environ.get("LABKIT_KIND_CLUSTER") or "kind"
    lab = lab or os.environ.get("LABKIT_LAB") or "default"
    if backend == "embedded":
        from .embedded.backend import EmbeddedBackend
        return Lab(EmbeddedBackend(lab))
    if backend == "kind":
        try:
            from .live.backend import KindBackend
        except ImportError:
            raise LabError("the kind backend is not available in this installation") from None
        return Lab(KindBackend(lab))
    raise LabError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
