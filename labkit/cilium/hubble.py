"""Hubble's vocabulary: flow JSON as `hubble observe -o json` prints it, and the compact
line of `hubble observe`.

From Cilium 1.17: api/v1/flow/flow.proto (field and enum names; JSON is protojson with
proto names, fields in declaration order, zero values left out, 64-bit integers as
strings, timestamps with 0, 3, 6 or 9 fraction digits), pkg/hubble/parser/threefour and
pkg/hubble/parser/sock (what each event becomes), hubble/pkg/printer/printer.go
(``WriteProtoFlow`` compact: ``GetHostNames``, ``fmtIdentity``, ``GetFlowType``).
"""

from __future__ import annotations

import datetime as dt
import posixpath

from .identities import RESERVED_IDENTITIES
from .reasons import DROP_REASONS, OBS_POINTS

# flow.proto DropReason names of the codes labkit's datapath produces.
DROP_REASON_DESC = {
    130: "INVALID_SOURCE_MAC",
    131: "INVALID_DESTINATION_MAC",
    132: "INVALID_SOURCE_IP",
    133: "POLICY_DENIED",
    134: "INVALID_PACKET_DROPPED",
    135: "CT_TRUNCATED_OR_INVALID_HEADER",
    139: "UNSUPPORTED_L3_PROTOCOL",
    141: "ERROR_WRITING_TO_PACKET",
    142: "UNKNOWN_L4_PROTOCOL",
    153: "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
    154: "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
    158: "SERVICE_BACKEND_NOT_FOUND",
    167: "NO_MAPPING_FOR_NAT_MASQUERADE",
    169: "FIB_LOOKUP_FAILED",
    174: "IS_A_CLUSTERIP",
    196: "TTL_EXCEEDED",
}
DROP_REASON_CODES = {v: k for k, v in DROP_REASON_DESC.items()}
# TraceReason: the monitor's CT state + 1 (TRACE_REASON_UNKNOWN is 0).
TRACE_REASONS = {
    "new": "NEW",
    "established": "ESTABLISHED",
    "reply": "REPLY",
    "related": "RELATED",
    "reopened": "REOPENED",
}
SOCK_XLATE_POINTS = {
    1: "SOCK_XLATE_POINT_PRE_DIRECTION_FWD",
    2: "SOCK_XLATE_POINT_POST_DIRECTION_FWD",
    3: "SOCK_XLATE_POINT_PRE_DIRECTION_REV",
    4: "SOCK_XLATE_POINT_POST_DIRECTION_REV",
}
SOCK_XLATE_TYPES = {1: "pre-xlate-fwd", 2: "post-xlate-fwd", 3: "pre-xlate-rev", 4: "post-xlate-rev"}
MESSAGE_TYPE_DROP, MESSAGE_TYPE_TRACE, MESSAGE_TYPE_TRACE_SOCK = 1, 4, 7
OBS_BY_ENUM = {enum: code for code, (_, enum) in OBS_POINTS.items()}
# the order protojson writes a Flow's fields in (flow.proto declaration order)
FLOW_FIELDS = [
    "time",
    "uuid",
    "verdict",
    "drop_reason",
    "auth_type",
    "ethernet",
    "IP",
    "l4",
    "tunnel",
    "source",
    "destination",
    "Type",
    "node_name",
    "node_labels",
    "source_names",
    "destination_names",
    "l7",
    "reply",
    "event_type",
    "source_service",
    "destination_service",
    "traffic_direction",
    "policy_match_type",
    "trace_observation_point",
    "trace_reason",
    "drop_reason_desc",
    "is_reply",
    "debug_capture_point",
    "interface",
    "proxy_port",
    "trace_context",
    "sock_xlate_point",
    "socket_cookie",
    "cgroup_id",
    "Summary",
]


