"""The Lab: what notebooks and the CLI hold. Backend-agnostic; it only talks to the backend
contract (:mod:`labkit.backend`).

    lab = labkit.connect()                       # embedded lab "default"
    lab.up(); lab.apply()                        # nodes, then cluster/manifests
    lab.pods                                     # DataFrame (labkit.tables.PODS)
    lab.pod("client-pod").run(["curl", "-s", "http://webpod"])
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .backend import Backend, MapsReader, NodeRef, PodRef, Settings, TargetRef, check_seconds, check_window
from .capture import Capture
from .classroom import client as classroom
from .classroom.client import BrokerBackend
from .embedded.backend import EmbeddedBackend
from .errors import ExitStatus, LabError
from .live.backend import KindBackend
from .spec import CLUSTER_DIR, REPO
from .tables import ROUTES
from .targets import command_argv

BACKENDS = ("embedded", "kind")


@dataclass(frozen=True)
class Target:
    """A node or a pod of the lab, where commands run."""

    lab: Lab
    ref: TargetRef

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def node(self) -> str:
        return self.ref.node

    def run(
        self, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (a list, never a shell string) here; stdout/stderr are captured as text."""
        argv = command_argv(argv)
        check_seconds("timeout", timeout, positive=True)
        r = self.lab.backend.run(self._where, argv, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} in {self.name} exited {r.returncode}: {r.stderr.strip()[:200]}",
                exit_code=ExitStatus.FAILURE,
            )
        return r

    def sh(self, argv: Sequence[str], **kw: Any) -> str:
        """Run and return stdout (raises on a non-zero exit)."""
        return self.run(argv, check=True, **kw).stdout

    @property
    def _where(self) -> str:
        return self.ref.key if isinstance(self.ref, PodRef) else self.ref.name


