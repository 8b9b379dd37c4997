"""The blog's helm values and what each one does to a packet (the install lesson's table)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import yaml
from pandas.io.formats.style import Styler

from ..i18n import N_, _
from ..spec import CLUSTER_DIR

# What each of the blog's helm values means on the datapath (the install notebook's table; the
# column names stay English, the cells are shown in the learner's language).
VALUE_MEANINGS = {
    "routingMode": N_(
        "native: pod packets leave the node unencapsulated; the kernel FIB (or a BPF FIB lookup) routes them"
    ),
    "ipv4NativeRoutingCIDR": N_(
        "destinations inside it are routed as they are (no masquerade); outside it, BPF masquerade to the node IP"
    ),
    "autoDirectNodeRoutes": N_(
        "each node gets a route to every other node's pod CIDR via that node's IP (see lab.routes)"
    ),
    "endpointRoutes.enabled": N_(
        "one /32 route per local pod to its lxc interface, instead of one route for the whole pod CIDR"
    ),
    "kubeProxyReplacement": N_(
        "services are load-balanced by eBPF: with socket LB at connect() time, no kube-proxy, no iptables"
    ),
    "bpf.masquerade": N_(
        "SNAT in eBPF on the node's eth0 (to-netdev), with entries in the NAT map (cilium_snat_v4_external)"
    ),
    "installNoConntrackIptablesRules": N_("no iptables conntrack for pod traffic (the eBPF conntrack is used)"),
    "ipam.mode": N_("kubernetes: each node's pod CIDR comes from the node object (10.244.N.0/24)"),
    "k8s.requireIPv4PodCIDR": N_("the agent waits for the node's pod CIDR before it starts"),
    "k8sServiceHost": N_("auto: the agent finds the API server by itself"),
    "endpointHealthChecking.enabled": N_("false: no health endpoint per node (fewer entries in the maps)"),
    "healthChecking": N_("false: no node-to-node health probes"),
    "hubble.enabled": N_("flow events from the datapath are kept and can be observed (labkit observe / lab.flows())"),
}


def values_table() -> Styler:
    """The blog's helm values, flattened, with what each means on the datapath: shown whole
    (cells wrap instead of being cut with "...", long values break at their commas)."""

    def flat(d: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    values = yaml.safe_load((CLUSTER_DIR / "cilium-values.yaml").read_text())
    rows = [
        {
            "value": k,
            "set to": ", ".join(map(str, v)).replace(";", "; ").replace(",", ", ").replace(",  ", ", ")
            if isinstance(v, list)
            else str(v),
            "what it means here": _(
                VALUE_MEANINGS.get(k, N_("observability/operations only; no effect on the packet path"))
            ),
        }
        for k, v in flat(values)
    ]
    return wrapped(pd.DataFrame(rows))


def wrapped(df: pd.DataFrame) -> Styler:
    """A table whose cells wrap and read left to right, never cut off."""
    return (
        df.style.hide(axis="index")
        .set_properties(**{"text-align": "left", "white-space": "normal", "overflow-wrap": "anywhere"})
        .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    )
