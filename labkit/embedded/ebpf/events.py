"""Decoding the agent's event files into EVENTS (monitor) and FLOWS (Hubble).

Records come from bpf/lib/trace.h, stamped by agent.py: struct trace_notify + up to 128
packet bytes for traces and drops, struct trace_sock_notify for socket-LB translations.
The packet bytes are dissected here, as Cilium's monitor does in userspace. Monitor text
and JSON follow labkit/cilium/monitor.py (Cilium's pkg/monitor); flows follow Hubble's
parsers (pkg/hubble/parser/threefour and sock) and are printed by labkit/cilium/hubble.py.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ... import tables
from ...cilium import hubble
from ...cilium import monitor as mon
from ...cilium.reasons import OBS_POINTS, TRACE_STATES, drop_reason
from .agent import REC_HDR

NOTIFY = np.dtype(
    [
        ("type", "u1"),
        ("subtype", "u1"),
        ("source", "<u2"),
        ("hash", "<u4"),
        ("len_orig", "<u4"),
        ("len_cap", "<u2"),
        ("version", "<u2"),
        ("src_label", "<u4"),
        ("dst_label", "<u4"),
        ("dst_id", "<u2"),
        ("reason", "u1"),
        ("flags", "u1"),
        ("ifindex", "<u4"),
        ("orig_ip4", ">u4"),
        ("line", "<u4"),
        ("file", "<u4"),
        ("cpu", "<u4"),
        ("data", "V128"),
    ]
)
assert NOTIFY.itemsize == 176
# struct trace_sock_notify (Cilium's 38 bytes) + labkit's cpu and netns cookie
SOCK = struct.Struct("<BB16sHQQBBIQ")
assert SOCK.size == 50
TYPE_DROP, TYPE_TRACE, TYPE_TRACE_SOCK = 1, 4, 7
HUBBLE_FLAGS = (("SYN", 0x02), ("ACK", 0x10), ("RST", 0x04), ("FIN", 0x01), ("PSH", 0x08), ("URG", 0x20))
# Flow.l4.TCP.flags in protojson: declaration order of TCPFlags
PROTO_FLAGS = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20))


def read_records(events_dir: Path, node: str, since_ns: int = 0) -> list[tuple[int, bytes]]:
    """(time_ns, raw) records of ``node``, oldest first (rotated file first)."""
    out: list[tuple[int, bytes]] = []
    for path in (events_dir / f"{node}.bin.1", events_dir / f"{node}.bin"):
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            continue
        off = 0
        while off + REC_HDR.size <= len(blob):
            t, n = REC_HDR.unpack_from(blob, off)
            off += REC_HDR.size
            if off + n > len(blob):
                break
            if t >= since_ns:
                out.append((t, blob[off : off + n]))
            off += n
    return out


def _flags(bits: int, order) -> str:
    return ", ".join(n for n, b in order if bits & b)


def decode(
    records: list[tuple[int, bytes]], node: str, ifnames: dict[int, str], sock_pods: dict[int, dict] | None = None
) -> list[dict]:
    """Records -> EVENTS rows (with the monitor line) plus private keys for -j and flows.
    ``sock_pods``: netns cookie -> pod (for trace-sock events: who made the socket)."""
    rows = []
    for t, raw in records:
        if raw[:1] == bytes([TYPE_TRACE_SOCK]) and len(raw) >= SOCK.size:
            rows.append(_decode_sock(t, raw, node, sock_pods or {}))
            continue
        if len(raw) < NOTIFY.itemsize:
            continue
        n = np.frombuffer(raw[: NOTIFY.itemsize], dtype=NOTIFY)[0]
        data = bytes(n["data"])[: int(n["len_cap"])]
        d = mon.dissect(data)
        ev_type = int(n["type"])
        obs = int(n["subtype"]) if ev_type == TYPE_TRACE else -1
        ifindex = int(n["ifindex"])
        ifname = ifnames.get(ifindex, str(ifindex)) if ifindex else "0"
        orig = socket.inet_ntoa(int(n["orig_ip4"]).to_bytes(4, "big"))
        src_id, dst_id = int(n["src_label"]), int(n["dst_label"])
        conn = mon.connection_summary(d)
        flow = int(n["hash"])
        if ev_type == TYPE_DROP:
            reason = drop_reason(int(n["subtype"]))
            line = mon.drop_line(
                reason, flow, int(n["dst_id"]), ifindex, int(n["file"]), int(n["line"]), src_id, dst_id, conn
            )
            state, point, summary = "", "", ""
        else:
            reason = ""
            point = OBS_POINTS.get(obs, (f"point-{obs}", ""))[0]
            state = TRACE_STATES.get(int(n["reason"]) & 0x7F, "unknown")
            summary = mon.trace_summary(obs, int(n["dst_id"]), int(n["source"]), ifname)
            line = mon.trace_line(summary, flow, src_id, dst_id, state, ifname, orig, conn)
        rows.append(
            {
                "time": pd.Timestamp(t, unit="ns", tz="UTC"),
                "node": node,
                "type": "drop" if ev_type == TYPE_DROP else "trace",
                "observation_point": point,
                "source": int(n["source"]),
                "dst_id": int(n["dst_id"]),
                "flow": flow,
                "src_identity": src_id,
                "dst_identity": dst_id,
                "state": state,
                "ifindex": ifindex,
                "ifname": ifname,
                "orig_ip": orig,
                "proto": d["proto"],
                "src_ip": d["src_ip"],
                "src_port": d["src_port"],
                "dst_ip": d["dst_ip"],
                "dst_port": d["dst_port"],
                "tcp_flags": mon.tcp_flags(d["flags"]) if d["proto"] == "TCP" else "",
                "drop_reason": reason,
                "line": line,
                "_t": t,
                "_d": d,
                "_data": data,
                "_obs": obs,
                "_cpu": int(n["cpu"]),
                "_len": int(n["len_orig"]),
                "_code": int(n["subtype"]),
                "_file": int(n["file"]),
                "_line": int(n["line"]),
                "_summary": summary,
            }
        )
    return rows


def _decode_sock(t: int, raw: bytes, node: str, sock_pods: dict[int, dict]) -> dict:
    typ, xlate, dst, port, cookie, cgroup, l4, flags, cpu, netns = SOCK.unpack_from(raw)
    ip = socket.inet_ntoa(dst[:4])
    pod = sock_pods.get(netns) or {}
    return {
        "time": pd.Timestamp(t, unit="ns", tz="UTC"),
        "node": node,
        "type": "trace-sock",
        "observation_point": mon.XLATE_POINTS.get(xlate, "unknown"),
        "source": int(pod.get("endpoint_id", 0)),
        "dst_id": 0,
        "flow": 0,
        "src_identity": 0,
        "dst_identity": 0,
        "state": "",
        "ifindex": 0,
        "ifname": "",
        "orig_ip": "",
        "proto": {1: "TCP", 2: "UDP"}.get(l4, ""),
        "src_ip": pod.get("ip", ""),
        "src_port": None,
        "dst_ip": ip,
        "dst_port": port,
        "tcp_flags": "",
        "drop_reason": "",
        "line": mon.sock_line(cpu, xlate, cgroup, cookie, ip, port, l4),
        "_t": t,
        "_xlate": xlate,
        "_cookie": cookie,
        "_cgroup": cgroup,
        "_l4": l4,
        "_cpu": cpu,
        "_pod": pod,
    }


def select(
    rows: list[dict],
    from_: int | None = None,
    to: int | None = None,
    related_to: int | None = None,
    *,
    sock_unfiltered: bool = False,
) -> list[dict]:
    """Cilium monitor's --from / --to / --related-to endpoint filters. ``sock_unfiltered``:
    as `cilium monitor` does, trace-sock events pass every filter (format.go's
    traceSockEvents never calls match())."""
    out = []
    for r in rows:
        if not (sock_unfiltered and r["type"] == "trace-sock"):
            if from_ is not None and r["source"] != from_:
                continue
            if to is not None and r["dst_id"] != to:
                continue
            if related_to is not None and related_to not in (r["source"], r["dst_id"]):
                continue
        out.append(r)
    return out


def events_frame(rows: list[dict]) -> pd.DataFrame:
    return tables.EVENTS.frame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])


def monitor_json(r: dict) -> str | None:
    """`cilium monitor -j` for one event; None for trace-sock events (the monitor prints
    those only with -v, never as JSON)."""
    if r["type"] == "trace":
        return mon.trace_json(
            r["_cpu"], r["flow"], r["ifname"], r["state"], r["observation_point"], r["_summary"], r["source"],
            r["_len"], r["src_identity"], r["dst_identity"], r["dst_id"], r["_data"], r["_d"],
        )  # fmt: skip
    if r["type"] == "drop":
        return mon.drop_json(
            r["_cpu"], r["flow"], r["drop_reason"], r["source"], r["_len"], r["src_identity"], r["dst_identity"],
            r["dst_id"], r["_line"], r["_file"], r["ifindex"], r["_data"], r["_d"],
        )  # fmt: skip
    return None


# ------------------------------------------------------------------ flows
class Cluster:
    """What Hubble's getters know of the cluster (endpoints, identities, services)."""

    def __init__(
        self,
        pods_by_ip: dict[str, dict],
        identity_of: Callable[[str, str], int],
        services: dict[tuple[str, int], dict],
        node_labels: dict[str, list[str]],
        host_endpoints: dict[str, int],
    ) -> None:
        self.pods_by_ip, self.identity_of, self.services = pods_by_ip, identity_of, services
        self.node_labels, self.host_endpoints = node_labels, host_endpoints

    def endpoint(self, ip: str, node: str, datapath_identity: int) -> tuple[dict, int]:
        """ResolveEndpoint(): the flow's endpoint and its local endpoint id (0 if remote)."""
        p = self.pods_by_ip.get(ip)
        if p:
            local = p["node"] == node
            doc: dict = {}
            if local:
                doc["ID"] = p["endpoint_id"]
            doc["identity"] = p["identity"]
            doc["cluster_name"] = "default"
            doc["namespace"] = p["namespace"]
            doc["labels"] = p["hubble_labels"]
            doc["pod_name"] = p["name"]
            if p.get("owner"):
                doc["workloads"] = [{"name": p["owner"], "kind": "Deployment"}]
            return doc, (p["endpoint_id"] if local else 0)
        ident = self.identity_of(ip, node) or datapath_identity or (2 if ip else 0)
        doc = {"identity": ident} if ident else {}
        labels = RESERVED_LABELS.get(ident)
        if labels:
            doc["labels"] = labels
        host_ep = self.host_endpoints.get(node, 0) if ident == 1 else 0
        if host_ep:
            doc = {"ID": host_ep, **doc}
        return doc, host_ep