@dataclass(frozen=True)
class Captured:
    """What ``Lab.run_captured`` returns: the command's result and the capture."""

    result: subprocess.CompletedProcess[str]
    capture: Capture

    @property
    def packets(self) -> pd.DataFrame:
        return self.capture.packets

    def seen(self, **match: Any) -> set[str]:
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

    def up(self, *, datapath: str | None = None, options: dict[str, str] | None = None) -> str:
        """Build the lab (``datapath`` and ``options`` are --datapath and --set of `labkit up`)."""
        if options is not None and not isinstance(options, dict):
            raise LabError("options must be a dict of helm values, e.g. {'socketLB.enabled': 'false'}")
        return self.backend.up(Settings(datapath, dict(options or {})))

    def down(self) -> str:
        """Remove the lab, and first the labs a lesson made for it (its companions)."""
        said = [connect(lab, self.backend.name).down() for lab in self.backend.companions()]
        return "\n".join([*said, self.backend.down()])

    def companions(self) -> list[str]:
        """The labs made for this one (a lesson's contrasts), removed with it by ``down``."""
        return self.backend.companions()

    def add_companion(self, other: Lab) -> None:
        """Record ``other`` as made for this lab: ``down`` of this lab removes it too."""
        self.backend.add_companion(other.name)

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
        rows = []
        for node in self.nodes.name:
            r = self.backend.run(node, ["ip", "-j", "-4", "route", "show"])
            if r.returncode != 0:
                raise LabError(f"ip route on {node} failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
            for route in json.loads(r.stdout or "[]"):
                rows.append(
                    {
                        "node": node,
                        "dst": route.get("dst", ""),
                        "gateway": route.get("gateway", ""),
                        "dev": route.get("dev", ""),
                        "scope": route.get("scope", "global"),
                        "src": route.get("prefsrc", ""),
                    }
                )
        return ROUTES.frame(rows)

    # captures
    def capture(
        self,
        points: Sequence[str],
        *,
        count: int | None = None,
        seconds: float | None = None,
        max_bytes: int | None = None,
        snaplen: int = 262144,
    ) -> Capture:
        """Capture on ``points`` (``node:iface``, ``pod:iface``, globs like ``kind-worker:lxc*``).

        Use as ``with lab.capture([...]) as cap: ...``: armed before the block runs, so the
        first packet of the traffic is never lost; ``cap.packets`` is the PACKETS table.
        """
        if isinstance(points, str):
            points = [points]
        opener = self.backend.packet_sockets if self.backend.capabilities.packet_sockets else None
        return Capture(
            self.backend.capture_points(points),
            count=count,
            seconds=seconds,
            max_bytes=max_bytes,
            snaplen=snaplen,
            opener=opener,
        )

    def run_captured(
        self, target: str, argv: Sequence[str], points: Sequence[str], *, seconds: float = 10, settle: float = 0.3
    ) -> Captured:
        """Run ``argv`` in ``target`` while capturing on ``points``: the blog's method in one call."""
        with self.capture(points, seconds=seconds) as cap:
            result = self.pod(target).run(argv, timeout=seconds)
            cap.wait(settle)
        return Captured(result, cap)

    def trace(
        self,
        target: str | None = None,
        argv: Sequence[str] | None = None,
        *,
        points: Sequence[str] = (),
        filter: str = "",
        seconds: float | None = None,
        max_events: int | None = None,
    ) -> pd.DataFrame:
        """Follow packets through the kernel while ``argv`` runs in ``target`` (pwru-like):
        the TRACE table (labkit.tables), one row per kernel event of each packet that
        matches ``filter`` ('tcp and port 80'; "" = all) where it is picked up: at
        ``points`` (then its whole flow is followed) or anywhere in the lab. Without a
        command: the next ``seconds``. ``seconds`` (default 10) and ``max_events`` bound it.

            lab.trace("client-pod", ["curl", "-s", "http://webpod"], filter="tcp and port 80")
        """
        if isinstance(points, str):
            points = [points]
        during: Callable[[], object] | None = None
        if argv is not None:
            if isinstance(argv, str):
                raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
            if target is None:
                raise LabError("say where the command runs: lab.trace('client-pod', [...])")
            where = self.target(target)._where
            limit = seconds if seconds is not None else 10.0
            during = functools.partial(self.backend.run, where, list(argv), timeout=limit)
        return self.backend.trace(points, filter=filter, duration=seconds, during=during, max_events=max_events)

    def capture_choices(self) -> list[tuple[str, str]]:
        """(label, point) for every interface worth capturing on, in path order (labkit.paths)."""
        return paths.choices(self.nodes, self.pods)

    # datapath (eBPF maps, monitor events, flows)
    def maps(self, node: str) -> MapsReader:
        """The node's datapath maps: .endpoints() .ct() .nat() .lb() .ipcache() .metrics(), .flush("ct"|"nat")."""
        return self.backend.maps(node)

    def monitor(
        self,
        node: str | None = None,
        *,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        """Trace/drop events (labkit.tables.EVENTS), filtered like `cilium monitor --from/--to/
        --related-to`: those of the last ``seconds`` (embedded only: a live monitor cannot
        look back), of ``during`` (a callable: run it, return what it caused) or of the next
        ``duration`` seconds."""
        check_window(seconds=seconds, duration=duration)
        return self.backend.monitor(
            node, from_=from_, to=to, related_to=related_to, seconds=seconds, duration=duration, during=during
        )

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        """Hubble flows (labkit.tables.FLOWS): of the last ``seconds``, of ``during`` or of
        the next ``duration`` seconds."""
        check_window(seconds=seconds, duration=duration)
        return self.backend.flows(node, seconds=seconds, duration=duration, during=during)

    # targets
    def target(self, name: str) -> Target:
        """A node or pod, checked now (a clear error for an unknown name)."""
        return Target(self, self.backend.resolve(name))

    def pod(self, name: str) -> Target:
        t = self.target(name)
        if not isinstance(t.ref, PodRef):
            raise LabError(f"{name!r} is a node, not a pod; use lab.node({name!r})")
        return t

    def node(self, name: str) -> Target:
        t = self.target(name)
        if not isinstance(t.ref, NodeRef):
            raise LabError(f"{name!r} is a pod, not a node; use lab.pod({name!r})")
        return t

    def existing_labs(self) -> list[str]:
        """Every lab of this lab's backend on this machine."""
        return self.backend.existing_labs()

    def labs(self) -> pd.DataFrame:
        """LABS: every lab of this backend on this machine, with its datapath, age and companions."""
        return self.backend.labs()


def checkout() -> str:
    """The labkit checkout this code runs from (what LABS.checkout holds for its labs)."""
    return str(REPO)


def backend_for(lab: str | None = None, backend: str | None = None) -> Backend:
    """The backend object for lab ``lab`` on ``backend`` (see :func:`connect`)."""
    backend = backend or os.environ.get("LABKIT_BACKEND") or "embedded"
    if backend == "embedded" and classroom.wanted():
        # a classroom student (not root): the same backend, through the lab broker
        return BrokerBackend(_lab_name(lab, "LABKIT_LAB", "default"))
    if backend == "embedded":
        return EmbeddedBackend(_lab_name(lab, "LABKIT_LAB", "default"))
    if backend == "kind":
        # a kind cluster is named in cluster/kind.yaml ("kind"); --lab picks another one
        return KindBackend(_lab_name(lab, "LABKIT_KIND_CLUSTER", "kind"))
    raise LabError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _lab_name(lab: object, env: str, default: str) -> str:
    """The lab asked for: ``lab``, else $``env``, else ``default``. An empty or non-string
    name is an error, never the default (``--lab ''`` must not act on lab "default")."""
    if lab is None:
        lab = os.environ.get(env)
        if lab == "":
            raise LabError(f"${env} is set but empty; unset it or name a lab, e.g. {env}=student1")
        if lab is None:
            return default
    if not isinstance(lab, str) or not lab:
        raise LabError(f"lab name {lab!r} is not valid: give a name such as 'student1' (1-20 of a-z, 0-9, '-')")
    return lab


def connect(lab: str | None = None, backend: str | None = None) -> Lab:
    """The lab named ``lab`` (default "default", or $LABKIT_LAB) on ``backend``
    ("embedded", the default, or "kind"; or $LABKIT_BACKEND). Nothing is built here."""
    return Lab(backend_for(lab, backend))
