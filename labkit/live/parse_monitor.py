"""Parsers: `cilium-dbg monitor` (text and ``-j``) -> EVENTS, `hubble observe -o json` -> FLOWS."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone

import pandas as pd

from ..cilium import RESERVED_IDENTITIES, hubble
from ..cilium.reasons import DROP_REASONS
from ..tables import EVENTS, FLOWS

# Reserved identities as `NumericIdentity.String()` prints them.
RESERVED_BY_NAME = {name: ident for ident, name in RESERVED_IDENTITIES.items()}

_SUMMARY_POINTS = [
    (re.compile(r"^-> endpoint (\d+)$"), "to-endpoint"),
    (re.compile(r"^-> proxy(?: port (\d+))?$"), "to-proxy"),
    (re.compile(r"^-> host(?: from)?$"), "to-host"),
    (re.compile(r"^-> stack$"), "to-stack"),
    (re.compile(r"^-> overlay$"), "to-overlay"),
    (re.compile(r"^-> network$"), "to-network"),
    (re.compile(r"^<- endpoint (\d+)$"), "from-endpoint"),
    (re.compile(r"^<- proxy$"), "from-proxy"),
    (re.compile(r"^<- host$"), "from-host"),
    (re.compile(r"^<- stack$"), "from-stack"),
    (re.compile(r"^<- overlay$"), "from-overlay"),
    (re.compile(r"^<- network$"), "from-network"),
]

_TRACE = re.compile(
    r"^(?:CPU \d+: )?(?P<summary>(?:->|<-) .+?)(?: encrypted)?\s+flow (?P<flow>0x[0-9a-fA-F]+) , "
    r"identity (?P<sid>\S+)->(?P<did>\S+) state (?P<state>\S+) ifindex (?P<ifname>\S+) "
    r"orig-ip (?P<orig>\S+): (?P<conn>.*)$"
)
_DROP = re.compile(
    r"^(?:CPU \d+: )?xx drop \((?P<reason>.*?)\) flow (?P<flow>0x[0-9a-fA-F]+) to endpoint (?P<dst>\d+), "
    r"ifindex (?P<ifindex>\d+), file (?P<file>[^,]*?):(?P<line>\d+), , identity (?P<sid>\S+)->(?P<did>\S+): "
    r"(?P<conn>.*)$"
)
# TraceSockNotify.DumpDebug (cilium monitor -v): "CPU 01: [pre-xlate-fwd] cgroup_id: 4253 sock_cookie: 4317,
# dst [10.96.92.233]:80 tcp "
_SOCK = re.compile(
    r"^CPU \d+: \[(?P<point>[a-z-]+)\] cgroup_id: (?P<cgroup>\d+) sock_cookie: (?P<cookie>\d+), "
    r"dst \[(?P<ip>[^\]]+)\]:(?P<port>\d+) (?P<proto>\w+)\s*$"
)
# PolicyVerdictNotify.DumpInfo: "Policy verdict log: flow 0x..., local EP ID 1234, remote ID 5678, proto 6,
# ingress, action allow, auth: disabled, match L3-L4, 10.0.0.1:80 -> 10.0.0.2:1234 tcp SYN"
_VERDICT = re.compile(
    r"^(?:CPU \d+: )?Policy verdict log: flow (?P<flow>0x[0-9a-fA-F]+), local EP ID (?P<ep>\d+), "
    r"remote ID (?P<remote>\S+), proto (?P<proto>\d+), (?P<dir>ingress|egress), action (?P<action>\w+),"
    r".*?, (?P<conn>\S+ -> \S+ .*)$"
)
_L4 = re.compile(r"^(?P<src>\S+) -> (?P<dst>\S+) (?P<proto>tcp|udp|sctp)(?: (?P<flags>.*))?$")
_L3 = re.compile(r"^(?P<src>\S+) -> (?P<dst>\S+) (?P<what>.+)$")
_TCP_ORDER = ("SYN", "ACK", "RST", "FIN")


def identity_number(s: str) -> int:
    s = s.strip()
    if s.isdigit():
        return int(s)
    return RESERVED_BY_NAME.get(s.removeprefix("reserved:"), 0)


def _split_hostport(s: str) -> tuple[str, int | None]:
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port) if port.isdigit() else None
    if s.count(":") == 1:
        host, port = s.split(":")
        return host, int(port) if port.isdigit() else None
    return s, None


def _connection(conn: str) -> dict:
    """GetConnectionSummary text -> proto, addresses, ports, tcp flags."""
    conn = conn.strip()
    m = _L4.match(conn)
    if m:
        src, sport = _split_hostport(m["src"])
        dst, dport = _split_hostport(m["dst"])
        return dict(
            proto=m["proto"].upper(),
            src_ip=src,
            src_port=sport,
            dst_ip=dst,
            dst_port=dport,
            tcp_flags=(m["flags"] or "").strip() if m["proto"] == "tcp" else "",
        )
    m = _L3.match(conn)
    if m:
        what = m["what"]
        proto = "ICMP" if "Echo" in what or "Unreachable" in what or "TimeExceeded" in what else what.split()[0].upper()
        return dict(proto=proto, src_ip=m["src"], dst_ip=m["dst"], tcp_flags="")
    if conn.startswith("ARP"):
        return dict(proto="ARP", tcp_flags="")
    return dict(tcp_flags="")


def parse_monitor(
    text: str,
    node: str,
    *,
    time: datetime | None = None,
    ifindexes: Mapping[str, int] | None = None,
    ifnames: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """`cilium-dbg monitor` output (text lines, or ``-j`` JSON lines) -> EVENTS.

    The text does not carry an ifindex number for traces (only the name) nor an ifname for
    drops; ``ifindexes``/``ifnames`` (from the node's `ip -o link`) fill them when given.
    Lines that are not trace or drop events (banner, logrus lines, -v blocks) are skipped.
    """
    when = time or datetime.now(timezone.utc)
    ifindexes = ifindexes or {}
    ifnames = ifnames or {}
    rows = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            row = _monitor_json(line, node, when, ifindexes, ifnames)
            if row:
                rows.append(row)
            continue
        m = _TRACE.match(line)
        if m:
            point, dst_id, source = "", 0, 0
            for rx, name in _SUMMARY_POINTS:
                pm = rx.match(m["summary"])
                if pm:
                    point = name
                    if name == "to-endpoint":
                        dst_id = int(pm[1])
                    elif name == "from-endpoint":
                        source = int(pm[1])
                    break
            ifname = m["ifname"]
            rows.append(
                dict(
                    time=when,
                    node=node,
                    type="trace",
                    observation_point=point,
                    source=source,
                    dst_id=dst_id,
                    flow=int(m["flow"], 16),
                    src_identity=identity_number(m["sid"]),
                    dst_identity=identity_number(m["did"]),
                    state=m["state"],
                    ifindex=int(ifname) if ifname.isdigit() else ifindexes.get(ifname, 0),
                    ifname=ifname,
                    orig_ip=m["orig"],
                    drop_reason="",
                    line=line,
                    **_connection(m["conn"]),
                )
            )
            continue
        m = _SOCK.match(line)
        if m:
            rows.append(
                dict(
                    time=when,
                    node=node,
                    type="trace-sock",
                    observation_point=m["point"],
                    source=0,
                    dst_id=0,
                    flow=0,
                    src_identity=0,
                    dst_identity=0,
                    state="",
                    ifindex=0,
                    ifname="",
                    orig_ip="",
                    proto=m["proto"].upper() if m["proto"] in ("tcp", "udp") else "",
                    src_ip="",
                    dst_ip=m["ip"],
                    dst_port=int(m["port"]),
                    tcp_flags="",
                    drop_reason="",
                    line=line,
                )
            )
            continue
        m = _VERDICT.match(line)
        if m:
            conn = _connection(m["conn"])
            rows.append(
                dict(
                    time=when,
                    node=node,
                    type="policy-verdict",
                    observation_point="",
                    source=int(m["ep"]),
                    dst_id=0,
                    flow=int(m["flow"], 16),
                    src_identity=identity_number(m["remote"]) if m["dir"] == "ingress" else 0,
                    dst_identity=identity_number(m["remote"]) if m["dir"] == "egress" else 0,
                    state="",
                    ifindex=0,
                    ifname="",
                    orig_ip="",
                    drop_reason="" if m["action"] == "allow" else "Policy denied",
                    line=line,
                    **conn,
                )
            )
            continue
        if line.startswith(">> "):  # AgentNotify: ">> Endpoint regenerated: ..." (agent events)
            rows.append(
                dict(
                    time=when,
                    node=node,
                    type="agent",
                    source=0,
                    dst_id=0,
                    flow=0,
                    src_identity=0,
                    dst_identity=0,
                    ifindex=0,
                    drop_reason="",
                    line=line,
                    tcp_flags="",
                )
            )
            continue
        m = _DROP.match(line)
        if m:
            ifindex = int(m["ifindex"])
            rows.append(
                dict(
                    time=when,
                    node=node,
                    type="drop",
                    observation_point="",
                    source=0,
                    dst_id=int(m["dst"]),
                    flow=int(m["flow"], 16),
                    src_identity=identity_number(m["sid"]),
                    dst_identity=identity_number(m["did"]),
                    state="",
                    ifindex=ifindex,
                    ifname=ifnames.get(ifindex, str(ifindex)),
                    orig_ip="",
                    drop_reason=m["reason"],
                    line=line,
                    **_connection(m["conn"]),
                )
            )
    return EVENTS.frame(rows)


_PORT = re.compile(r"^(\d+)")


def _port(v) -> int | None:
    m = _PORT.match(str(v or ""))
    return int(m[1]) if m else None


def _monitor_json(
    line: str, node: str, when: datetime, ifindexes: Mapping[str, int], ifnames: Mapping[int, str]
) -> dict | None:
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    kind = ev.get("type")
    if kind not in ("trace", "drop"):
        return None
    s = ev.get("summary") or {}
    l3, l4 = s.get("l3") or {}, s.get("l4") or {}
    proto = (
        "TCP"
        if s.get("tcp")
        else "UDP"
        if s.get("udp")
        else "SCTP"
        if s.get("sctp")
        else "ICMP"
        if s.get("icmpv4")
        else "ICMPv6"
        if s.get("icmpv6")
        else ""
    )
    flags = ""
    if s.get("tcp"):
        flags = ", ".join(f for f in _TCP_ORDER if re.search(rf"\b{f}=true\b", s["tcp"]))
    # DropNotifyVerbose spells its interface "Ifindex" (a number); traces give "ifindex" (a name)
    ifname = str(ev.get("ifindex", "") or ev.get("Ifindex", "") or "")
    if kind == "drop" and ifname.isdigit():
        ifname = ifnames.get(int(ifname), ifname)
    point = ev.get("observationPoint", "") if kind == "trace" else ""
    mark = str(ev.get("mark", "0") or "0")
    return dict(
        time=when,
        node=node,
        type=kind,
        observation_point=point,
        source=int(ev.get("source", 0) or 0),
        dst_id=int(ev.get("dstID", 0) or 0),
        flow=int(mark, 16) if mark.startswith("0x") else int(mark or 0),
        src_identity=int(ev.get("srcLabel", 0) or 0),
        dst_identity=int(ev.get("dstLabel", 0) or 0),
        state=ev.get("state", "") if kind == "trace" else "",
        ifindex=int(ev.get("Ifindex", 0) or 0)
        if kind == "drop"
        else int(ifname)
        if ifname.isdigit()
        else ifindexes.get(ifname, 0),
        ifname=ifname,
        orig_ip="",
        proto=proto,
        src_ip=l3.get("src"),
        src_port=_port(l4.get("src")),
        dst_ip=l3.get("dst"),
        dst_port=_port(l4.get("dst")),
        tcp_flags=flags,
        drop_reason=ev.get("reason", "") if kind == "drop" else "",
        line=line,
    )


# --------------------------------------------------------------------------------- hubble

_HUBBLE_TCP_ORDER = ("SYN", "ACK", "RST", "FIN", "PSH", "URG", "ECE", "CWR", "NS")


def _pod(ep: dict) -> str:
    return f"{ep.get('namespace', '')}/{ep['pod_name']}" if ep.get("pod_name") else ""


def _drop_reason(f: dict) -> str:
    """The drop reason as the monitor names it (Hubble: the drop_reason_desc enum)."""
    desc = f.get("drop_reason_desc") or ""
    code = hubble.DROP_REASON_CODES.get(desc) or int(f.get("drop_reason", 0) or 0)
    return DROP_REASONS.get(code, desc) if desc or code else ""


def parse_flows(text: str) -> pd.DataFrame:
    """`hubble observe -o json` (one GetFlowsResponse per line) -> FLOWS."""
    rows = []
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        f = obj.get("flow")
        if not isinstance(f, dict):
            continue  # lost_events, node_status, ...
        ip, l4 = f.get("IP") or {}, f.get("l4") or {}
        proto, sport, dport, flags = "", None, None, ""
        for name in ("TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6"):
            if name in l4:
                proto = name
                d = l4[name] or {}
                sport, dport = d.get("source_port"), d.get("destination_port")
                if name == "TCP":
                    fl = d.get("flags") or {}
                    flags = ", ".join(x for x in _HUBBLE_TCP_ORDER if fl.get(x))
                if name.startswith("ICMP"):
                    sport = dport = None
                break
        src, dst = f.get("source") or {}, f.get("destination") or {}
        stamp = f.get("time") or obj.get("time")
        rows.append(
            dict(
                time=pd.Timestamp(stamp) if stamp else None,  # 0 to 9 fraction digits, each parsed alone
                node=f.get("node_name") or obj.get("node_name", ""),
                verdict=f.get("verdict", ""),
                drop_reason=_drop_reason(f),
                proto=proto,
                src_ip=ip.get("source", ""),
                src_xlated=ip.get("source_xlated", "") or "",
                src_port=sport if sport is not None else (0 if proto in ("TCP", "UDP", "SCTP") else None),
                dst_ip=ip.get("destination", ""),
                dst_port=dport if dport is not None else (0 if proto in ("TCP", "UDP", "SCTP") else None),
                tcp_flags=flags,
                src_pod=_pod(src),
                dst_pod=_pod(dst),
                src_identity=int(src.get("identity", 0) or 0),
                dst_identity=int(dst.get("identity", 0) or 0),
                traffic_direction=f.get("traffic_direction", "TRAFFIC_DIRECTION_UNKNOWN"),
                observation_point=f.get("trace_observation_point", ""),
                type=hubble.flow_type(f),
                trace_reason=f.get("trace_reason", ""),
                is_reply=f.get("is_reply"),
                ifname=(f.get("interface") or {}).get("name", ""),
                summary=f.get("Summary", ""),
            )
        )
    return FLOWS.frame(rows)
