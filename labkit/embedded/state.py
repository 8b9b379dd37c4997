"""The small state file of a running embedded lab (/run/labkit/<lab>/state.json).

The kernel holds the lab (namespaces, links, pinned maps); this file holds what the kernel
cannot tell us cheaply: the plan (names, ids), the options it was built with, and the PIDs
of the workloads labkit started. Any process (CLI, notebook kernel) reads it to attach.
Writes are atomic (rename) and made under an exclusive lock per lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from ..errors import LabError
from ..plan import Plan
from .names import LabNames


@dataclass
class LabState:
    lab: str
    status: str  # "building" while up runs, then "up"
    datapath: str  # "kernel" (plain routing) or "ebpf"
    options: dict  # --set overrides of the helm values
    plan: Plan
    pids: dict[str, int] = field(default_factory=dict)  # pod key -> workload pid
    links: dict[str, dict] = field(default_factory=dict)  # pod key -> lxc_ifindex, pod_mac, lxc_mac

    def to_json(self) -> str:
        d = asdict(self)
        d["plan"] = self.plan.to_dict()
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        d = json.loads(text)
        d["plan"] = Plan.from_dict(d["plan"])
        return cls(**d)


def path(names: LabNames):
    return names.state_dir / "state.json"


def load(names: LabNames) -> LabState | None:
    try:
        return LabState.from_json(path(names).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise LabError(
            f"the state file {path(names)} is damaged; run labkit down --lab {names.lab}", exit_code=1
        ) from None


def save(names: LabNames, st: LabState) -> None:
    names.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path(names).with_suffix(".tmp")
    tmp.write_text(st.to_json())
    os.replace(tmp, path(names))


@contextlib.contextmanager
def locked(names: LabNames) -> Iterator[None]:
    """Serialise up/apply/down of one lab across processes."""
    names.state_dir.mkdir(parents=True, exist_ok=True)
    with open(names.state_dir / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
