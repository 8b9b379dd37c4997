"""The Lab: what notebooks and the CLI hold. Backend-agnostic; it only talks to a Backend.

    lab = labkit.connect()                       # embedded lab "default"
    lab.up(); lab.apply()                        # nodes, then cluster/manifests
    lab.pods                                     # DataFrame (labkit.tables.PODS)
    lab.pod("client-pod").run(["curl", "-s", "http://webpod"])
"""
from __future__ import annotations

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