RESERVED_LABELS = {
    1: ["reserved:host"],
    2: ["reserved:world"],
    6: ["reserved:remote-node"],
    7: ["reserved:kube-apiserver", "reserved:remote-node"],
}


def flows(rows: list[dict], cluster: Cluster) -> list[dict]:
    """Hubble flows (one per event) as dicts: FLOWS rows + the GetFlowsResponse document."""
    out = []
    for r in rows:
        doc = _sock_flow(r, cluster) if r["type"] == "trace-sock" else _flow(r, cluster)
        f = doc["flow"]
        l4 = f.get("l4") or {}
        proto = next(iter(l4), "")
        ports = l4.get(proto) or {}
        src, dst = f.get("source") or {}, f.get("destination") or {}
        ip = f.get("IP") or {}
        out.append(
            {
                "time": r["time"],
                "node": r["node"],
                "verdict": f.get("verdict", ""),
                "drop_reason": r["drop_reason"],
                "proto": proto,
                "src_ip": ip.get("source", ""),
                "src_xlated": ip.get("source_xlated", ""),
                "src_port": ports.get("source_port") if proto in ("TCP", "UDP") else None,
                "dst_ip": ip.get("destination", ""),
                "dst_port": ports.get("destination_port") if proto in ("TCP", "UDP") else None,
                "tcp_flags": r.get("_hflags", ""),
                "src_pod": f"{src['namespace']}/{src['pod_name']}" if src.get("pod_name") else "",
                "dst_pod": f"{dst['namespace']}/{dst['pod_name']}" if dst.get("pod_name") else "",
                "src_identity": int(src.get("identity", 0)),
                "dst_identity": int(dst.get("identity", 0)),
                "traffic_direction": f.get("traffic_direction", "TRAFFIC_DIRECTION_UNKNOWN"),
                "observation_point": f.get("trace_observation_point", ""),
                "type": hubble.flow_type(f),
                "trace_reason": f.get("trace_reason", ""),
                "is_reply": f.get("is_reply"),
                "ifname": (f.get("interface") or {}).get("name", ""),
                "summary": f.get("Summary", ""),
                "_json": doc,
            }
        )
    return out


