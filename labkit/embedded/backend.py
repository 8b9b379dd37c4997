"""The embedded backend: a kind-like cluster of network namespaces on this machine."""
from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import plan as planning
from .. import spec, tables
from ..backend import CapturePoint
from ..errors import LabError
from ..plan import Plan, PodPlan
from . import datapath as dpath
from . import hosts, netns, processes, state, teardown, topology
from .names import LabNames

class EmbeddedBackend:
    """Labs built from ``cluster/`` with network namespaces, veths and (datapath) eBPF."""

    name = "embedded"

    def __init__(self, lab: str = "default", *, cluster_dir: Path = spec.CLUSTER_DIR) -> None:
        self.names = LabNames(lab)
        self.lab = lab
        self.cluster_dir = Path(cluster_dir)

    # ------------------------------------------------------------------ lifecycle
    def is_up(self) -> bool:
        st = state.load(self.names)
        if st is None or st.status != "up":
            return False
        wanted = [self.names.kind_net] + [self.names.node(n.name) for n in st.plan.nodes]
        wanted += [self.names.pod(p.namespace, p.name) for p in st.plan.pods]
        return all(netns.netns_exists(n) for n in wanted)

    def up(self, *, datapath: str | None = None, options: dict | None = None) -> str:
        """Build the nodes. Already up: nothing to do. Half built (a crash): clean, rebuild."""
        _need_root()
        datapath = datapath or dpath.DEFAULT
        dpath.check(datapath)
        cluster = spec.load_cluster(self.cluster_dir / "kind.yaml")
        dp = spec.load_values(self.cluster_dir / "cilium-values.yaml", options)  # validate before touching anything
        with state.locked(self.names):
            if self.is_up():
                return f"lab {self.lab!r} is already up"
            if teardown.leftovers(self.names):
                teardown.down(self.names)
            plan = planning.initial(cluster)
            st = state.LabState(self.lab, "building", datapath, dict(options or {}), plan)
            state.save(self.names, st)
            try:
                processes.make_cgroups(self.names, plan)
                topology.build_nodes(self.names, plan)
                hosts.write_all(self.names, plan)
                dpath.attach_nodes(self.names, plan, datapath, dp)
            except BaseException:
                teardown.down(self.names)
                raise
            st.status = "up"
            state.save(self.names, st)
        return f"lab {self.lab!r} is up: {len(plan.nodes)} nodes"

    def settings(self) -> dict:
        """How the running lab was built: {"datapath": ..., "options": {...}}."""
        st = self._state()
        return {"datapath": st.datapath, "options": dict(st.options)}

    @property
    def default_datapath(self) -> str:
        return dpath.DEFAULT

    def down(self) -> str:
        _need_root()
        with state.locked(self.names):
            existed = bool(teardown.leftovers(self.names))
            teardown.down(self.names)
        return f"lab {self.lab!r} removed" if existed else f"lab {self.lab!r} was not up"

    def apply(self, paths: Sequence[str | Path]) -> list[str]:
        """Add the objects of ``paths`` (files or folders of manifests) to the running lab."""
        manifests = spec.load_manifests(paths)          # bad input fails here, nothing changed
        _need_root()
        with state.locked(self.names):
            st = self._state()
            new_plan, notes = planning.extend(st.plan, manifests)
            old = {p.key for p in st.plan.pods}
            added = [p for p in new_plan.pods if p.key not in old]
            try:
                facts = topology.build_pods(self.names, new_plan, added)
                dpath.add_pods(self.names, new_plan, st.datapath, self._values(st), added, facts)
                st.plan = new_plan
                st.links.update(facts)
                hosts.write_all(self.names, new_plan)
                st.pids.update(processes.start_workloads(self.names, new_plan, added))
            except BaseException:
                # Leave the lab as it was before this apply: remove the half-made pods.
                half = [self.names.pod(p.namespace, p.name) for p in added]
                processes.kill_lab_processes(self.names, half)
                netns.delete_netns(half)
                raise
            state.save(self.names, st)
        return notes

    # ------------------------------------------------------------------ tables
    def plan(self) -> Plan:
        return self._state().plan

    def nodes(self) -> pd.DataFrame:
        p = self.plan()
        return tables.NODES.frame(
            {"name": n.name, "role": n.role, "internal_ip": n.ip, "pod_cidr": n.pod_cidr, "router_ip": n.router_ip}
            for n in p.nodes)

    def pods(self) -> pd.DataFrame:
        st = self._state()
        rows = []
        for p in st.plan.pods:
            f = st.links.get(p.key, {})
            rows.append({"namespace": p.namespace, "name": p.name, "node": p.node, "ip": p.ip, "image": p.image,
                         "app": p.app, "lxc": p.lxc, "lxc_ifindex": f.get("lxc_ifindex"), "pod_mac": f.get("pod_mac"),
                         "lxc_mac": f.get("lxc_mac"), "endpoint_id": p.endpoint_id, "identity": p.identity,
                         "labels": ",".join(f"{k}={v}" for k, v in sorted(p.labels.items()))})
        return tables.PODS.frame(rows)

    def services(self) -> pd.DataFrame:
        p = self.plan()
        rows = []
        for s in p.services:
            for port in s.ports:
                backends = ",".join(f"{b.ip}:{port['target_port']}" for b in p.backends(s))
                rows.append({"namespace": s.namespace, "name": s.name, "type": s.type, "cluster_ip": s.cluster_ip,
                             "port": port["port"], "target_port": port["target_port"],
                             "protocol": port["protocol"], "backends": backends})
        return tables.SERVICES.frame(rows)

    # ------------------------------------------------------------------ running things
    def resolve(self, target: str) -> tuple[str, str, PodPlan | None]:
        """A node or pod name (or namespace/pod) -> (netns, node, pod or None)."""
        p = self.plan()
        if any(n.name == target for n in p.nodes):
            return self.names.node(target), target, None
        ns, _, name = target.rpartition("/")
        hits = [x for x in p.pods if x.name == name and (not ns or x.namespace == ns)]
        if len(hits) == 1:
            pod = hits[0]
            return self.names.pod(pod.namespace, pod.name), pod.node, pod
        if len(hits) > 1:
            raise LabError(f"pod name {target!r} is in several namespaces; write namespace/{name}")
        known = [n.name for n in p.nodes] + [x.name for x in p.pods]
        raise LabError(f"unknown node or pod {target!r} in lab {self.lab!r}; known: {', '.join(known)}")

    def _command(self, target: str, argv: Sequence[str]) -> tuple[list[str], str]:
        """(the argv that runs ``argv`` in ``target``, the node it runs on), one state read."""
        if not argv:
            raise LabError("no command given; e.g. labkit exec client-pod -- curl -s http://webpod")
        ns, node, _ = self.resolve(target)
        return netns.exec_argv(ns, [str(a) for a in argv]), node

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        return self._command(target, argv)[0]

    def popen(self, target: str, argv: Sequence[str], **kw) -> subprocess.Popen:
        """Start ``argv`` in ``target``'s namespace and in its node's cgroup."""
        full, node = self._command(target, argv)
        try:
            return subprocess.Popen(full, preexec_fn=netns.join_cgroup(self.names.node_cgroup(node)), **kw)
        except FileNotFoundError:
            raise LabError("ip (iproute2) not found; run make lab", exit_code=1) from None

    def run(self, target: str, argv: Sequence[str], *, timeout: float | None = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        proc = self.popen(target, argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise LabError(f"{' '.join(argv)} in {target} did not finish within {timeout} s", exit_code=1) from None
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)

    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]:
        """``node:iface`` / ``pod:iface`` with shell-style globs -> capture points."""
        p = self.plan()
        lxc_owner = {x.lxc: x for x in p.pods}
        points: list[CapturePoint] = []
        for pattern in patterns:
            target, sep, ifglob = pattern.partition(":")
            if not sep or not ifglob:
                raise LabError(f"capture point {pattern!r}: write NODE:IFACE or POD:IFACE, e.g. kind-worker:eth0")
            ns, node, pod = self.resolve(target)
            names = sorted(n for n in netns.links(ns) if fnmatch.fnmatchcase(n, ifglob))
            if not names:
                raise LabError(f"capture point {pattern!r}: no interface matches {ifglob!r} in {target}")
            for ifname in names:
                owner = pod.name if pod else (lxc_owner[ifname].name if ifname in lxc_owner else "")
                points.append(CapturePoint(f"{target}:{ifname}", node, owner, ifname, f"/run/netns/{ns}"))
        return points

    # ------------------------------------------------------------------ eBPF datapath
    def datapath_view(self):
        """Maps, monitor and flows of the lab's eBPF datapath (labkit/datapath/view.py)."""
        from ..datapath.view import DatapathView
        st = self._state()
        return DatapathView(self.names, st.plan, st.datapath)

    def maps(self, node: str):
        return self.datapath_view().maps(node)

    def monitor(self, node: str | None = None, **kw) -> pd.DataFrame:
        return self.datapath_view().monitor(node, **kw)

    def flows(self, node: str | None = None, **kw) -> pd.DataFrame:
        return self.datapath_view().flows(node, **kw)

    # ------------------------------------------------------------------ internals
    def _values(self, st: state.LabState) -> spec.DatapathSpec:
        return spec.load_values(self.cluster_dir / "cilium-values.yaml", st.options)

    def _state(self) -> state.LabState:
        st = state.load(self.names)
        if st is None or st.status != "up":
            raise LabError(f"lab {self.lab!r} is not up; run: labkit up --lab {self.lab}")
        return st


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the embedded backend needs root (network namespaces, eBPF); run with sudo", exit_code=2)
