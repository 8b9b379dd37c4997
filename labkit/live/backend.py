"""The live backend: a real kind cluster with Cilium 1.17.6 (the blog's setup).

Node shells are `docker exec -i <node> ...` (kind nodes are containers); pod shells are
`kubectl exec -i -n NS POD -- ...`; Cilium's own tools (`cilium-dbg`, `hubble`) run in the
node's Cilium agent pod. Everything returns the shared tables of :mod:`labkit.tables`.
"""
from __future__ import annotations

import fnmatch
import subprocess
import time as _time
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from ..backend import CapturePoint
from ..errors import LabError
from ..tables import FLOWS
from . import bringup, tools
from .kube import Kube
from .parse_bpf import (parse_ct, parse_endpoints, parse_ipcache, parse_lb, parse_metrics, parse_nat,
                        parse_service_list)
from .parse_k8s import parse_ip_link, parse_nodes, parse_pods, parse_services
from .parse_monitor import parse_flows, parse_monitor

CILIUM_NS = "kube-system"
CILIUM_SELECTOR = "k8s-app=cilium"
CILIUM_CONTAINER = "cilium-agent"

MAP_COMMANDS: dict[str, list[str]] = {
    "endpoints": ["cilium-dbg", "bpf", "endpoint", "list"],
    "ct": ["cilium-dbg", "bpf", "ct", "list", "global"],
    "nat": ["cilium-dbg", "bpf", "nat", "list"],
    "lb": ["cilium-dbg", "bpf", "lb", "list"],
    "ipcache": ["cilium-dbg", "bpf", "ipcache", "list"],
    "metrics": ["cilium-dbg", "bpf", "metrics", "list"],
    "services": ["cilium-dbg", "service", "list"],
}
FLUSH_COMMANDS: dict[str, list[str]] = {
    "ct": ["cilium-dbg", "bpf", "ct", "flush", "global"],
    "nat": ["cilium-dbg", "bpf", "nat", "flush"],
}


class LiveMaps:
    """The eBPF maps of one node, read with `cilium-dbg` in its Cilium agent pod."""

    def __init__(self, backend: "KindBackend", node: str) -> None:
        self.backend = backend
        self.node = node

    def raw(self, name: str, *, json: bool = False) -> str:
        """What `cilium-dbg` prints for map ``name`` (one of MAP_COMMANDS), as text."""
        if name not in MAP_COMMANDS:
            raise LabError(f"unknown map {name!r}: use one of {', '.join(MAP_COMMANDS)}", exit_code=2)
        argv = MAP_COMMANDS[name] + (["-o", "json"] if json else [])
        return self.backend.cilium(self.node, argv).stdout

    def endpoints(self) -> pd.DataFrame:
        return parse_endpoints(self.raw("endpoints"), self.node)

    def ct(self) -> pd.DataFrame:
        return parse_ct(self.raw("ct"), self.node)

    def nat(self) -> pd.DataFrame:
        return parse_nat(self.raw("nat"), self.node)

    def lb(self) -> pd.DataFrame:
        return parse_lb(self.raw("lb"), self.node)

    def services(self) -> pd.DataFrame:
        """`cilium-dbg service list` as LB rows (service id = rev NAT id, backend index = slot)."""
        return parse_service_list(self.raw("services"), self.node)

    def ipcache(self) -> pd.DataFrame:
        return parse_ipcache(self.raw("ipcache"), self.node)

    def metrics(self) -> pd.DataFrame:
        return parse_metrics(self.raw("metrics"), self.node)

    def flush(self, name: str) -> None:
        if name not in FLUSH_COMMANDS:
            raise LabError(f"the live backend can flush {' and '.join(FLUSH_COMMANDS)} only; "
                           f"{name!r} is managed by the Cilium agent", exit_code=2)
        self.backend.cilium(self.node, FLUSH_COMMANDS[name])


