"""What a Lab asks of the eBPF datapath: map tables, monitor events, flows.

The embedded backend delegates ``maps`` / ``monitor`` / ``flows`` (and their line-by-line
CLI forms) here with its names and plan; everything is read from pins and the agent's
event files, so any process can do it while the lab runs.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator

import pandas as pd

from ...backend import look_back_window
from ...cilium import agent as agent_text
from ...cilium import hubble
from ...cilium.monitor import go_json
from ...errors import LabError
from ...netns import NetNS
from ...plan import Plan, PodPlan
from .. import state
from ..names import LabNames
from . import bpfsys
from . import events as ev
from .maps import NodeMapReader
from .ringbuf import wait_drained
from .sync import node_identity

SO_NETNS_COOKIE = 71  # <asm-generic/socket.h>; Python's socket module does not name it


def serviceaccount(p: PodPlan) -> str:
    """The kube-system pods run as their own service account (coredns, hubble-relay, ...)."""
    return p.owner if p.namespace == "kube-system" and p.owner else "default"


BANNER = "Listening for events on {cpus} CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit"


class DatapathView:
    def __init__(self, names: LabNames, plan: Plan) -> None:
        self.names, self.plan = names, plan
        self._sock_pods: dict[str, dict[int, dict]] = {}

    def maps(self, node: str) -> NodeMapReader:
        self.plan.node(node)  # unknown node: LabError (exit 2)
        return NodeMapReader(node, self.names.bpffs / node, self.service_meta(node), lambda: self.node_agent(node))

    def node_agent(self, node: str) -> agent_text.NodeAgent:
        """What `cilium status`, `endpoint list` and `identity list` show for ``node``."""
        plan, me = self.plan, self.plan.node(node)
        host = ["reserved:host"]
        if me.role == "control-plane":
            host = sorted(
                [
                    "k8s:node-role.kubernetes.io/control-plane",
                    "k8s:node.kubernetes.io/exclude-from-external-load-balancers",
                    "reserved:host",
                ]
            )
        eps = [agent_text.Endpoint(me.host_endpoint_id, 1, host, "", "")]
        idents: dict[int, list[str]] = {}
        for p in plan.pods:
            labels = agent_text.pod_labels(p.namespace, p.labels, serviceaccount(p))
            idents[p.identity] = labels
            if p.node == node:
                eps.append(agent_text.Endpoint(p.endpoint_id, p.identity, labels, p.ip, p.key))
        pins = self.names.bpffs / node
        attach = "TCX" if any(x.name.startswith("link_") for x in pins.iterdir()) else "Legacy TC"
        rows = [r for r in self.event_rows(node) if r["type"] != "trace-sock" or r["_pod"]]
        uptime = max(1.0, time.time() - (pins.stat().st_mtime if pins.exists() else time.time()))
        maps = []
        for x in sorted(pins.iterdir()):
            if x.name.startswith("cilium_"):
                fd = bpfsys.obj_get(str(x))
                try:
                    maps.append((x.name, bpfsys.MapInfo(fd).max_entries))
                finally:
                    os.close(fd)
        st = state.load(self.names)
        options = dict(st.options) if st else {}
        socket_lb = str(options.get("socketLB.enabled", "true")).lower() != "false"
        masquerade = str(options.get("bpf.masquerade", "true")).lower() != "false"
        return agent_text.NodeAgent(
            node,
            me.ip,
            me.pod_cidr,
            me.router_ip,
            plan.pod_subnet,
            eps,
            idents,
            socket_lb=socket_lb,
            masquerade=masquerade,
            attach=attach,
            cpus=os.cpu_count() or 1,
            flows=min(len(rows), 4095),
            seen_flows=len(rows),
            uptime_s=uptime,
            bpf_maps=maps,
        )

    def service_meta(self, node: str) -> dict:
        """What the agent knows of each frontend beyond the BPF maps (its k8s objects)."""
        out = {}
        for s in self.plan.services:
            nodes = {b.ip: b.node for b in self.plan.endpoints(s, node)}
            for port in s.ports:
                out[(s.cluster_ip, int(port["port"]), port["protocol"])] = {
                    "name": s.name,
                    "namespace": s.namespace,
                    "int_policy": "Local" if s.internal_local else "Cluster",
                    "ext_policy": "Cluster",
                    "backend_nodes": nodes,
                }
        return out

    def nodes(self, node: str | None) -> list[str]:
        if node is not None:
            return [self.plan.node(node).name]
        return [n.name for n in self.plan.nodes]

    def ifnames(self, node: str) -> dict[int, str]:
        return {v["ifindex"]: k for k, v in NetNS(self.names.node(node)).links().items()}

    def check_filters(self, node: str | None, *endpoints: int | None) -> None:
        """A bad node or endpoint id is one error line, before anything is printed."""
        self.nodes(node)
        known = {p.endpoint_id for p in self.plan.pods if node is None or p.node == node}
        for ep in endpoints:
            if ep is not None and ep not in known:
                raise LabError(
                    f"unknown endpoint id {ep}"
                    + (f" on node {node}" if node else "")
                    + f"; known: {', '.join(str(i) for i in sorted(known)) or 'none'} "
                    f"(labkit bpf endpoint list)"
                )

    def event_rows(
        self,
        node: str | None = None,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        seconds: float | None = None,
        *,
        sock_unfiltered: bool = False,
    ) -> list[dict]:
        """Recorded events (the last ``seconds``, or all kept), oldest first, filtered."""
        self.check_filters(node, from_, to, related_to)
        since = 0 if seconds is None else ev.now_ns() - int(seconds * 1e9)
        rows: list[dict] = []
        for n in self.nodes(node):
            self._drained(n)
            recs = ev.read_records(self.names.state_dir / "events", n, since)
            rows += ev.decode(recs, n, self.ifnames(n) if recs else {}, self.sock_pods(n, recs))
        rows.sort(key=lambda r: r["time"])
        return ev.select(rows, from_, to, related_to, sock_unfiltered=sock_unfiltered)

    def sock_pods(self, node: str, recs: list[tuple[int, bytes]]) -> dict[int, dict]:
        """Network namespace cookie -> pod of ``node`` (who made a socket-LB event's
        socket; Cilium finds it by the pod's cgroup id): looked up only when needed."""
        if node in self._sock_pods or not any(raw[:1] == bytes([ev.TYPE_TRACE_SOCK]) for _, raw in recs):
            return self._sock_pods.get(node, {})

        def cookie() -> int:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                return int(struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0])

        out: dict[int, dict] = {}
        for p in self.plan.pods_on(node):
            try:
                out[NetNS(self.names.pod(p.namespace, p.name)).call(cookie)] = {
                    "ip": p.ip,
                    "endpoint_id": p.endpoint_id,
                    "key": p.key,
                }
            except (LabError, OSError):
                continue
        self._sock_pods[node] = out
        return out

    def _drained(self, node: str) -> None:
        """Let the agent move every event produced so far into its file before reading."""
        try:
            fd = bpfsys.obj_get(str(self.names.bpffs / node / "cilium_events"))
        except LabError:
            return
        try:
            wait_drained(fd)
        finally:
            os.close(fd)

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
        self.check_filters(node, from_, to, related_to)
        window = look_back_window(seconds, duration, during)
        return ev.events_frame(self.event_rows(node, from_, to, related_to, window))

    def follow(
        self,
        node: str | None = None,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        duration: float | None = None,
        *,
        sock_unfiltered: bool = False,
    ) -> Iterator[dict]:
        """New events as they happen (for `labkit monitor` / `observe --follow`)."""
        self.check_filters(node, from_, to, related_to)
        names = {n: self.ifnames(n) for n in self.nodes(node)}
        for n, recs in ev.follow(self.names.state_dir / "events", names, duration):
            rows = ev.decode(recs, n, names[n], self.sock_pods(n, recs))
            yield from ev.select(rows, from_, to, related_to, sock_unfiltered=sock_unfiltered)

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
        """`cilium monitor`: traces and drops; with ``verbose`` (-v) also the trace-sock
        events of socket LB, which pass every endpoint filter as in Cilium."""
        self.check_filters(node, from_, to, related_to)
        print(BANNER.format(cpus=os.cpu_count()), file=sys.stderr, flush=True)  # as cilium-dbg: on stderr
        unfiltered = verbose and not json
        rows = (
            self.event_rows(node, from_, to, related_to, seconds, sock_unfiltered=unfiltered)
            if seconds is not None
            else self.follow(node, from_, to, related_to, duration, sock_unfiltered=unfiltered)
        )
        for r in rows:
            if r["type"] == "trace-sock" and not unfiltered:
                continue
            line = ev.monitor_json(r) if json else r["line"]
            if line is not None:
                yield line

    def cluster(self) -> ev.Cluster:
        """What Hubble knows of the cluster, from the plan."""
        plan = self.plan
        pods = {}
        for p in plan.pods:
            labels = agent_text.pod_labels(p.namespace, p.labels, serviceaccount(p))
            pods[p.ip] = {
                "namespace": p.namespace,
                "name": p.name,
                "endpoint_id": p.endpoint_id,
                "identity": p.identity,
                "node": p.node,
                "owner": p.owner,
                "hubble_labels": labels,
            }
        nodes = {n.ip: n.name for n in plan.nodes}
        routers = {n.router_ip: n.name for n in plan.nodes}

        def identity_of(ip: str, node: str) -> int:
            if ip in nodes:
                return node_identity(plan, node, nodes[ip])
            if ip in routers:
                return 1 if routers[ip] == node else 6
            return 0  # not in the ipcache: the datapath's identity, else world (0.0.0.0/0)

        services = {}
        for s in plan.services:
            for port in s.ports:
                services[(s.cluster_ip, int(port["port"]))] = {"name": s.name, "namespace": s.namespace}
        node_labels: dict[str, list[str]] = {}
        for n in plan.nodes:
            lab = [
                "beta.kubernetes.io/arch=amd64",
                "beta.kubernetes.io/os=linux",
                "kubernetes.io/arch=amd64",
                f"kubernetes.io/hostname={n.name}",
                "kubernetes.io/os=linux",
            ]
            if n.role == "control-plane":
                lab += [
                    "node-role.kubernetes.io/control-plane=",
                    "node.kubernetes.io/exclude-from-external-load-balancers=",
                ]
            node_labels[n.name] = lab
        return ev.Cluster(pods, identity_of, services, node_labels, {n.name: n.host_endpoint_id for n in plan.nodes})

    def flow_rows(self, node: str | None = None, seconds: float | None = None) -> list[dict]:
        """Flows as Hubble makes them; socket events of host processes are skipped, as
        Hubble's sock parser skips events whose cgroup is no pod's."""
        rows = [r for r in self.event_rows(node, seconds=seconds) if r["type"] != "trace-sock" or r["_pod"]]
        return ev.flows(rows, self.cluster())

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        self.nodes(node)
        window = look_back_window(seconds, duration, during)
        return ev.flows_frame(self.flow_rows(node, window))

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
        self.nodes(node)

        def show(f: dict) -> str:
            return go_json(f["_json"]) if output == "json" else hubble.compact(f["_json"])

        rows = self.flow_rows(node, seconds)
        for f in rows if last is None else rows[-last:] if last else []:
            yield show(f)
        if follow:
            cluster = self.cluster()
            for r in self.follow(node, duration=duration):
                if r["type"] == "trace-sock" and not r["_pod"]:
                    continue
                for f in ev.flows([r], cluster):
                    yield show(f)
