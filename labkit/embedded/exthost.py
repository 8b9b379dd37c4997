"""The "external host": a namespace on the kind network outside the cluster (topology).

The blog's masquerade question needs a destination outside ipv4NativeRoutingCIDR. Real
kind has the internet behind docker's bridge; a lab has no internet, so each lab gets
lk.<lab>.ext: one interface on the kind bridge with the plan's EXTERNAL_IP and no route
to the pod CIDRs, running the whoami server (HTTP and UDP echo on port 80). A pod reaching
it gets an answer only if its packets were masqueraded to the node IP. Both datapaths
have it.
"""

from __future__ import annotations

import time

from .. import netns
from ..errors import ExitStatus, LabError
from ..netns import NetNS
from ..plan import EXTERNAL_IP, EXTERNAL_PORT, KIND_NETWORK
from . import processes
from .names import LabNames
from .topology import BRIDGE, QUIET_SYSCTLS

BRIDGE_PORT = "vethext"


def netns_name(names: LabNames) -> str:
    return names.prefix + "ext"


def create(names: LabNames) -> None:
    ns = NetNS(netns_name(names))
    netns.create([ns])
    ns.sysctl(QUIET_SYSCTLS)
    NetNS(names.kind_net).ip_batch(
        [
            f"link add {BRIDGE_PORT} type veth peer name eth0 netns {ns.name}",
            f"link set {BRIDGE_PORT} master {BRIDGE}",
            f"link set {BRIDGE_PORT} up",
        ]
    )
    ns.ip_batch(["link set lo up", f"addr add {EXTERNAL_IP}/{KIND_NETWORK.prefixlen} dev eth0", "link set eth0 up"])
    log = names.state_dir / "logs" / "ext.log"
    _, r = processes.spawn_ready(processes.whoami_argv(ns.name, "external", EXTERNAL_IP, EXTERNAL_PORT), log)
    if not processes.await_ready(r, time.monotonic() + 10):
        raise LabError(f"the external host's server did not start; see {log}", exit_code=ExitStatus.FAILURE)
