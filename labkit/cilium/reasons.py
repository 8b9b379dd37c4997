"""Names Cilium prints for drop reasons, observation points, trace states, files.

From Cilium pkg/monitor/api/drop.go, pkg/monitor/api/types.go, bpf/source_names_to_ids.h
(only the codes labkit's datapath can produce, plus the forward reasons its metrics count:
0 Success, 3 Interface: `cilium bpf metrics list` names every reason with DropReason()).
The C side (the ``#define DROP_*`` and ``FILE_*`` of bpf/lib/common.h, the TRACE_* points
of bpf/lib/trace.h) and these tables are checked against each other and against Cilium's
by tests/test_bpf_reasons.py.
"""

from __future__ import annotations

DROP_REASONS = {
    0: "Success",
    3: "Interface",
    4: "Interface Decrypted",
    132: "Invalid source ip",
    134: "Invalid packet",
    135: "CT: Truncated or invalid header",
    139: "Unsupported L3 protocol",
    141: "Error writing to packet",
    142: "Unknown L4 protocol",
    153: "Error while correcting L3 checksum",
    154: "Error while correcting L4 checksum",
    158: "Service backend not found",
    167: "No mapping for NAT masquerade",
    169: "FIB lookup failed",
    174: "Is a ClusterIP",
    196: "TTL exceeded",
}
DIRECTIONS = {1: "INGRESS", 2: "EGRESS", 3: "SERVICE"}
FILES = {1: "bpf_host.c", 2: "bpf_lxc.c", 5: "bpf_sock.c"}

# enum trace_point -> (monitor observationPoint, Hubble TraceObservationPoint)
OBS_POINTS = {
    0: ("to-endpoint", "TO_ENDPOINT"),
    1: ("to-proxy", "TO_PROXY"),
    2: ("to-host", "TO_HOST"),
    3: ("to-stack", "TO_STACK"),
    4: ("to-overlay", "TO_OVERLAY"),
    5: ("from-endpoint", "FROM_ENDPOINT"),
    6: ("from-proxy", "FROM_PROXY"),
    7: ("from-host", "FROM_HOST"),
    8: ("from-stack", "FROM_STACK"),
    9: ("from-overlay", "FROM_OVERLAY"),
    10: ("from-network", "FROM_NETWORK"),
    11: ("to-network", "TO_NETWORK"),
}
TRACE_STATES = {0: "new", 1: "established", 2: "reply", 3: "related", 4: "reopened", 5: "unknown"}


def drop_reason(code: int) -> str:
    return DROP_REASONS.get(code, f"Unknown drop reason ({code})")


def metric_reason(code: int) -> str:
    """What `cilium bpf metrics list` prints in REASON (DropForwardReason)."""
    return drop_reason(code)
