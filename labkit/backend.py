"""The backend contract: what every backend provides. The Lab facade (labkit/lab.py) and the
CLI talk only to this.

Two backends implement it: ``embedded`` (labkit/embedded/: network namespaces and labkit's
own eBPF datapath) and ``kind`` (labkit/live/: a real kind cluster with Cilium). Both
return the tables of :mod:`labkit.tables`; ``tests/test_backend_contract.py`` checks,
against both, that every method below exists with exactly this signature, returns what
it says, and that every table has its schema.

What a backend can or cannot do is answered by :class:`Capabilities`, never by probing
for attributes or comparing backend names.

Time windows have one meaning everywhere: ``seconds=`` looks *back* (the events of the
last seconds); ``duration=`` *listens* that long from now; ``during=`` runs a callable and
returns what it caused.
"""

from __future__ import annotations

import math
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .doctor import Check
from .errors import ExitStatus, LabError

if TYPE_CHECKING:  # tables are DataFrames; pandas itself is not needed to state the contract
    import pandas as pd

MAX_SECONDS = 86400.0  # a day: the longest time window or capture a lab command takes


def check_seconds(name: str, value: object, *, positive: bool = False) -> float | None:
    """A time bound as a float, or a one-line error: not a number, not finite, negative
    (or zero when ``positive``), longer than a day. Shared by every backend and the CLI."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LabError(f"{name} must be a number of seconds, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0) or v > MAX_SECONDS:
        least = "> 0" if positive else ">= 0"
        raise LabError(f"{name} must be a number of seconds {least} and at most {MAX_SECONDS:.0f}, got {value!r}")
    return v


def check_window(*, seconds: object = None, duration: object = None) -> None:
    """``seconds`` (look back) and ``duration`` (listen) of a time window, checked."""
    check_seconds("seconds", seconds)
    check_seconds("duration", duration)


@dataclass(frozen=True)
class CapturePoint:
    """One interface to capture on, resolved from a pattern like ``kind-worker:lxc*``.

    ``netns`` is how to reach the interface's network namespace: a path such as
    ``/run/netns/<name>`` for the embedded backend; the live backend fills ``exec_prefix``
    (an argv prefix like ``["docker", "exec", "-i", "kind-worker"]``) instead.
    """

    point: str  # "kind-worker:lxc1a2b3c4d5e6f" or "client-pod:eth0"
    node: str  # node the interface lives on (for pod points, the pod's node)
    pod: str  # pod that owns the interface (pod eth0, or the pod behind an lxc); "" otherwise
    interface: str  # interface name inside that namespace
    netns: str = ""  # path of the network namespace (embedded)
    exec_prefix: tuple[str, ...] = ()  # argv prefix that runs a command there (live)


@dataclass(frozen=True)
class NodeRef:
    """A node of the lab, by name."""

    name: str

    @property
    def node(self) -> str:
        return self.name


@dataclass(frozen=True)
class PodRef:
    """A pod of the lab: namespace, name and the node it runs on."""

    namespace: str
    name: str
    node: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


TargetRef = NodeRef | PodRef


@dataclass(frozen=True)
class Settings:
    """How a lab is built: the datapath variant and ``--set`` overrides of the helm values.

    ``datapath`` None means the backend's default (:attr:`Capabilities.datapaths` [0])."""

    datapath: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers ask this instead of probing attributes."""

    datapaths: tuple[str, ...]  # variants `up` can build; the first is the default
    options: bool  # `up` honours --set overrides of the helm values
    companions: bool  # cheap second labs side by side (for contrasts)
    look_back: bool  # monitor(seconds=) returns events that already happened
    up_applies_manifests: bool  # `up` also applies cluster/manifests (kind); else `apply` does
    trace: bool  # trace() follows packets through the kernel (tracepoints + tc hooks, like pwru)
    packet_sockets: bool = True  # packet_sockets() opens capture sockets (else points use exec_prefix)

    @property
    def default_datapath(self) -> str:
        return self.datapaths[0]


@runtime_checkable
class MapsReader(Protocol):
    """The eBPF maps of one node, as tables, and as `cilium bpf ...` prints them."""

    node: str

    def endpoints(self) -> pd.DataFrame: ...  # ENDPOINTS
    def ct(self) -> pd.DataFrame: ...  # CT
    def nat(self) -> pd.DataFrame: ...  # NAT
    def lb(self) -> pd.DataFrame: ...  # LB
    def ipcache(self) -> pd.DataFrame: ...  # IPCACHE
    def metrics(self) -> pd.DataFrame: ...  # METRICS

    def flush(self, what: str) -> dict[str, int]:
        """Delete every entry of the CT maps ("ct") or the NAT map ("nat"): removed per map."""
        ...

    def text(self, what: str, *, output: str = "text", time_diff: bool = False) -> str:
        """What `cilium bpf <what> list` (``what`` in endpoints, ct, nat, lb, ipcache,
        metrics), `cilium service list` ("services"), `cilium endpoint list`
        ("endpoint-list"), `cilium identity list` ("identities"), `cilium status`
        ("status", "status-verbose") or `cilium version` ("version") prints; ``output``
        "text" or "json"; ``time_diff``: CT lifetimes as remaining seconds (``-d``)."""
        ...


@runtime_checkable
class Backend(Protocol):
    name: str  # "embedded" or "kind"
    lab: str  # lab name
    capabilities: Capabilities

    # lifecycle
    def up(self, settings: Settings | None = None) -> str: ...
    def down(self) -> str: ...
    def is_up(self) -> bool: ...
    def apply(self, paths: Sequence[str]) -> list[str]: ...
    def settings(self) -> Settings:
        """How the running lab was built (datapath explicit)."""
        ...

    def existing_labs(self) -> list[str]:
        """Names of every lab of this backend on this machine."""
        ...

    def labs(self) -> pd.DataFrame:
        """LABS: every lab of this backend on this machine, how and when it was built, whose
        companion it is, and the checkout that built it (`labkit list`)."""
        ...

    def companions(self) -> list[str]:
        """The labs made for this one (a lesson's contrasts): `down` of this lab removes them."""
        ...

    def add_companion(self, lab: str) -> None:
        """Record that running lab ``lab`` was made for this one (without
        :attr:`Capabilities.companions`: a LabError that says so)."""
        ...

    def doctor(self) -> list[Check]:
        """Is this machine ready for the backend? One check per requirement."""
        ...

    def problems(self) -> list[str]:
        """What is wrong with the running lab (a daemon or pod that stopped), one line each
        saying what to do; [] when all runs (or the lab does not exist)."""
        ...

    # tables
    def nodes(self) -> pd.DataFrame: ...  # NODES
    def pods(self) -> pd.DataFrame: ...  # PODS
    def services(self) -> pd.DataFrame: ...  # SERVICES

    # running things
    def resolve(self, target: str) -> TargetRef:
        """A node or pod name (``namespace/pod`` if ambiguous) -> its reference."""
        ...

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``target`` (a node or pod name)."""
        ...

    def run(
        self, target: str, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...
    def popen(self, target: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]: ...
    def shell_env(self, target: str) -> dict[str, str]:
        """Extra environment for an interactive shell in ``target`` (`labkit shell`)."""
        ...

    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]: ...
    def packet_sockets(self, points: Sequence[CapturePoint]) -> list[socket.socket]:
        """Bound AF_PACKET sockets on ``points`` (those with a ``netns``), one each, in order:
        opened in the lab's namespaces here, or by the classroom's broker for a student."""
        ...

    def external_address(self) -> str:
        """An address outside the cluster that pods can call (masquerade lessons)."""
        ...

    # datapath views
    def maps(self, node: str) -> MapsReader: ...
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
        """EVENTS, filtered like `cilium monitor --from/--to/--related-to`."""
        ...

    def monitor_lines(
        self,
        node: str | None = None,
        *,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        json: bool = False,
        seconds: float | None = None,
        duration: float | None = None,
        verbose: bool = False,
    ) -> Iterator[str]:
        """What `cilium monitor` prints, line by line (the banner first); ``seconds``:
        the events of the last seconds, then stop; else follow for ``duration`` (None:
        until interrupted); ``verbose``: as `cilium monitor -v` (socket-LB trace-sock
        lines too)."""
        ...

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        """FLOWS (Hubble), oldest first."""
        ...

    def observe_lines(
        self,
        node: str | None = None,
        *,
        last: int | None = 20,
        seconds: float | None = None,
        follow: bool = False,
        duration: float | None = None,
        output: str = "compact",
    ) -> Iterator[str]:
        """What `hubble observe` prints (``output`` compact or json)."""
        ...

    def trace(
        self,
        points: Sequence[str] = (),
        *,
        filter: str = "",
        duration: float | None = None,
        during: Callable[[], object] | None = None,
        max_events: int | None = None,
    ) -> pd.DataFrame:
        """TRACE (pwru-like): every kernel event of the packets that match ``filter``
        (a pcap-filter subset, "" for all) where they are picked up, at ``points``
        (node:iface / pod:iface, globs; then their flows are followed everywhere) or
        anywhere in the lab; while ``during`` runs (at most ``duration`` seconds, default
        10) or for the next ``duration`` seconds; at most ``max_events`` events."""
        ...


def look_back_window(
    seconds: float | None, duration: float | None, during: Callable[[], object] | None, settle: float = 0.3
) -> float | None:
    """The ``seconds=`` window that covers ``during`` (run now) or ``duration`` (waited
    now), for a backend that keeps every event and answers for the last seconds afterwards."""
    if during is None and duration is None:
        return seconds
    t0 = time.time()
    if during is not None:
        during()
    time.sleep(max(settle, (duration or 0) - (time.time() - t0)))
    return time.time() - t0 + 0.05


def run_with_popen(
    popen: Callable[..., subprocess.Popen[Any]],
    target: str,
    argv: Sequence[str],
    *,
    timeout: float | None,
    input: str | None,
) -> subprocess.CompletedProcess[str]:
    """``Backend.run`` on top of the backend's ``popen``: output captured, a time limit."""
    proc = popen(
        target,
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise LabError(
            f"{' '.join(map(str, argv))} in {target} did not finish within {timeout} s",
            exit_code=ExitStatus.FAILURE,
        ) from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
