"""The "external host": a namespace on the kind network outside the cluster.

The blog's masquerade question needs a destination outside ipv4NativeRoutingCIDR. Real
kind has the internet behind docker's bridge; a lab has no internet, so each lab gets
lk.<lab>.ext: one interface on the kind bridge with EXT_IP/16 and no route to the pod
CIDRs, running the whoami server (HTTP and UDP echo on port 80). A pod reaching it gets
an answer only if its packets were masqueraded to the node IP.
"""
from __future__ import annotations

import time

from ..embedded import netns
from ..embedded.names import LabNames
from ..embedded.topology import BRIDGE, QUIET_SYSCTLS
from ..errors import LabError
from ..plan import KIND_NETWORK

EXT_IP = "172.18.0.100"
EXT_PORT = 80
BRIDGE_PORT = "vethext"


def netns_name(names: LabNames) -> str:
    return names.prefix + "ext"


def create(names: LabNames) -> None:
    ns = netns_name(names)
    netns.add_netns([ns])
    netns.sysctl(ns, QUIET_SYSCTLS)
    netns.ip_batch(names.kind_net, [f"link add {BRIDGE_PORT} type veth peer name eth0 netns {ns}",
                                    f"link set {BRIDGE_PORT} master {BRIDGE}", f"link set {BRIDGE_PORT} up"])
    netns.ip_batch(ns, ["link set lo up", f"addr add {EXT_IP}/{KIND_NETWORK.prefixlen} dev eth0", "link set eth0 up"])
    _start_server(names, ns)


def _start_server(names: LabNames, ns: str) -> None:
    from ..embedded.processes import await_ready, spawn_ready, whoami_argv
    log = names.state_dir / "logs" / "ext.log"
    _, r = spawn_ready(whoami_argv(ns, "external", EXT_IP, EXT_PORT), log)
    if not await_ready(r, time.monotonic() + 10):
        raise LabError(f"the external host's server did not start; see {log}", exit_code=1)