class KindBackend:
    """Backend protocol (:class:`labkit.backend.Backend`) on a kind cluster named ``lab``."""

    name = "kind"

    def __init__(self, lab: str = "kind", repo: Path | str = bringup.REPO, *,
                 use_k8s_client: bool | None = None, offline: bool = False) -> None:
        self.lab = lab
        self.repo = Path(repo)
        self.context = bringup.context(lab)
        self.offline = offline
        self.kube = Kube(self.context, use_k8s_client)
        self._cilium_pods: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, *, offline: bool | None = None, timeout: int = 600,
           log: Callable[[str], None] = print) -> str:
        """Create the kind cluster, install Cilium, apply cluster/manifests (skips done steps)."""
        off = self.offline if offline is None else offline
        return bringup.up(self.lab, self.repo, offline=off, timeout=timeout, log=log)

    def down(self, *, log: Callable[[str], None] = print) -> str:
        return bringup.down(self.lab, log=log)

    def is_up(self) -> bool:
        return tools.which("kind") is not None and bringup.cluster_exists(self.lab)

    def apply(self, paths: Sequence[str], *, log: Callable[[str], None] = print) -> list[str]:
        """`kubectl apply -f` each path (relative paths: from the cwd, else from the repo)."""
        return bringup.apply(self.lab, [Path(p) if Path(p).exists() else self.repo / p for p in paths],
                             log=log)

    # -- tables ---------------------------------------------------------------------------
    def nodes(self) -> pd.DataFrame:
        try:
            cn = self.kube.get("ciliumnodes")
        except LabError:
            cn = None                       # Cilium not installed yet: no router IPs
        return parse_nodes(self.kube.get("nodes"), cn)

    def node_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.kube.get("nodes").get("items", [])]

    def pods(self, namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        """Pods (all but system namespaces by default), with their endpoint and lxc."""
        doc = self.kube.get("pods")
        base = parse_pods(doc, namespaces=namespaces)
        if base.empty:
            return base
        eps, links = [], {}
        for node in sorted(set(base["node"].dropna()) - {""}):
            try:
                eps.append(self.maps(node).endpoints())
                links[node] = self.links(node)
            except LabError:
                continue                    # node without a ready Cilium agent: columns stay missing
        endpoints = pd.concat(eps, ignore_index=True) if eps else None
        return parse_pods(doc, endpoints, links, namespaces=namespaces)

    def services(self, namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        return parse_services(self.kube.get("services"), self.kube.get("endpointslices"), namespaces=namespaces)

    # -- running things -------------------------------------------------------------------
    def _resolve(self, target: str) -> tuple[str, ...]:
        """('node', name) or ('pod', namespace, name, node)."""
        if target in self.node_names():
            return ("node", target)
        ns, _, name = target.rpartition("/")
        found = [p for p in self.kube.get("pods").get("items", [])
                 if p["metadata"]["name"] == name and (not ns or p["metadata"].get("namespace") == ns)]
        if not found:
            raise LabError(f"no node or pod named {target!r} in lab {self.lab}: "
                           "see `labkit status --backend kind`", exit_code=2)
        if len(found) > 1:
            spaces = ", ".join(sorted(p["metadata"]["namespace"] for p in found))
            raise LabError(f"pod name {name!r} is in several namespaces ({spaces}): write NAMESPACE/{name}",
                           exit_code=2)
        p = found[0]
        return ("pod", p["metadata"]["namespace"], name, p.get("spec", {}).get("nodeName", ""))

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside ``target`` (a node or pod name)."""
        if isinstance(argv, str):
            raise LabError("commands are argv lists, not shell strings", exit_code=2)
        return list(self._prefix(self._resolve(target))) + [str(a) for a in argv]

    def _prefix(self, where: tuple[str, ...]) -> tuple[str, ...]:
        if where[0] == "node":
            return ("docker", "exec", "-i", where[1])
        return ("kubectl", "--context", self.context, "exec", "-i", "-n", where[1], where[2], "--")

    def run(self, target: str, argv: Sequence[str], *, timeout: float | None = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        return tools.run(self.argv(target, argv), timeout=timeout, input=input, check=False)

    def popen(self, target: str, argv: Sequence[str], **kw) -> subprocess.Popen:
        """Start ``argv`` in ``target`` with the caller's stdio (labkit exec / shell)."""
        full = self.argv(target, argv)
        tools.require(full[0])
        return subprocess.Popen(full, **kw)

    def cilium_pod(self, node: str) -> str:
        """Name of the Cilium agent pod on ``node``."""
        if node not in self._cilium_pods:
            doc = self.kube.get("pods", CILIUM_NS, label_selector=CILIUM_SELECTOR)
            for p in doc.get("items", []):
                self._cilium_pods[p.get("spec", {}).get("nodeName", "")] = p["metadata"]["name"]
            if node not in self._cilium_pods:
                raise LabError(f"no Cilium agent pod on node {node!r}: is Cilium installed? "
                               "Run `labkit doctor --backend kind`", exit_code=1)
        return self._cilium_pods[node]

    def cilium_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        return ["kubectl", "--context", self.context, "exec", "-n", CILIUM_NS, self.cilium_pod(node),
                "-c", CILIUM_CONTAINER, "--", *map(str, argv)]

    def cilium(self, node: str, argv: Sequence[str], *, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Cilium tool (cilium-dbg, hubble) in the agent pod of ``node``."""
        return tools.run(self.cilium_argv(node, argv), timeout=timeout)

    def links(self, node: str) -> list[dict]:
        """`ip -o link` of a node: [{ifindex, name, mac}]."""
        return parse_ip_link(tools.run(["docker", "exec", "-i", node, "ip", "-o", "link"], timeout=30).stdout)

    # -- capture points -------------------------------------------------------------------
    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]:
        out: list[CapturePoint] = []
        lxc_pods: dict[tuple[str, str], str] | None = None
        for pattern in patterns:
            target, sep, glob = pattern.partition(":")
            if not sep or not target or not glob:
                raise LabError(f"capture point {pattern!r} is not NODE:IFACE or POD:IFACE "
                               "(e.g. kind-worker:lxc*, client-pod:eth0)", exit_code=2)
            where = self._resolve(target)
            prefix = self._prefix(where)
            if where[0] == "node":
                node = where[1]
                names = [l["name"] for l in self.links(node)]
            else:
                node = where[3]
                if any(c in glob for c in "*?["):
                    r = tools.run([*prefix, "ip", "-o", "link"], timeout=30)
                    names = [l["name"] for l in parse_ip_link(r.stdout)]
                else:
                    names = [glob]          # no listing needed (and images like whoami have no `ip`)
            matched = [n for n in names if fnmatch.fnmatchcase(n, glob)]
            if not matched:
                raise LabError(f"no interface matches {pattern!r} (interfaces: {', '.join(names) or 'none'})",
                               exit_code=2)
            for iface in matched:
                if where[0] == "node":
                    pod = ""
                    if iface.startswith("lxc"):
                        if lxc_pods is None:
                            pods = self.pods(namespaces=None)
                            lxc_pods = {(r["node"], r["lxc"]): r["name"] for r in pods.to_dict("records")
                                        if isinstance(r["lxc"], str)}
                        pod = lxc_pods.get((node, iface), "")
                    out.append(CapturePoint(point=f"{node}:{iface}", node=node, pod=pod, interface=iface,
                                            exec_prefix=prefix))
                else:
                    out.append(CapturePoint(point=f"{where[2]}:{iface}", node=node, pod=where[2],
                                            interface=iface, exec_prefix=prefix))
        return out

    # -- maps, monitor, flows --------------------------------------------------------------
    def maps(self, node: str) -> LiveMaps:
        if node not in self.node_names():
            raise LabError(f"no node {node!r} in lab {self.lab}: nodes are {', '.join(self.node_names())}",
                           exit_code=2)
        return LiveMaps(self, node)

    def monitor_argv(self, node: str, *, from_: int | None = None, to: int | None = None,
                     related_to: int | None = None, types: Sequence[str] = (), duration: float = 5.0,
                     json: bool = False) -> list[str]:
        argv = ["timeout", f"{duration:g}", "cilium-dbg", "monitor"]
        for t in types:
            argv += ["-t", t]
        for flag, v in (("--from", from_), ("--to", to), ("--related-to", related_to)):
            if v is not None:
                argv += [flag, str(int(v))]
        if json:
            argv.append("-j")
        return self.cilium_argv(node, argv)

    def monitor(self, node: str, *, from_: int | None = None, to: int | None = None,
                related_to: int | None = None, types: Sequence[str] = (), duration: float = 5.0,
                during: Callable[[], object] | None = None, startup: float = 1.5,
                seconds: float | None = None) -> pd.DataFrame:
        """`cilium-dbg monitor` on ``node`` for ``duration`` seconds -> EVENTS.

        ``during`` (e.g. a curl from a pod) runs once the monitor has had ``startup``
        seconds to attach. The monitor stops itself (`timeout` in the agent pod), so no
        process is left behind. Cilium's monitor cannot look back: ``seconds`` (the
        embedded backend's look-back window) is taken as how long to listen.
        """
        if seconds is not None:
            duration = min(float(seconds), 30.0)
        if node not in self.node_names():
            raise LabError(f"no node {node!r} in lab {self.lab}", exit_code=2)
        argv = self.monitor_argv(node, from_=from_, to=to, related_to=related_to, types=types, duration=duration)
        tools.require("kubectl")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if during is not None:
                _time.sleep(startup)
                during()
            out, err = proc.communicate(timeout=duration + 60)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode not in (0, 124):          # 124: stopped by `timeout`, the normal end
            raise LabError(f"cilium-dbg monitor on {node} failed: {(err or out).strip().splitlines()[-1:] or ['?']}",
                           exit_code=1)
        try:
            links = self.links(node)
        except LabError:
            links = []
        return parse_monitor(out, node, ifindexes={l["name"]: l["ifindex"] for l in links},
                             ifnames={l["ifindex"]: l["name"] for l in links})

    def flows(self, node: str | None = None, *, last: int = 1000, args: Sequence[str] = (),
              seconds: float | None = None) -> pd.DataFrame:
        """Hubble flows (`hubble observe -o json` in the agent pods) -> FLOWS, oldest first.

        ``node`` None reads every node (each agent keeps its own node's flows); ``args`` are
        extra `hubble observe` filters as an argv list, e.g. ``["--pod", "native/client-pod"]``.
        """
        nodes = [node] if node else self.node_names()
        if seconds is not None:
            args = [*args, "--since", f"{int(seconds)}s"]
        frames = []
        for n in nodes:
            r = self.cilium(n, ["hubble", "observe", "-o", "json", "--last", str(int(last)), *map(str, args)],
                            timeout=120)
            frames.append(parse_flows(r.stdout))
        frames = [f for f in frames if not f.empty]
        if not frames:
            return FLOWS.frame([])
        df = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable", ignore_index=True)
        return FLOWS.frame(df)
