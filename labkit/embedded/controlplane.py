"""The running control plane of an embedded lab: the kube-system pods and two daemons.

The plan lays the control plane out (labkit/plan.py ``with_control_plane``); ``start``
makes it run at ``up``:

- the kube-system pods (CoreDNS x2, hubble-relay, hubble-ui) get their namespaces,
  veths and endpoints like any pod;
- one process (labkit/workloads/apiserver.py) is the API server on the control-plane
  node's IP:6443, every node's kubelet and Cilium agent as its clients, and every
  agent's Hubble port 4244;
- one process (labkit/workloads/kubedns.py) is CoreDNS in both CoreDNS pods (UDP and
  TCP 53), each node's resolver (docker's 127.0.0.11) and the Hubble relay/UI ports.

Both run in a cgroup of their own under the lab's (``down`` ends them with the lab) and
are started and registered by processes.py's ``start_daemons`` (so ``up`` starts either
again if it died), under the names ``CONTROL_PLANE_DAEMONS``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import ExitStatus, LabError
from ..netns import NETNS_DIR, NetNS
from ..plan import API_SERVER_PORT, HUBBLE_PEER_PORT, Plan, PodPlan
from . import hosts, processes, topology
from .names import LabNames

WORKLOADS = Path(__file__).resolve().parent.parent / "workloads"
CGROUP = "labkit-controlplane"  # not a node name
CONTROL_PLANE_DAEMONS = ("kube-apiserver", "coredns")
APPS = ("coredns", "hubble-relay", "hubble-ui")


def _dnslib_path() -> str:
    spec = importlib.util.find_spec("dnslib")
    if spec is None or not spec.submodule_search_locations:
        raise LabError("the Python package dnslib is missing; run make setup", exit_code=ExitStatus.FAILURE)
    return str(Path(list(spec.submodule_search_locations)[0]).parent)


def _ns(names: LabNames, netns: str) -> str:
    return str(NETNS_DIR / netns)


def apiserver_argv(names: LabNames, plan: Plan) -> list[str]:
    cp = plan.control_plane()
    args = ["--api", f"{_ns(names, names.node(cp.name))}:{cp.ip}:{API_SERVER_PORT}"]
    for n in plan.nodes:
        args += ["--node", f"{_ns(names, names.node(n.name))}:{n.name}"]
        if plan.service("kube-system", "hubble-peer"):
            args += ["--peer", f"{_ns(names, names.node(n.name))}:{n.ip}:{HUBBLE_PEER_PORT}"]
    script = str(WORKLOADS / "apiserver.py")
    return NetNS(names.node(cp.name)).exec_argv(
        [sys.executable, "-I", "-S", script, *args, "--ready-fd", processes.READY_FD]
    )


def kubedns_argv(names: LabNames, plan: Plan, pods: list[PodPlan]) -> list[str]:
    args = ["--zone", str(hosts.zone_path(names)), "--lib", _dnslib_path()]
    home = None
    for p in pods:
        ns = _ns(names, names.pod(p.namespace, p.name))
        if p.app == "coredns":
            args += ["--dns", f"{ns}:{p.ip}"]
            home = home or names.pod(p.namespace, p.name)
        else:
            args += ["--http", f"{ns}:{p.ip}:{p.port}:{p.app} (labkit stand-in)"]
    for n in plan.nodes:
        args += ["--resolver", _ns(names, names.node(n.name))]
    script = str(WORKLOADS / "kubedns.py")
    where = NetNS(home or names.node(plan.control_plane().name))
    return where.exec_argv([sys.executable, "-I", "-S", script, *args, "--ready-fd", processes.READY_FD])


def start(
    names: LabNames,
    plan: Plan,
    add_pods: Callable[[list[PodPlan], dict[str, dict]], None],
    service_lb: bool = True,
) -> dict[str, dict]:
    """Build the kube-system pods and start the two daemons; the pods' link facts."""
    pods = [p for p in plan.pods if p.namespace == "kube-system" and p.app in APPS]
    facts = topology.build_pods(names, plan, pods)
    add_pods(pods, facts)
    hosts.write_all(names, plan, service_lb)
    cg = names.cgroup / CGROUP
    cg.mkdir(parents=True, exist_ok=True)
    logs = names.state_dir / "logs"
    processes.start_daemons(
        names,
        [
            processes.Daemon(
                "kube-apiserver",
                "the API server and every node's kubelet and agent (stand-ins)",
                apiserver_argv(names, plan),
                str(logs / "kube-apiserver.log"),
                cgroup=str(cg),
            ),
            processes.Daemon(
                "coredns",
                "CoreDNS and the Hubble relay and UI (stand-ins)",
                kubedns_argv(names, plan, pods),
                str(logs / "coredns.log"),
                cgroup=str(cg),
            ),
        ],
    )
    return facts
