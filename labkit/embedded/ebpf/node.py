"""The eBPF datapath's side of ``up`` and ``apply`` (called by embedded/datapath.py's
EbpfDatapath): compile or take from the cache, then per node maps, programs, hooks."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ...errors import ExitStatus, LabError
from ...netns import NetNS
from ...plan import Plan, PodPlan
from ...spec import REPO, DatapathSpec
from .. import bpffs
from ..names import LabNames
from ..processes import READY_FD, Daemon, start_daemons
from . import build, loader, sync

AGENT_CGROUP = "labkit-agent"  # not a node name: kind node names carry "kind-" / "control-plane"


def timings_path(names: LabNames) -> Path:
    return names.state_dir / "datapath.json"


def attach_nodes(names: LabNames, plan: Plan, dp: DatapathSpec) -> dict:
    """Compile (or take from the cache), then per node: maps, programs, eth0 and cgroup hooks."""
    if dp.routing_mode and dp.routing_mode != "native":
        raise LabError(
            f"routingMode={dp.routing_mode!r} is not supported by the embedded eBPF datapath; use routingMode=native",
            exit_code=ExitStatus.USAGE,
        )
    bpffs.ensure(names.bpffs)
    t0 = time.monotonic()
    templates = build.templates(build.cflags(dp, plan))
    figures: dict = {
        "compile_s": round(time.monotonic() - t0, 3),
        "compiled": any(t.seconds > 0 for t in templates.values()),
        "load_s": {},
    }
    for n in plan.nodes:
        with loader.Timer() as t:
            pin_dir = names.bpffs / n.name
            fds = loader.open_maps(pin_dir, templates)
            progs = loader.load_programs(pin_dir, templates, fds)
            node_ns = NetNS(names.node(n.name))
            eth0 = node_ns.links()["eth0"]["ifindex"]
            with sync.NodeMaps(pin_dir) as m:
                sync.write_node_config(m, n.ip, n.router_ip, eth0, n.host_endpoint_id)
                sync.sync_node(m, plan, n.name, {})
            loader.tc_attach(node_ns, "eth0", progs["cil_from_netdev"], "cil_from_netdev", "ingress", pin_dir)
            loader.tc_attach(node_ns, "eth0", progs["cil_to_netdev"], "cil_to_netdev", "egress", pin_dir)
            for fn, attach in (
                ("cil_sock4_connect", "connect4"),
                ("cil_sock4_sendmsg", "sendmsg4"),
                ("cil_sock4_recvmsg", "recvmsg4"),
                ("cil_sock4_getpeername", "getpeername4"),
            ):
                if dp.socket_lb:
                    loader.cgroup_attach(names.node_cgroup(n.name), progs[fn], attach)
            for fd in [*fds.values(), *progs.values()]:
                os.close(fd)
        figures["load_s"][n.name] = round(t.seconds, 3)
    start_agent(names, [n.name for n in plan.nodes])
    names.state_dir.mkdir(parents=True, exist_ok=True)
    timings_path(names).write_text(json.dumps(figures))
    return figures


def add_pods(names: LabNames, plan: Plan, pods: list[PodPlan], links: dict[str, dict]) -> None:
    """Endpoints, ipcache and services of every node, then from-container on the new lxcs."""
    for n in plan.nodes:
        with sync.NodeMaps(names.bpffs / n.name) as m:
            sync.sync_node(m, plan, n.name, links)
    for n in plan.nodes:
        new = [p for p in pods if p.node == n.name]
        if not new:
            continue
        fd = loader.pinned_prog(names.bpffs / n.name, "cil_from_container")
        try:
            for p in new:
                loader.tc_attach(
                    NetNS(names.node(n.name)), p.lxc, fd, "cil_from_container", "ingress", names.bpffs / n.name
                )
        finally:
            os.close(fd)


def start_agent(names: LabNames, nodes: list[str]) -> int:
    """Start the event agent (a registered daemon, in its own cgroup under the lab's);
    return its PID once it reads the rings."""
    cg = names.cgroup / AGENT_CGROUP
    cg.mkdir(parents=True, exist_ok=True)
    agent = Daemon(
        "agent",
        "the event agent",
        [sys.executable, "-m", "labkit.embedded.ebpf.agent", "--bpffs", str(names.bpffs)]
        + ["--out", str(names.state_dir / "events"), "--ready-fd", READY_FD, *nodes],
        str(names.state_dir / "logs" / "agent.log"),
        cgroup=str(cg),
        env={"PYTHONPATH": str(REPO)},
        ready_timeout=15.0,
    )
    return start_daemons(names, [agent])[0].pid