def timestamp(ns: int) -> str:
    """google.protobuf.Timestamp in protojson: RFC 3339, UTC, 0/3/6/9 fraction digits."""
    secs, nanos = divmod(int(ns), 1_000_000_000)
    base = dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{base}.{nanos // 1000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def parse_timestamp(text: str) -> dt.datetime:
    """A protojson timestamp (any fraction length, or none) -> an aware datetime."""
    text = text.strip().removesuffix("Z")
    base, _, frac = text.partition(".")
    t = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return t + dt.timedelta(microseconds=int((frac + "000000")[:6])) if frac else t


def ordered(flow: dict) -> dict:
    """A flow's fields in protojson order (unknown keys last)."""
    out = {k: flow[k] for k in FLOW_FIELDS if k in flow}
    out.update({k: v for k, v in flow.items() if k not in out})
    return out


# ------------------------------------------------------------------ the compact line
def flow_type(f: dict) -> str:
    """GetFlowType(): the observation point, the drop reason, or the socket xlate point."""
    et = f.get("event_type") or {}
    t, sub = int(et.get("type", 0)), int(et.get("sub_type", 0))
    if t == MESSAGE_TYPE_TRACE:
        return OBS_POINTS.get(sub, ("unknown", ""))[0]
    if t == MESSAGE_TYPE_DROP:
        return DROP_REASONS.get(sub, f"{sub}")
    if t == MESSAGE_TYPE_TRACE_SOCK:
        point = f.get("sock_xlate_point", "")
        code = next((k for k, v in SOCK_XLATE_POINTS.items() if v == point), 0)
        return SOCK_XLATE_TYPES.get(code, point or "SOCK_XLATE_POINT_UNKNOWN")
    return "UNKNOWN"


def _ports(f: dict) -> tuple[str, str]:
    l4 = f.get("l4") or {}
    for proto in ("TCP", "UDP", "SCTP"):
        if proto in l4:
            p = l4[proto] or {}
            return str(p.get("source_port", 0)), str(p.get("destination_port", 0))
    return "", ""


def _hostname(ip: str, port: str, ns: str, pod: str, svc: str, names: list[str]) -> str:
    host = ip
    if pod:
        host = posixpath.join(ns, pod)
    elif svc:
        host = posixpath.join(ns, svc)
    elif names:
        host = ",".join(names)
    if port and port != "0":
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def host_names(f: dict) -> tuple[str, str]:
    """Printer.GetHostNames() with IP translation on (hubble observe's default)."""
    ip = f.get("IP")
    if not ip:
        eth = f.get("ethernet") or {}
        return eth.get("source", ""), eth.get("destination", "")
    sport, dport = _ports(f)
    out = []
    for side, svc_key, names_key, port in (
        ("source", "source_service", "source_names", sport),
        ("destination", "destination_service", "destination_names", dport),
    ):
        ep = f.get(side) or {}
        ns, pod, svc = ep.get("namespace", ""), ep.get("pod_name", ""), ""
        if f.get(svc_key):
            ns, svc = f[svc_key].get("namespace", ""), f[svc_key].get("name", "")
        out.append(_hostname(ip.get(side, ""), port, ns, pod, svc, f.get(names_key) or []))
    return out[0], out[1]


def fmt_identity(i: int) -> str:
    """Printer.fmtIdentity(): reserved identities by name."""
    return f"({RESERVED_IDENTITIES[i]})" if i in RESERVED_IDENTITIES else f"(ID:{i})"


def stamp_milli(f: dict, response: dict | None = None) -> str:
    """time.StampMilli of the flow's time ("Jan _2 15:04:05.000")."""
    text = f.get("time") or (response or {}).get("time")
    if not text:
        return "N/A"
    t = parse_timestamp(text)
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"


def compact(response: dict) -> str:
    """One GetFlowsResponse as `hubble observe` prints it (compact output)."""
    f = response.get("flow") or {}
    src, dst = host_names(f)
    sid = fmt_identity(int((f.get("source") or {}).get("identity", 0)))
    did = fmt_identity(int((f.get("destination") or {}).get("identity", 0)))
    arrow = "->"
    if "is_reply" not in f:
        arrow = "<>"
    elif f["is_reply"]:
        src, dst, sid, did, arrow = dst, src, did, sid, "<-"
    verdict = f.get("verdict", "VERDICT_UNKNOWN")
    return (
        f"{stamp_milli(f, response)}: {src} {sid} {arrow} {dst} {did} {flow_type(f)} {verdict} ({f.get('Summary', '')})"
    )
