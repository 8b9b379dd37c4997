"""A student's backend: the embedded backend's contract, answered by the lab broker.

``labkit.connect()`` returns this when the caller is not root (or is "root" only inside a
user namespace, as in a lab shell) and a broker listens. Every call is one request on the
broker's socket; tables, settings and errors come back as the embedded backend made them.
Commands (``run``, ``popen``, ``argv``) go through a small relay process
(``python -m labkit.classroom.relay``) that hands its stdin/stdout/stderr to the broker and
exits with the command's status, so a command is a ``subprocess.Popen`` like any other.
Captures get their sockets from the broker (SCM_RIGHTS): the capture engine reads them here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..backend import Capabilities, CapturePoint, Settings, TargetRef, look_back_window, run_with_popen
from ..doctor import Check
from ..errors import ExitStatus, LabError
from . import protocol

BIN = Path(__file__).resolve().parent / "bin"  # cilium, cilium-dbg, hubble for node shells


def in_initial_userns() -> bool:
    """Whether this process is in the machine's own user namespace (not a lab's)."""
    try:
        first = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return True
    return first[:3] == ["0", "0", "4294967295"]


def wanted() -> bool:
    """Use the broker: not really root, and a broker listens."""
    really_root = os.geteuid() == 0 and in_initial_userns()
    return not really_root and protocol.socket_path().exists()


def call(request: dict, fds: Sequence[int] = (), *, timeout: float | None = 600) -> tuple[Any, list[int]]:
    """One request, one reply; a LabError from the broker is raised here."""
    path = protocol.socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError as e:
            raise LabError(
                f"cannot reach the lab broker at {path}: {e.strerror}; ask the instructor to run labkit classroom up",
                exit_code=ExitStatus.FAILURE,
            ) from None
        protocol.send_request(s, request, list(fds))
        got = protocol.recv_reply(s)
    if got is None:
        raise LabError("the lab broker closed the connection; try again", exit_code=ExitStatus.FAILURE)
    reply, got_fds = got
    if "error" in reply:
        for fd in got_fds:
            os.close(fd)
        raise reply["error"]
    return reply.get("ok"), got_fds


def stream(request: dict) -> Iterator[str]:
    path = protocol.socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        protocol.send_request(s, request)
        while True:
            got = protocol.recv_reply(s)
            if got is None:
                return
            reply, _ = got
            if "error" in reply:
                raise reply["error"]
            if reply.get("end"):
                return
            yield reply["item"]


def _manifest_files(paths: Sequence[str]) -> list[dict[str, str]]:
    """The manifests under ``paths`` as text (the broker never opens a student's files)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml", ".json"))
        elif p.exists():
            files.append(p)
        else:
            raise LabError(f"no manifest file or folder {p}")
    if not files:
        raise LabError(f"no manifests (*.yaml) in {', '.join(paths)}")
    return [{"name": f.name, "text": f.read_text()} for f in files]


class BrokerMaps:
    """MapsReader of one node of a student's lab, read by the broker."""

    def __init__(self, backend: BrokerBackend, node: str) -> None:
        self.backend, self.node = backend, node

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.backend._call(
            "maps", node=self.node, method=method, args=list(args), kwargs={k: v for k, v in kwargs.items()}
        )

    def endpoints(self) -> pd.DataFrame:
        return self._call("endpoints")

    def ct(self) -> pd.DataFrame:
        return self._call("ct")

    def nat(self) -> pd.DataFrame:
        return self._call("nat")

    def lb(self) -> pd.DataFrame:
        return self._call("lb")

    def ipcache(self) -> pd.DataFrame:
        return self._call("ipcache")

    def metrics(self) -> pd.DataFrame:
        return self._call("metrics")

    def flush(self, what: str) -> dict[str, int]:
        return self._call("flush", what)

    def text(self, what: str, *, output: str = "text", time_diff: bool = False) -> str:
        return self._call("text", what, output=output, time_diff=time_diff)


class BrokerBackend:
    """The embedded backend for a student, through the broker (same contract, same tables)."""

    name = "embedded"
    capabilities = Capabilities(
        datapaths=("ebpf", "kernel"),
        options=True,
        companions=True,
        look_back=True,
        up_applies_manifests=False,
        trace=True,
        packet_sockets=True,
    )

    def __init__(self, lab: str = "default") -> None:
        self.lab = lab

    def _call(self, op: str, **args: Any) -> Any:
        return call({"op": op, "lab": self.lab, "args": args})[0]

    # lifecycle
    def up(self, settings: Settings | None = None) -> str:
        s = settings or Settings()
        return self._call("up", datapath=s.datapath, options=dict(s.options))

    def down(self) -> str:
        return self._call("down")

    def is_up(self) -> bool:
        return self._call("is_up")

    def apply(self, paths: Sequence[str]) -> list[str]:
        return self._call("apply", files=_manifest_files(paths))

    def settings(self) -> Settings:
        return self._call("settings")

    def existing_labs(self) -> list[str]:
        return call({"op": "labs"})[0]

    def problems(self) -> list[str]:
        return self._call("problems")

    def labs(self) -> pd.DataFrame:
        return call({"op": "labs_table"})[0]

    def companions(self) -> list[str]:
        return self._call("companions")

    def add_companion(self, lab: str) -> None:
        self._call("add_companion", lab=lab)

    def doctor(self) -> list[Check]:
        return self._call("doctor")

    # tables
    def nodes(self) -> pd.DataFrame:
        return self._call("nodes")

    def pods(self) -> pd.DataFrame:
        return self._call("pods")

    def services(self) -> pd.DataFrame:
        return self._call("services")

    # running things
    def resolve(self, target: str) -> TargetRef:
        return self._call("resolve", target=target)

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        if isinstance(argv, str):
            raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
        if not argv:
            raise LabError("no command given; e.g. labkit exec client-pod -- curl -s http://webpod")
        self.resolve(target)  # an unknown target fails here, with the broker's message
        return [sys.executable, "-m", "labkit.classroom.relay", "--lab", self.lab, target, "--", *map(str, argv)]

    def run(
        self, target: str, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_with_popen(self.popen, target, argv, timeout=timeout, input=input)

    def popen(self, target: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(target, argv), **kw)

    def shell_env(self, target: str) -> dict[str, str]:
        """In a node shell, `cilium`, `cilium-dbg` and `hubble` ask the broker for this lab."""
        from ..backend import NodeRef

        if not isinstance(self.resolve(target), NodeRef):
            return {}
        return {
            "PATH": f"{BIN}:{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LABKIT_NODE": target,
            "LABKIT_LAB": self.lab,
            "LABKIT_PYTHON": sys.executable,
            "LABKIT_BROKER": str(protocol.socket_path()),
        }

    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]:
        return self._call("capture_points", patterns=list(patterns))

    def packet_sockets(self, points: Sequence[CapturePoint]) -> list[socket.socket]:
        """The broker opens them in the lab's namespaces and passes them back (SCM_RIGHTS)."""
        n, fds = call({"op": "sockets", "lab": self.lab, "points": [p.point for p in points]})
        if n != len(points) or len(fds) != len(points):
            for fd in fds:
                os.close(fd)
            raise LabError("the lab broker sent the wrong number of capture sockets", exit_code=1)
        socks = [socket.socket(fileno=fd) for fd in fds]
        for s in socks:
            s.setblocking(False)
        return socks

    def external_address(self) -> str:
        return self._call("external_address")

    # datapath views
    def maps(self, node: str) -> BrokerMaps:
        self._call("maps", node=node, method="endpoints")  # an unknown node fails now
        return BrokerMaps(self, node)

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
        if during is not None or duration is not None:
            self._call(
                "monitor", node=node, from_=from_, to=to, related_to=related_to, seconds=0.001
            )  # bad filters fail first
        window = look_back_window(seconds, duration, during)
        return self._call("monitor", node=node, from_=from_, to=to, related_to=related_to, seconds=window)

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
        args = {"node": node, "from_": from_, "to": to, "related_to": related_to, "json": json, "verbose": verbose}
        return stream(
            {
                "op": "stream",
                "what": "monitor_lines",
                "lab": self.lab,
                "args": args | {"seconds": seconds, "duration": duration},
            }
        )

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        window = look_back_window(seconds, duration, during)
        return self._call("flows", node=node, seconds=window)

    def trace(
        self,
        points: Sequence[str] = (),
        *,
        filter: str = "",
        duration: float | None = None,
        during: Callable[[], object] | None = None,
        max_events: int | None = None,
    ) -> pd.DataFrame:
        """The broker traces the lab (tracepoints need root); ``during`` runs here, between
        the broker's "armed" and this side's "done"."""
        if isinstance(points, str):
            points = [points]
        args = {"points": list(points), "filter": filter, "duration": duration, "max_events": max_events}
        request = {"op": "trace", "lab": self.lab, "args": args, "during": during is not None}
        path = protocol.socket_path()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(path))
            except OSError as e:
                raise LabError(f"cannot reach the lab broker at {path}: {e.strerror}", exit_code=1) from None
            protocol.send_request(s, request)
            while True:
                got = protocol.recv_reply(s)
                if got is None:
                    raise LabError("the lab broker closed the connection; try again", exit_code=ExitStatus.FAILURE)
                reply = got[0]
                if "error" in reply:
                    raise reply["error"]
                if "ok" in reply:
                    return reply["ok"]
                if reply.get("armed"):
                    try:
                        if during is not None:
                            during()
                    finally:
                        s.sendall(b"d")

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
        args = {
            "node": node,
            "last": last,
            "seconds": seconds,
            "follow": follow,
            "duration": duration,
            "output": output,
        }
        return stream({"op": "stream", "what": "observe_lines", "lab": self.lab, "args": args})
