"""Reserved security identities (Cilium pkg/identity/numericidentity.go).

``NumericIdentity.String()`` prints these names instead of the numbers, so both the
embedded datapath's output and the live parsers use this one table.
"""

from __future__ import annotations

RESERVED_IDENTITIES = {
    0: "unknown",
    1: "host",
    2: "world",
    3: "unmanaged",
    4: "health",
    5: "init",
    6: "remote-node",
    7: "kube-apiserver",
    8: "ingress",
    9: "world-ipv4",
    10: "world-ipv6",
}
RESERVED_BY_NAME = {name: ident for ident, name in RESERVED_IDENTITIES.items()}
HOST_ID, WORLD_ID, REMOTE_NODE_ID, KUBE_APISERVER_ID = 1, 2, 6, 7


def identity_name(ident: int) -> str:
    """NumericIdentity.String(): reserved ids by name, others as the number."""
    return RESERVED_IDENTITIES.get(ident, str(ident))
