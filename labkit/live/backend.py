"""The live backend: a real kind cluster with Cilium 1.17.6 (the blog's setup).

Node shells are `docker exec -i <node> ...` (kind nodes are containers); pod shells are
`kubectl exec -i -n NS POD -- ...`; Cilium's own tools (`cilium-dbg`, `hubble`) run in the
node's Cilium agent pod. Everything returns the shared tables of :mod:`labkit.tables`,
and the text commands print what Cilium itself prints.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from queue import Queue
from typing import Any

import pandas as pd

from .. import targets
from ..backend import Capabilities, CapturePoint, NodeRef, PodRef, Settings, TargetRef
from ..doctor import Check
from ..errors import ExitStatus, LabError
from ..plan import KIND_GATEWAY
from ..tables import EVENTS, FLOWS, LABS
from . import bringup, tools
from .kube import Kube
from .parse_bpf import parse_ct, parse_endpoints, parse_ipcache, parse_lb, parse_metrics, parse_nat
from .parse_k8s import parse_ip_link, parse_nodes, parse_pods, parse_services
from .parse_monitor import parse_flows, parse_monitor

CILIUM_NS = "kube-system"
CILIUM_SELECTOR = "k8s-app=cilium"
CILIUM_CONTAINER = "cilium-agent"
_FLUSHED = re.compile(r"Flushed (\d+) entries from (\S+)")

MAP_COMMANDS: dict[str, list[str]] = {
    "endpoints": ["cilium-dbg", "bpf", "endpoint", "list"],
    "ct": ["cilium-dbg", "bpf", "ct", "list", "global"],
    "nat": ["cilium-dbg", "bpf", "nat", "list"],
    "lb": ["cilium-dbg", "bpf", "lb", "list"],
    "ipcache": ["cilium-dbg", "bpf", "ipcache", "list"],
    "metrics": ["cilium-dbg", "bpf", "metrics", "list"],
    "services": ["cilium-dbg", "service", "list"],
    "endpoint-list": ["cilium-dbg", "endpoint", "list"],
    "identities": ["cilium-dbg", "identity", "list"],
    "status": ["cilium-dbg", "status"],
    "status-verbose": ["cilium-dbg", "status", "--verbose"],
    "version": ["cilium-dbg", "version"],
}
FLUSH_COMMANDS: dict[str, list[str]] = {
    "ct": ["cilium-dbg", "bpf", "ct", "flush", "global"],
    "nat": ["cilium-dbg", "bpf", "nat", "flush"],
}


class LiveMaps:
    """The eBPF maps of one node, read with `cilium-dbg` in its Cilium agent pod
    (a :class:`labkit.backend.MapsReader`)."""

    def __init__(self, backend: KindBackend, node: str) -> None:
        self.backend = backend
        self.node = node

    def text(self, what: str, *, output: str = "text", time_diff: bool = False) -> str:
        """What `cilium-dbg` prints for map ``what`` (one of MAP_COMMANDS)."""
        if what not in MAP_COMMANDS:
            raise LabError(f"unknown map {what!r}: use one of {', '.join(MAP_COMMANDS)}")
        argv = (
            MAP_COMMANDS[what]
            + (["-o", "json"] if output == "json" else [])
            + (["-d"] if time_diff and what == "ct" else [])
        )
        return self.backend.cilium(self.node, argv).stdout

    def endpoints(self) -> pd.DataFrame:
        return parse_endpoints(self.text("endpoints"), self.node)

    def ct(self) -> pd.DataFrame:
        return parse_ct(self.text("ct"), self.node)

    def nat(self) -> pd.DataFrame:
        return parse_nat(self.text("nat"), self.node)

    def lb(self) -> pd.DataFrame:
        return parse_lb(self.text("lb"), self.node)

    def ipcache(self) -> pd.DataFrame:
        return parse_ipcache(self.text("ipcache"), self.node)

    def metrics(self) -> pd.DataFrame:
        return parse_metrics(self.text("metrics"), self.node)

    def flush(self, what: str) -> dict[str, int]:
        """`cilium-dbg bpf ct|nat flush`: removed per map, as Cilium reports it."""
        if what not in FLUSH_COMMANDS:
            raise LabError(f"cannot flush {what!r}: choose ct or nat (the other maps are managed by the Cilium agent)")
        out = self.backend.cilium(self.node, FLUSH_COMMANDS[what]).stdout
        return {path: int(n) for n, path in _FLUSHED.findall(out)}


class KindBackend:
    """The backend contract (:class:`labkit.backend.Backend`) on a kind cluster named ``lab``."""

    name = "kind"
    capabilities = Capabilities(
        datapaths=("cilium",),
        options=False,
        companions=False,
        look_back=False,
        up_applies_manifests=True,
        trace=False,
        packet_sockets=False,
    )

    def __init__(
        self,
        lab: str = "kind",
        repo: Path | str = bringup.REPO,
        *,
        use_k8s_client: bool | None = None,
        offline: bool = False,
        timeout: int = 600,
        log: Callable[[str], None] = print,
        monitor_startup: float = 1.5,
    ) -> None:
        self.lab = lab
        self.repo = Path(repo)
        self.context = bringup.context(lab)
        self.offline = offline
        self.timeout = timeout
        self.log = log
        self.monitor_startup = monitor_startup  # seconds a monitor needs to attach before `during` runs
        self.kube = Kube(self.context, use_k8s_client)
        self._cilium_pods: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, settings: Settings | None = None) -> str:
        """Create the kind cluster, install Cilium, apply cluster/manifests (skips done steps)."""
        if settings is not None and (settings.datapath not in (None, "cilium") or settings.options):
            raise LabError(
                "--datapath and --set are for the embedded backend; the kind backend installs "
                "Cilium with cluster/cilium-values.yaml"
            )
        self.kube.forget()
        return bringup.up(self.lab, self.repo, offline=self.offline, timeout=self.timeout, log=self.log)

    def down(self) -> str:
        self.kube.forget()
        self._cilium_pods.clear()
        return bringup.down(self.lab, log=self.log)

    def is_up(self) -> bool:
        return tools.which("kind") is not None and bringup.cluster_exists(self.lab)

    def apply(self, paths: Sequence[str]) -> list[str]:
        """`kubectl apply -f` each path (relative paths: from the cwd, else from the repo)."""
        self.kube.forget()
        return bringup.apply(self.lab, [Path(p) if Path(p).exists() else self.repo / p for p in paths], log=self.log)

    def settings(self) -> Settings:
        return Settings("cilium", {})

    def existing_labs(self) -> list[str]:
        if tools.which("kind") is None:
            return []
        return tools.run(["kind", "get", "clusters"], check=False, timeout=30).stdout.split()

    def labs(self) -> pd.DataFrame:
        """kind clusters; how they were built is Cilium's (the values in cluster/), no companions."""
        return LABS.frame(
            {
                "name": n,
                "backend": self.name,
                "status": "up",
                "datapath": "cilium",
                "companion_of": "",
                "companions": "",
            }
            for n in self.existing_labs()
        )

    def companions(self) -> list[str]:
        return []

    def add_companion(self, lab: str) -> None:
        raise LabError(
            "companion labs (a second cluster with other settings, side by side) need the embedded backend; "
            "on kind, build another cluster by hand (cluster/up-kind.sh)"
        )

    def doctor(self) -> list[Check]:
        return tools.doctor(self.lab)

    def problems(self) -> list[str]:
        """Pods (Cilium's agents included) that are not running or not ready."""
        if not self.is_up():
            return []
        out = []
        for p in self.kube.get("pods").get("items", []):
            meta, status = p.get("metadata", {}), p.get("status", {})
            phase = status.get("phase", "Unknown")
            ready = all(c.get("ready") for c in status.get("containerStatuses") or [])
            if phase == "Succeeded" or (phase == "Running" and ready):
                continue
            ns, name = meta.get("namespace", "default"), meta.get("name", "?")
            out.append(
                f"pod {ns}/{name} is {phase if phase != 'Running' else 'not ready'}; see "
                f"kubectl --context {self.context} -n {ns} describe pod {name}"
            )
        return out

    # -- tables ---------------------------------------------------------------------------
    def nodes(self) -> pd.DataFrame:
        try:
            cn = self.kube.get("ciliumnodes")
        except LabError:
            cn = None  # Cilium not installed yet: no router IPs
        return parse_nodes(self.kube.get("nodes"), cn)

    def node_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.kube.get("nodes").get("items", [])]

    def pods(self) -> pd.DataFrame:
        """Pods (all but system namespaces), with their endpoint and lxc."""
        doc = self.kube.get("pods")
        base = parse_pods(doc)
        if base.empty:
            return base
        eps, links = [], {}
        for node in sorted(set(base["node"].dropna()) - {""}):
            try:
                eps.append(self.maps(node).endpoints())
                links[node] = self.links(node)
            except LabError:
                continue  # node without a ready Cilium agent: columns stay missing
        endpoints = pd.concat(eps, ignore_index=True) if eps else None
        return parse_pods(doc, endpoints, links)

    def services(self) -> pd.DataFrame:
        return parse_services(self.kube.get("services"), self.kube.get("endpointslices"))

    # -- running things -------------------------------------------------------------------
    def resolve(self, target: str) -> TargetRef:
        pods = (
            PodRef(
                p["metadata"].get("namespace", "default"), p["metadata"]["name"], p.get("spec", {}).get("nodeName", "")
            )
            for p in self.kube.get("pods").get("items", [])
        )
        return targets.resolve(target, self.node_names(), pods, self.lab)

    def _prefix(self, ref: TargetRef) -> tuple[str, ...]:
        if isinstance(ref, NodeRef):
            return ("docker", "exec", "-i", ref.name)
        return ("kubectl", "--context", self.context, "exec", "-i", "-n", ref.namespace, ref.name, "--")

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``target`` (a node or pod name)."""
        if isinstance(argv, str):
            raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
        if not argv:
            raise LabError("no command given; e.g. labkit exec client-pod -- curl -s http://webpod")
        return list(self._prefix(self.resolve(target))) + [str(a) for a in argv]

    def run(
        self, target: str, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return tools.run(self.argv(target, argv), timeout=timeout, input=input, check=False)

    def popen(self, target: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in ``target`` with the caller's stdio (labkit exec / shell)."""
        full = self.argv(target, argv)
        tools.require(full[0])
        return subprocess.Popen(full, **kw)

    def shell_env(self, target: str) -> dict[str, str]:
        """Nothing to add: kind nodes are containers; Cilium's tools live in the agent pod."""
        self.resolve(target)
        return {}

    def external_address(self) -> str:
        """Docker's bridge of the kind network: outside every pod CIDR."""
        return KIND_GATEWAY

    def cilium_pod(self, node: str) -> str:
        """Name of the Cilium agent pod on ``node``."""
        if node not in self._cilium_pods:
            doc = self.kube.get("pods", CILIUM_NS, label_selector=CILIUM_SELECTOR)
            for p in doc.get("items", []):
                self._cilium_pods[p.get("spec", {}).get("nodeName", "")] = p["metadata"]["name"]
            if node not in self._cilium_pods:
                raise LabError(
                    f"no Cilium agent pod on node {node!r}: is Cilium installed? Run `labkit doctor --backend kind`",
                    exit_code=ExitStatus.FAILURE,
                )
        return self._cilium_pods[node]

    def cilium_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        return [
            "kubectl",
            "--context",
            self.context,
            "exec",
            "-n",
            CILIUM_NS,
            self.cilium_pod(node),
            "-c",
            CILIUM_CONTAINER,
            "--",
            *map(str, argv),
        ]

    def cilium(self, node: str, argv: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a Cilium tool (cilium-dbg, hubble) in the agent pod of ``node``."""
        return tools.run(self.cilium_argv(node, argv), timeout=timeout)

    def links(self, node: str) -> list[dict]:
        """`ip -o link` of a node: [{ifindex, name, mac}]."""
        return parse_ip_link(tools.run(["docker", "exec", "-i", node, "ip", "-o", "link"], timeout=30).stdout)

    # -- capture points -------------------------------------------------------------------
    def packet_sockets(self, points: Sequence[CapturePoint]) -> list[socket.socket]:
        raise LabError(
            "a kind cluster's capture points are reached with tcpdump in the node or pod, not sockets; "
            "use lab.capture(...)",
            exit_code=ExitStatus.FAILURE,
        )

    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]:
        lxc_pods: dict[tuple[str, str], str] | None = None

        def interfaces(ref: TargetRef, glob: str) -> list[str]:
            if isinstance(ref, NodeRef):
                return [link["name"] for link in self.links(ref.name)]
            if targets.is_glob(glob):
                r = tools.run([*self._prefix(ref), "ip", "-o", "link"], timeout=30)
                return [link["name"] for link in parse_ip_link(r.stdout)]
            return [glob]  # no listing needed (and images like whoami have no `ip`)

        def point(ref: TargetRef, target: str, iface: str) -> CapturePoint:
            nonlocal lxc_pods
            pod = ref.name if isinstance(ref, PodRef) else ""
            if isinstance(ref, NodeRef) and iface.startswith("lxc"):
                if lxc_pods is None:
                    rows = self.pods().to_dict("records")
                    lxc_pods = {(r["node"], r["lxc"]): r["name"] for r in rows if isinstance(r["lxc"], str)}
                pod = lxc_pods.get((ref.name, iface), "")
            return CapturePoint(
                point=f"{ref.name}:{iface}", node=ref.node, pod=pod, interface=iface, exec_prefix=self._prefix(ref)
            )

        return targets.match_points(patterns, self.resolve, interfaces, point)

    # -- maps, monitor, flows --------------------------------------------------------------
    def _node(self, node: str) -> str:
        names = self.node_names()
        if node not in names:
            raise LabError(f"unknown node {node!r} in lab {self.lab!r}; nodes are {', '.join(names)}")
        return node

    def maps(self, node: str) -> LiveMaps:
        return LiveMaps(self, self._node(node))

    def monitor_argv(
        self,
        node: str,
        *,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        duration: float = 5.0,
        json: bool = False,
        verbose: bool = False,
    ) -> list[str]:
        argv = ["timeout", f"{duration:g}", "cilium-dbg", "monitor"]
        for flag, v in (("--from", from_), ("--to", to), ("--related-to", related_to)):
            if v is not None:
                argv += [flag, str(int(v))]
        if json:
            argv.append("-j")
        elif verbose:
            argv.append("-v")
        return self.cilium_argv(node, argv)

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
        """`cilium-dbg monitor` on ``node`` (every node if None) for ``duration`` seconds
        (default 5) -> EVENTS. Cilium's monitor cannot look back: ``seconds`` is refused
        with the fix. ``during`` runs once the monitors have had time to attach; the
        monitors stop themselves (`timeout` in the agent pod), so nothing is left behind."""
        if seconds is not None:
            raise LabError(
                "cilium monitor cannot look back on a live cluster; pass during=<a function that makes "
                "the traffic> or duration=<seconds to listen>"
            )
        nodes = [self._node(node)] if node else self.node_names()
        listen = float(duration if duration is not None else 5.0)
        tools.require("kubectl")
        procs = {
            n: subprocess.Popen(
                self.monitor_argv(n, from_=from_, to=to, related_to=related_to, duration=listen),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in nodes
        }
        outs: dict[str, tuple[str, str]] = {}
        try:
            if during is not None:
                _time.sleep(self.monitor_startup)
                during()
            for n, proc in procs.items():
                outs[n] = proc.communicate(timeout=listen + 60)
        except BaseException:
            for proc in procs.values():
                proc.kill()
                proc.communicate()
            raise
        frames = []
        for n, proc in procs.items():
            out, err = outs[n]
            if proc.returncode not in (0, 124):  # 124: stopped by `timeout`, the normal end
                last = (err or out).strip().splitlines()[-1:] or ["?"]
                raise LabError(f"cilium-dbg monitor on {n} failed: {last[0]}", exit_code=ExitStatus.FAILURE)
            try:
                links = self.links(n)
            except LabError:
                links = []
            frames.append(
                parse_monitor(
                    out,
                    n,
                    ifindexes={link["name"]: link["ifindex"] for link in links},
                    ifnames={link["ifindex"]: link["name"] for link in links},
                )
            )
        frames = [f for f in frames if not f.empty]
        if not frames:
            return EVENTS.frame([])
        return EVENTS.frame(pd.concat(frames, ignore_index=True).sort_values("time", kind="stable", ignore_index=True))

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
        """`cilium-dbg monitor` in the agent pods, streamed as it prints (its banner goes to
        stderr, as Cilium prints it); ``verbose``: -v (adds the trace-sock lines)."""
        if seconds is not None:
            raise LabError(
                "cilium monitor cannot look back on a live cluster; leave out --last (it follows new events)"
            )
        nodes = [self._node(node)] if node else self.node_names()
        tools.require("kubectl")
        listen = duration if duration is not None else 24 * 3600
        return _stream(
            [
                self.monitor_argv(
                    n, from_=from_, to=to, related_to=related_to, duration=listen, json=json, verbose=verbose
                )
                for n in nodes
            ]
        )

    def observe_argv(
        self,
        node: str,
        *,
        last: int | None = 20,
        seconds: float | None = None,
        follow: bool = False,
        output: str = "compact",
    ) -> list[str]:
        argv = ["hubble", "observe", "-o", "json" if output == "json" else "compact"]
        argv += ["--all"] if last is None else ["--last", str(int(last))]
        argv += ["--since", f"{int(seconds)}s"] if seconds else []
        argv += ["--follow"] if follow else []
        return self.cilium_argv(node, argv)

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        """Hubble flows (`hubble observe -o json` in the agent pods) -> FLOWS, oldest first.

        ``node`` None reads every node (each agent keeps its own node's flows); ``during`` /
        ``duration`` become a look-back window over what Hubble kept."""
        if during is not None or duration is not None:
            t0 = _time.time()
            if during is not None:
                during()
            _time.sleep(max(1.0, (duration or 0) - (_time.time() - t0)))
            seconds = _time.time() - t0 + 1
        nodes = [self._node(node)] if node else self.node_names()
        frames = []
        for n in nodes:
            argv = ["hubble", "observe", "-o", "json", "--last", "1000"]
            argv += ["--since", f"{max(1, int(seconds + 0.999))}s"] if seconds is not None else []
            frames.append(parse_flows(self.cilium(n, argv, timeout=120).stdout))
        frames = [f for f in frames if not f.empty]
        if not frames:
            return FLOWS.frame([])
        df = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable", ignore_index=True)
        return FLOWS.frame(df)

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
        """`hubble observe` in the agent pods, as it prints."""
        nodes = [self._node(node)] if node else self.node_names()
        argvs = [self.observe_argv(n, last=last, seconds=seconds, follow=follow, output=output) for n in nodes]
        if follow and duration is not None:
            argvs = [a[: a.index("--") + 1] + ["timeout", f"{duration:g}"] + a[a.index("--") + 1 :] for a in argvs]
        tools.require("kubectl")
        return _stream(argvs)

    def trace(
        self,
        points: Sequence[str] = (),
        *,
        filter: str = "",
        duration: float | None = None,
        during: Callable[[], object] | None = None,
        max_events: int | None = None,
    ) -> pd.DataFrame:
        """A kind cluster's nodes share the host's kernel with everything else on it, and
        labkit's tracer hooks only the embedded lab's namespaces: pwru is the tool there."""
        raise LabError(
            "labkit trace follows packets through the embedded lab's kernel only; on a kind cluster run pwru "
            "on the host: docker run --privileged --rm -t --pid=host -v /sys/kernel/debug/:/sys/kernel/debug/ "
            f"cilium/pwru pwru --filter-track-skb --output-tuple '{filter or 'tcp and port 80'}'"
        )


def _stream(argvs: list[list[str]]) -> Iterator[str]:
    """Lines of several commands' stdout as they come (their stderr passes through); the
    commands end when the iterator is closed."""
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, text=True) for a in argvs]
    lines: Queue[str | None] = Queue()

    def pump(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threads = [threading.Thread(target=pump, args=(p,), daemon=True) for p in procs]
    for t in threads:
        t.start()
    try:
        ended = 0
        while ended < len(procs):
            line = lines.get()
            if line is None:
                ended += 1
            else:
                yield line
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
