"""Conntrack vocabulary: CtEntry flag names (Cilium pkg/maps/ctmap/types.go)."""

from __future__ import annotations

# CtEntry flag bits, in order (RxClosing = 1 << iota, ...); "" is a reserved bit Cilium
# does not name.
CT_FLAG_NAMES = [
    "RxClosing",
    "TxClosing",
    "Nat64",
    "LBLoopback",
    "SeenNonSyn",
    "NodePort",
    "ProxyRedirect",
    "DSRInternal",
    "FromL7LB",
    "",
    "FromTunnel",
]


def ct_flag_names(flags: int) -> str:
    """What `cilium bpf ct list` prints between `[ ]` for ``flags``."""
    names = [n for i, n in enumerate(CT_FLAG_NAMES) if n and flags & (1 << i)]
    known = sum(1 << i for i, n in enumerate(CT_FLAG_NAMES) if n)
    if flags & ~known:
        names.append(f"Unknown={flags & ~known:#04x}")
    return " ".join(names)