def _uuid(r: dict) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{r['node']}/{r['_t']}/{r['flow']}/{r['type']}/{r['line']}"))


def _l4(r: dict, d: dict) -> tuple[dict | None, str]:
    if d["proto"] == "TCP":
        flags = {n: True for n, b in PROTO_FLAGS if d["flags"] & b}
        tcp: dict = {"source_port": d["src_port"], "destination_port": d["dst_port"]}
        if flags:
            tcp["flags"] = flags
        r["_hflags"] = _flags(d["flags"], HUBBLE_FLAGS)
        return {"TCP": tcp}, f"TCP Flags: {r['_hflags']}"
    if d["proto"] == "UDP":
        return {"UDP": {"source_port": d["src_port"], "destination_port": d["dst_port"]}}, "UDP"
    if d["proto"] == "ICMP":
        icmp = {"type": d["icmp_type"]} if d["icmp_type"] else {}
        return {"ICMPv4": icmp}, f"ICMPv4 {d['icmp']}"
    if d["proto"] == "ARP":
        return None, "ARP"
    return None, "Unknown"


def _flow(r: dict, cluster: Cluster) -> dict:
    """pkg/hubble/parser/threefour Parser.Decode() for a trace or drop event."""
    d = r["_d"]
    is_trace = r["type"] == "trace"
    src_ip, xlated = d["src_ip"], ""
    if is_trace and r["orig_ip"] not in ("0.0.0.0", "", d["src_ip"]):
        src_ip, xlated = r["orig_ip"], d["src_ip"]
    src, src_ep = cluster.endpoint(src_ip, r["node"], r["src_identity"])
    dst, _ = cluster.endpoint(d["dst_ip"], r["node"], r["dst_identity"])
    state = r["state"]
    known = is_trace and state in hubble.TRACE_REASONS
    is_reply = state == "reply" if known else None
    direction = "TRAFFIC_DIRECTION_UNKNOWN"
    if not is_trace and r["source"]:
        direction = "EGRESS" if r["source"] == src_ep else "INGRESS"
    elif known and r["source"]:
        snat = r["orig_ip"] not in ("0.0.0.0", "")
        direction = "EGRESS" if (r["source"] == src_ep) != bool(is_reply) or snat else "INGRESS"
    l4, summary = _l4(r, d)
    f: dict = {"time": hubble.timestamp(r["_t"]), "uuid": _uuid(r), "verdict": "FORWARDED" if is_trace else "DROPPED"}
    if not is_trace:
        f["drop_reason"] = r["_code"]
    if d["src_mac"]:
        f["ethernet"] = {"source": d["src_mac"], "destination": d["dst_mac"]}
    if d["src_ip"] and d["proto"] != "ARP":
        ip = {"source": src_ip}
        if xlated:
            ip["source_xlated"] = xlated
        ip.update(destination=d["dst_ip"], ipVersion="IPv4")
        f["IP"] = ip
    if l4 is not None:
        f["l4"] = l4
    f["source"], f["destination"] = src, dst
    f["Type"] = "L3_L4"
    f["node_name"] = r["node"]
    f["node_labels"] = cluster.node_labels.get(r["node"], [])
    if is_reply:
        f["reply"] = True
    et = {"type": hubble.MESSAGE_TYPE_TRACE if is_trace else hubble.MESSAGE_TYPE_DROP}
    sub = r["_obs"] if is_trace else r["_code"]
    if sub:
        et["sub_type"] = sub
    f["event_type"] = et
    for key, ip_, port in (
        ("source_service", src_ip, d["src_port"]),
        ("destination_service", d["dst_ip"], d["dst_port"]),
    ):
        svc = cluster.services.get((ip_, int(port or 0)))
        if svc:
            f[key] = svc
    if direction != "TRAFFIC_DIRECTION_UNKNOWN":
        f["traffic_direction"] = direction
    if is_trace:
        point = OBS_POINTS.get(r["_obs"], ("", ""))[1]
        if point:
            f["trace_observation_point"] = point
        if known:
            f["trace_reason"] = hubble.TRACE_REASONS[state]
    else:
        f["drop_reason_desc"] = hubble.DROP_REASON_DESC.get(r["_code"], f"DROP_REASON_{r['_code']}")
    if is_reply is not None:
        f["is_reply"] = is_reply
    if is_trace and r["ifindex"]:
        f["interface"] = {"index": r["ifindex"], "name": r["ifname"]}
    f["Summary"] = summary
    return {"flow": hubble.ordered(f), "node_name": r["node"], "time": f["time"]}


