"""The "external host": a namespace on the kind network outside the cluster (topology).

The blog's masquerade question needs a destination outside ipv4NativeRoutingCIDR. Real
kind has the internet behind docker's bridge; a lab has no internet, so each lab gets
lk.<lab>.ext: one interface on the kind bridge with the plan's EXTERNAL_IP and no route
to the pod CIDRs, running the whoami server (HTTP and UDP echo on port 80). A pod reaching
it gets an answer only if its packets were masqueraded to the node IP. Both datapaths
have it.
"""

from __future__ import annotations

from .. import netns
from ..netns import NetNS
from ..plan import EXTERNAL_IP, EXTERNAL_PORT, KIND_NETWORK
from . import processes
from .names import LabNames
from .topology import BRIDGE, QUIET_SYSCTLS

BRIDGE_PORT = "vethext"
EXT_CGROUP = "labkit-ext"  # the server's cgroup under the lab's (not a node name)


def netns_name(names: LabNames) -> str:
    return names.prefix + "ext"


def create(names: LabNames) -> None:
    ns = NetNS(netns_name(names))
    netns.create([ns], userns=names.userns)
    ns.sysctl(QUIET_SYSCTLS)
    NetNS(names.kind_net).ip_batch(
        [
            f"link add {BRIDGE_PORT} type veth peer name eth0 netns {ns.name}",
            f"link set {BRIDGE_PORT} master {BRIDGE}",
            f"link set {BRIDGE_PORT} up",
        ]
    )
    ns.ip_batch(["link set lo up", f"addr add {EXTERNAL_IP}/{KIND_NETWORK.prefixlen} dev eth0", "link set eth0 up"])
    cg = names.cgroup / EXT_CGROUP
    cg.mkdir(parents=True, exist_ok=True)
    server = processes.Daemon(
        "external",
        "the external host's server",
        processes.whoami_argv(ns.name, "external", EXTERNAL_IP, EXTERNAL_PORT),
        str(names.state_dir / "logs" / "ext.log"),
        cgroup=str(cg),
    )
    processes.start_daemons(names, [server])
