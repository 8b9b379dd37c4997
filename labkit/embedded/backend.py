"""The embedded backend: a kind-like cluster of network namespaces on this machine."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import netns as nets
from .. import plan as planning
from .. import spec, tables, targets
from ..backend import (
    Capabilities,
    CapturePoint,
    NodeRef,
    PodRef,
    Settings,
    TargetRef,
    check_window,
    run_with_popen,
)
from ..capture.sockets import open_packet_socket
from ..doctor import Check
from ..errors import ExitStatus, LabError, notice
from ..netns import NetNS
from ..plan import EXTERNAL_IP, Plan
from . import controlplane, doctor, exthost, hosts, origin, processes, state, teardown, topology, undo
from . import datapath as dpath
from .ebpf import skbfilter, tracer
from .ebpf.maps import NodeMapReader
from .ebpf.view import DatapathView
from .names import ETC_NETNS, LabNames, existing_labs


class EmbeddedBackend:
    """Labs built from ``cluster/`` with network namespaces, veths and (datapath) eBPF."""

    name = "embedded"
    capabilities = Capabilities(
        datapaths=(dpath.DEFAULT, *(d for d in dpath.DATAPATHS if d != dpath.DEFAULT)),
        options=True,
        companions=True,
        look_back=True,
        up_applies_manifests=False,
        trace=True,
    )

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
        return all(NetNS(n).exists() for n in wanted)

    def up(self, settings: Settings | None = None) -> str:
        """Build the nodes. Already up: start again any daemon that died. Half built (a
        crash): clean, rebuild."""
        settings = settings or Settings()
        if not isinstance(settings, Settings):
            raise LabError("settings must be a labkit.backend.Settings(datapath, options)")
        _need_root()
        datapath = dpath.get(settings.datapath or dpath.DEFAULT)
        options = spec.check_options(settings.options)
        cluster = spec.load_cluster(self.cluster_dir / "kind.yaml")
        values = self._load_values(options)  # validate before touching anything
        with self._locked("up") as lock:
            if self.is_up():
                restarted = [processes.restart(self.names, d).what for d in processes.dead_daemons(self.names)]
                if restarted:
                    return f"lab {self.lab!r} was up; started again what had stopped: {', '.join(restarted)}"
                return f"lab {self.lab!r} is already up"
            if teardown.leftovers(self.names):
                teardown.down(self.names)
            plan = planning.with_control_plane(
                planning.initial(cluster), hubble=values.hubble, relay=values.hubble_relay, ui=values.hubble_ui
            )
            st = state.LabState(self.lab, "building", datapath.name, options, plan)
            state.save(self.names, st)
            try:
                processes.make_cgroups(self.names, plan)
                topology.build_nodes(self.names, plan)
                hosts.write_all(self.names, plan, datapath.service_lb)
                exthost.create(self.names)
                datapath.attach_nodes(self.names, plan, values)
                st.links.update(
                    controlplane.start(
                        self.names,
                        plan,
                        lambda pods, facts: datapath.add_pods(self.names, plan, values, pods, facts),
                        datapath.service_lb,
                    )
                )
            except BaseException:
                teardown.down(self.names)
                lock.discard()
                raise
            st.status = "up"
            state.save(self.names, st)
            origin.record_up(self.names)
        return f"lab {self.lab!r} is up: {len(plan.nodes)} nodes"

    def settings(self) -> Settings:
        st = self._state()
        return Settings(st.datapath, dict(st.options))

    def down(self) -> str:
        _need_root()
        with state.locked(self.names, "down") as lock:
            existed = bool(teardown.leftovers(self.names))
            teardown.down(self.names)
            lock.discard()
        return f"lab {self.lab!r} removed" if existed else f"lab {self.lab!r} does not exist; nothing to remove"

    def apply(self, paths: Sequence[str]) -> list[str]:
        """Add the objects of ``paths`` (files or folders of manifests) to the running lab.

        Transactional: every step first writes its undo into the lab's journal (undo.py);
        a failure undoes them all, so the lab is as it was before, and a killed apply is
        undone by the next command on the lab."""
        if isinstance(paths, str | Path):
            paths = [paths]
        manifests = spec.load_manifests(paths)  # bad input fails here, nothing changed
        _need_root()
        with self._locked("apply"):
            st = self._state()
            new_plan, notes = planning.extend(st.plan, manifests)
            old = {p.key for p in st.plan.pods}
            added = [p for p in new_plan.pods if p.key not in old]
            datapath = dpath.get(st.datapath)
            st.applied += 1
            journal = undo.begin(self.names, st.applied)
            try:
                for p in added:
                    ns = self.names.pod(p.namespace, p.name)
                    journal.add("netns", name=ns)
                    journal.created(self.names.etc_netns(ns))
                facts = topology.build_pods(self.names, new_plan, added)
                for n in new_plan.nodes:
                    pin_dir = self.names.bpffs / n.name
                    journal.maps([pin_dir / m for m in datapath.state_maps])
                    journal.new_entries(pin_dir)
                datapath.add_pods(self.names, new_plan, self._values(st), added, facts)
                for d in self._lab_etc_dirs():
                    journal.rewrites_tree(d)
                hosts.write_all(self.names, new_plan, datapath.service_lb)
                journal.daemons()
                processes.start_workloads(self.names, new_plan, added)
                st.plan = new_plan
                st.links.update(facts)
                state.save(self.names, st)  # the commit point: the journal's tx is now applied
            except BaseException:
                journal.rollback()
                raise
            journal.commit()
        return notes

    def problems(self) -> list[str]:
        """Daemons of the lab that died, each with what to do ([] when all run)."""
        if state.load(self.names) is None:
            return []
        return [
            f"{d.what} is not running (PID {d.pid} ended); run labkit up{_lab_flag(self.lab)} to start it again"
            for d in processes.dead_daemons(self.names)
        ]

    def existing_labs(self) -> list[str]:
        return existing_labs()

    def labs(self) -> pd.DataFrame:
        rows: list[dict[str, Any]] = []
        for lab in existing_labs():
            names = LabNames(lab)
            try:
                st = state.load(names)
            except LabError:
                st = None  # a damaged state file: still listed, so it can be removed
            o = origin.load(names)
            rows.append(
                {
                    "name": lab,
                    "backend": self.name,
                    "status": st.status if st else "leftovers",
                    "datapath": st.datapath if st else None,
                    "options": ",".join(f"{k}={v}" for k, v in sorted(st.options.items())) if st else "",
                    "created": pd.Timestamp(o.created, unit="s", tz="UTC") if o.created else None,
                    "companion_of": o.companion_of,
                    "checkout": o.checkout,
                }
            )
        of = {str(r["name"]): str(r["companion_of"]) for r in rows}
        for r in rows:
            r["companions"] = ",".join(sorted(n for n, parent in of.items() if parent == r["name"]))
        return tables.LABS.frame(rows)

    def companions(self) -> list[str]:
        return sorted(
            lab for lab in existing_labs() if lab != self.lab and origin.load(LabNames(lab)).companion_of == self.lab
        )

    def add_companion(self, lab: str) -> None:
        other = LabNames(lab)
        if lab == self.lab or not other.state_dir.exists():
            raise LabError(f"lab {lab!r} is not up; a companion is a lab built next to {self.lab!r} first")
        origin.mark_companion(other, self.lab)

    def doctor(self) -> list[Check]:
        checks = doctor.checks()
        if state.load(self.names) is not None:
            problems = self.problems()
            checks.append(
                Check(
                    f"lab {self.lab} daemons",
                    not problems,
                    "; ".join(problems) or f"{len(processes.daemons(self.names))} running",
                    f"labkit up{_lab_flag(self.lab)}",
                )
            )
        return checks

    # ------------------------------------------------------------------ tables
    def plan(self) -> Plan:
        return self._state().plan

    def nodes(self) -> pd.DataFrame:
        p = self.plan()
        return tables.NODES.frame(
            {"name": n.name, "role": n.role, "internal_ip": n.ip, "pod_cidr": n.pod_cidr, "router_ip": n.router_ip}
            for n in p.nodes
        )

    def pods(self) -> pd.DataFrame:
        st = self._state()
        rows = []
        for p in st.plan.pods:
            f = st.links.get(p.key, {})
            rows.append(
                {
                    "namespace": p.namespace,
                    "name": p.name,
                    "node": p.node,
                    "ip": p.ip,
                    "image": p.image,
                    "app": p.app,
                    "lxc": p.lxc,
                    "lxc_ifindex": f.get("lxc_ifindex"),
                    "pod_mac": f.get("pod_mac"),
                    "lxc_mac": f.get("lxc_mac"),
                    "endpoint_id": p.endpoint_id,
                    "identity": p.identity,
                    "labels": ",".join(f"{k}={v}" for k, v in sorted(p.labels.items())),
                }
            )
        return tables.PODS.frame(rows)

    def services(self) -> pd.DataFrame:
        p = self.plan()
        rows = []
        for s in p.services:
            for port in s.ports:
                backends = ",".join(f"{b.ip}:{port['target_port']}" for b in p.endpoints(s))
                rows.append(
                    {
                        "namespace": s.namespace,
                        "name": s.name,
                        "type": s.type,
                        "cluster_ip": s.cluster_ip,
                        "port": port["port"],
                        "target_port": port["target_port"],
                        "protocol": port["protocol"],
                        "backends": backends,
                    }
                )
        return tables.SERVICES.frame(rows)

    # ------------------------------------------------------------------ running things
    def resolve(self, target: str) -> TargetRef:
        p = self.plan()
        return targets.resolve(
            target, [n.name for n in p.nodes], (PodRef(x.namespace, x.name, x.node) for x in p.pods), self.lab
        )

    def _netns(self, ref: TargetRef) -> NetNS:
        if isinstance(ref, NodeRef):
            return NetNS(self.names.node(ref.name))
        return NetNS(self.names.pod(ref.namespace, ref.name))

    def _command(self, target: str, argv: Sequence[str]) -> tuple[list[str], TargetRef]:
        """(the argv that runs ``argv`` in ``target``, the target), one state read."""
        words = targets.command_argv(argv)
        ref = self.resolve(target)
        return self._netns(ref).exec_argv(words), ref

    def argv(self, target: str, argv: Sequence[str]) -> list[str]:
        return self._command(target, argv)[0]

    def popen(self, target: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in ``target``'s namespace, in its node's cgroup, with its hostname."""
        full, ref = self._command(target, argv)
        setup = nets.preexec(nets.join_cgroup(self.names.node_cgroup(ref.node)), nets.own_hostname(ref.name))
        try:
            return subprocess.Popen(full, preexec_fn=setup, **kw)
        except FileNotFoundError:
            raise LabError("ip (iproute2) not found; run make lab", exit_code=ExitStatus.FAILURE) from None

    def run(
        self, target: str, argv: Sequence[str], *, timeout: float | None = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_with_popen(self.popen, target, argv, timeout=timeout, input=input)

    def shell_env(self, target: str) -> dict[str, str]:
        """In a node shell, `cilium`, `cilium-dbg` and `hubble` answer from labkit's datapath.

        `ip netns exec` gives the shell its own mount namespace with a fresh /sys, where the
        BPF filesystem (the pinned maps) is not mounted; the wrappers run labkit back in the
        mount namespace of the `labkit shell` process (nsenter --mount), still in the node.
        """
        if not isinstance(self.resolve(target), NodeRef):
            return {}
        bindir = self.names.state_dir / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        for tool in ("cilium", "cilium-dbg", "hubble"):
            script = bindir / tool
            script.write_text(
                "#!/bin/sh\n# labkit: the node agent's CLI (labkit/cli/agent.py), answered by labkit's datapath\n"
                f'exec nsenter --mount="$LABKIT_HOST_MNT" -- "{sys.executable}" -m labkit.cli.agent {tool} "$@"\n'
            )
            script.chmod(0o755)
        return {
            "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LABKIT_NODE": target,
            "LABKIT_LAB": self.lab,
            "LABKIT_HOST_MNT": f"/proc/{os.getpid()}/ns/mnt",
        }

    def capture_points(self, patterns: Sequence[str]) -> list[CapturePoint]:
        """``node:iface`` / ``pod:iface`` with shell-style globs -> capture points."""
        p = self.plan()
        lxc_owner = {x.lxc: x.name for x in p.pods}

        def point(ref: TargetRef, target: str, iface: str) -> CapturePoint:
            owner = ref.name if isinstance(ref, PodRef) else lxc_owner.get(iface, "")
            return CapturePoint(f"{target}:{iface}", ref.node, owner, iface, str(self._netns(ref).path))

        return targets.match_points(patterns, self.resolve, lambda ref, _glob: list(self._netns(ref).links()), point)

    def packet_sockets(self, points: Sequence[CapturePoint]) -> list[socket.socket]:
        """Opened here, in each point's namespace (root)."""
        socks: list[socket.socket] = []
        try:
            for p in points:
                socks.append(open_packet_socket(p))
        except BaseException:
            for s in socks:
                s.close()
            raise
        return socks

    def external_address(self) -> str:
        return EXTERNAL_IP

    # ------------------------------------------------------------------ datapath views
    def view(self) -> DatapathView:
        """Maps, monitor and flows of the lab's datapath (labkit/embedded/ebpf/view.py)."""
        st = self._state()
        return dpath.get(st.datapath).view(self.names, st.plan)

    def _watched_view(self) -> DatapathView:
        """The view, after saying so if the agent that records events has stopped."""
        view = self.view()
        self._warn_if_agent_stopped()
        return view

    def maps(self, node: str) -> NodeMapReader:
        return self.view().maps(node)

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
        check_window(seconds=seconds, duration=duration)
        view = self._watched_view()
        return view.monitor(
            node, from_=from_, to=to, related_to=related_to, seconds=seconds, duration=duration, during=during
        )

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
        check_window(seconds=seconds, duration=duration)
        view = self._watched_view()
        return view.monitor_lines(
            node,
            from_=from_,
            to=to,
            related_to=related_to,
            json=json,
            seconds=seconds,
            duration=duration,
            verbose=verbose,
        )

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        check_window(seconds=seconds, duration=duration)
        return self._watched_view().flows(node, seconds=seconds, duration=duration, during=during)

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
        check_window(seconds=seconds, duration=duration)
        if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 0):
            raise LabError(f"last must be a whole number of flows >= 0, got {last!r}")
        return self._watched_view().observe_lines(
            node, last=last, seconds=seconds, follow=follow, duration=duration, output=output
        )

    def trace(
        self,
        points: Sequence[str] = (),
        *,
        filter: str = "",
        duration: float | None = None,
        during: Callable[[], object] | None = None,
        max_events: int | None = None,
    ) -> pd.DataFrame:
        """labkit/embedded/ebpf/tracer.py; bad input is refused before anything is loaded."""
        node = skbfilter.parse(filter)
        seconds, limit = tracer.check_bounds(duration, max_events)
        if isinstance(points, str):
            points = [points]
        pickup = tuple(dict.fromkeys((NetNS.at(p.netns).name, p.interface) for p in self.capture_points(points)))
        _need_root()
        options = tracer.Options(node, pickup, seconds, limit)
        return tracer.trace(self.names, self.plan(), options, during)

    # ------------------------------------------------------------------ internals
    def _load_values(self, options: dict[str, Any]) -> spec.DatapathSpec:
        return spec.load_values(self.cluster_dir / "cilium-values.yaml", options)

    def _values(self, st: state.LabState) -> spec.DatapathSpec:
        return self._load_values(st.options)

    @contextlib.contextmanager
    def _locked(self, what: str) -> Iterator[state.Lock]:
        """The lab's lock, with whatever an interrupted apply left undone first."""
        with state.locked(self.names, what) as lock:
            st = state.load(self.names)
            undo.recover(self.names, st.applied if st is not None and st.status == "up" else None)
            yield lock

    def _lab_etc_dirs(self) -> list[Path]:
        if not ETC_NETNS.is_dir():
            return []
        return sorted(d for d in ETC_NETNS.iterdir() if self.names.owns_netns(d.name))

    def _warn_if_agent_stopped(self) -> None:
        for d in processes.dead_daemons(self.names):
            if d.name == "agent":
                notice(
                    f"the event agent of lab {self.lab!r} is not running: nothing new is recorded; "
                    f"run labkit up{_lab_flag(self.lab)} to start it again"
                )

    def _state(self) -> state.LabState:
        st = state.load(self.names)
        if st is None or st.status != "up":
            raise LabError(f"lab {self.lab!r} is not up; run: labkit up --lab {self.lab}")
        return st


def _lab_flag(lab: str) -> str:
    return "" if lab == "default" else f" --lab {lab}"


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the embedded backend needs root (network namespaces, eBPF); run with sudo")