def _sock_flow(r: dict, cluster: Cluster) -> dict:
    """pkg/hubble/parser/sock Parser.Decode(): the pod (by its socket), the address it
    asked for (pre) or got (post); reversed on the way back (rev)."""
    pod = r["_pod"]
    src_ip, dst_ip = pod.get("ip", ""), r["dst_ip"]
    src_port, dst_port = 0, r["dst_port"]
    src, _ = cluster.endpoint(src_ip, r["node"], 0) if src_ip else ({}, 0)
    dst, _ = cluster.endpoint(dst_ip, r["node"], 0)
    if r["_xlate"] in (3, 4):  # the reverse path: addresses swapped
        src_ip, dst_ip, src_port, dst_port, src, dst = dst_ip, src_ip, dst_port, src_port, dst, src
    proto = {1: "TCP", 2: "UDP"}.get(r["_l4"])
    f: dict = {
        "time": hubble.timestamp(r["_t"]),
        "uuid": _uuid(r),
        "verdict": "TRACED" if r["_xlate"] in (1, 3) else "TRANSLATED",
        "IP": {"source": src_ip, "destination": dst_ip, "ipVersion": "IPv4"},
    }
    if proto:
        ports = {k: v for k, v in (("source_port", src_port), ("destination_port", dst_port)) if v}
        f["l4"] = {proto: ports}
    f["source"], f["destination"] = src, dst
    f["Type"] = "SOCK"
    f["node_name"] = r["node"]
    f["node_labels"] = cluster.node_labels.get(r["node"], [])
    f["event_type"] = {"type": hubble.MESSAGE_TYPE_TRACE_SOCK, "sub_type": r["_xlate"]}
    for key, ip_, port in (("source_service", src_ip, src_port), ("destination_service", dst_ip, dst_port)):
        svc = cluster.services.get((ip_, int(port or 0)))
        if svc:
            f[key] = svc
    f["sock_xlate_point"] = hubble.SOCK_XLATE_POINTS.get(r["_xlate"], "SOCK_XLATE_POINT_UNKNOWN")
    f["socket_cookie"] = str(r["_cookie"])
    f["cgroup_id"] = str(r["_cgroup"])
    f["Summary"] = proto or "Unknown"
    return {"flow": hubble.ordered(f), "node_name": r["node"], "time": f["time"]}


