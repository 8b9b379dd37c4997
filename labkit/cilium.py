"""Cilium's vocabulary that both backends print and parse (see ../shared/cilium-reference.md).

One place for names that Cilium's Go code spells out, so the embedded datapath's output and
the live parsers cannot drift apart.
"""
from __future__ import annotations

# Reserved security identities (pkg/identity/numericidentity.go); NumericIdentity.String()
# prints these names instead of the numbers.
RESERVED_IDENTITIES = {1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node",
                       7: "kube-apiserver", 8: "ingress", 9: "world-ipv4", 10: "world-ipv6"}

# CtEntry flag bits, in order (pkg/maps/ctmap/types.go: RxClosing = 1 << iota, ...);
# "" is a reserved bit that Cilium does not name.
CT_FLAG_NAMES = ["RxClosing", "TxClosing", "Nat64", "LBLoopback", "SeenNonSyn", "NodePort", "ProxyRedirect",
                 "DSRInternal", "FromL7LB", "", "FromTunnel"]


def ct_flag_names(flags: int) -> str:
    """What `cilium bpf ct list` prints between `[ ]` for ``flags``."""
    names = [n for i, n in enumerate(CT_FLAG_NAMES) if n and flags & (1 << i)]
    known = sum(1 << i for i, n in enumerate(CT_FLAG_NAMES) if n)
    if flags & ~known:
        names.append(f"Unknown={flags & ~known:#04x}")
    return " ".join(names)