def flows_frame(fl: list[dict]) -> pd.DataFrame:
    return tables.FLOWS.frame([{k: v for k, v in f.items() if not k.startswith("_")} for f in fl])


def follow(
    events_dir: Path, nodes: Iterable[str], seconds: float | None, poll: float = 0.2
) -> Iterator[tuple[str, list]]:
    """New records of ``nodes`` as they arrive, until ``seconds`` have passed (None: forever)."""
    offsets = {}
    for n in nodes:
        p = events_dir / f"{n}.bin"
        offsets[n] = p.stat().st_size if p.exists() else 0
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        for n in offsets:
            p = events_dir / f"{n}.bin"
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[n]:  # rotated
                offsets[n] = 0
            if size > offsets[n]:
                with open(p, "rb") as f:
                    f.seek(offsets[n])
                    blob = f.read(size - offsets[n])
                recs, used = _parse_blob(blob)
                offsets[n] += used
                if recs:
                    yield n, recs
        time.sleep(poll)


def _parse_blob(blob: bytes) -> tuple[list[tuple[int, bytes]], int]:
    out, off = [], 0
    while off + REC_HDR.size <= len(blob):
        t, n = REC_HDR.unpack_from(blob, off)
        if off + REC_HDR.size + n > len(blob):
            break
        out.append((t, blob[off + REC_HDR.size : off + REC_HDR.size + n]))
        off += REC_HDR.size + n
    return out, off


def now_ns() -> int:
    return time.time_ns()
