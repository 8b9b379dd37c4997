"""Decoding the agent's event files into EVENTS (monitor) and FLOWS (Hubble-like).

Records come from bpf/lib/trace.h (struct trace_notify + up to 128 packet bytes), stamped
by agent.py. The packet bytes are dissected here, as Cilium's monitor does in userspace:
Ethernet, IPv4, TCP/UDP ports and flags, ICMP echo. Monitor lines follow Cilium's
format strings (pkg/monitor/datapath_trace.go, datapath_drop.go); flows follow Hubble's
parser rules (pkg/hubble/parser/threefour): orig-ip -> source_xlated, traffic direction,
is_reply.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ... import tables
from ...cilium import identity_name
from ...cilium.reasons import FILES, OBS_POINTS, TRACE_STATES, drop_reason
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
        ("pad3", "<u4"),
        ("data", "V128"),
    ]
)
assert NOTIFY.itemsize == 176
TYPE_DROP, TYPE_TRACE = 1, 4
MONITOR_FLAGS = (("SYN", 0x02), ("ACK", 0x10), ("RST", 0x04), ("FIN", 0x01))
HUBBLE_FLAGS = (("SYN", 0x02), ("ACK", 0x10), ("RST", 0x04), ("FIN", 0x01), ("PSH", 0x08), ("URG", 0x20))


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


def dissect(data: bytes) -> dict:
    """Connection summary fields of a captured frame (Cilium's GetConnectionSummary)."""
    d: dict = {
        "proto": "",
        "src_ip": "",
        "dst_ip": "",
        "src_port": None,
        "dst_port": None,
        "flags": 0,
        "icmp": "",
        "src_mac": "",
        "dst_mac": "",
    }
    if len(data) < 14:
        return d
    d["dst_mac"] = ":".join(f"{b:02x}" for b in data[0:6])
    d["src_mac"] = ":".join(f"{b:02x}" for b in data[6:12])
    etype = struct.unpack_from(">H", data, 12)[0]
    if etype == 0x0806:
        d["proto"] = "ARP"
        if len(data) >= 42:
            d["src_ip"], d["dst_ip"] = socket.inet_ntoa(data[28:32]), socket.inet_ntoa(data[38:42])
        return d
    if etype != 0x0800 or len(data) < 34:
        return d
    ihl = (data[14] & 0x0F) * 4
    proto = data[23]
    d["src_ip"], d["dst_ip"] = socket.inet_ntoa(data[26:30]), socket.inet_ntoa(data[30:34])
    l4 = 14 + ihl
    if proto == 6 and len(data) >= l4 + 14:
        d["proto"] = "TCP"
        d["src_port"], d["dst_port"] = struct.unpack_from(">HH", data, l4)
        d["flags"] = data[l4 + 13]
    elif proto == 17 and len(data) >= l4 + 4:
        d["proto"] = "UDP"
        d["src_port"], d["dst_port"] = struct.unpack_from(">HH", data, l4)
    elif proto == 1 and len(data) >= l4 + 1:
        d["proto"] = "ICMP"
        d["icmp"] = {8: "EchoRequest", 0: "EchoReply", 3: "DestinationUnreachable", 11: "TimeExceeded"}.get(
            data[l4], f"Type{data[l4]}"
        )
    else:
        d["proto"] = str(proto)
    return d


def _flags(bits: int, order) -> str:
    return ", ".join(n for n, b in order if bits & b)


def connection_summary(d: dict) -> str:
    if d["proto"] == "TCP":
        return f"{d['src_ip']}:{d['src_port']} -> {d['dst_ip']}:{d['dst_port']} tcp {_flags(d['flags'], MONITOR_FLAGS)}"
    if d["proto"] == "UDP":
        return f"{d['src_ip']}:{d['src_port']} -> {d['dst_ip']}:{d['dst_port']} udp"
    if d["proto"] == "ICMP":
        return f"{d['src_ip']} -> {d['dst_ip']} {d['icmp']}"
    if d["proto"] == "ARP":
        return f"ARP {d['src_ip']} -> {d['dst_ip']}"
    return "unknown packet"


def decode(records: list[tuple[int, bytes]], node: str, ifnames: dict[int, str]) -> list[dict]:
    """Records -> EVENTS rows (with the monitor line) plus private keys for flows."""
    rows = []
    for t, raw in records:
        if len(raw) < NOTIFY.itemsize:
            continue
        n = np.frombuffer(raw[: NOTIFY.itemsize], dtype=NOTIFY)[0]
        data = bytes(n["data"])[: int(n["len_cap"])]
        d = dissect(data)
        ev_type = int(n["type"])
        obs = int(n["subtype"]) if ev_type == TYPE_TRACE else -1
        ifindex = int(n["ifindex"])
        ifname = ifnames.get(ifindex, str(ifindex)) if ifindex else "0"
        orig = socket.inet_ntoa(int(n["orig_ip4"]).to_bytes(4, "big"))
        src_id, dst_id = int(n["src_label"]), int(n["dst_label"])
        ident = f", identity {identity_name(src_id)}->{identity_name(dst_id)}"
        conn = connection_summary(d)
        if ev_type == TYPE_DROP:
            reason = drop_reason(int(n["subtype"]))
            line = (
                f"xx drop ({reason}) flow {int(n['hash']):#x} to endpoint {int(n['dst_id'])}, ifindex {ifindex}, "
                f"file {FILES.get(int(n['file']), str(int(n['file'])))}:{int(n['line'])}, {ident}: {conn}"
            )
            state, point = "", ""
        else:
            reason = ""
            point = OBS_POINTS.get(obs, (f"point-{obs}", ""))[0]
            state = TRACE_STATES.get(int(n["reason"]) & 0x7F, "unknown")
            summary = {
                "to-endpoint": f"-> endpoint {int(n['dst_id'])}",
                "to-stack": "-> stack",
                "to-network": "-> network",
                "to-host": "-> host from",
                "from-network": "<- network",
                "from-endpoint": f"<- endpoint {int(n['source'])}",
            }.get(point, point)
            line = f"{summary} flow {int(n['hash']):#x} {ident} state {state} ifindex {ifname} orig-ip {orig}: {conn}"
        rows.append(
            {
                "time": pd.Timestamp(t, unit="ns", tz="UTC"),
                "node": node,
                "type": "drop" if ev_type == TYPE_DROP else "trace",
                "observation_point": point,
                "source": int(n["source"]),
                "dst_id": int(n["dst_id"]),
                "flow": int(n["hash"]),
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
                "tcp_flags": _flags(d["flags"], MONITOR_FLAGS) if d["proto"] == "TCP" else "",
                "drop_reason": reason,
                "line": line,
                "_hubble_flags": _flags(d["flags"], HUBBLE_FLAGS) if d["proto"] == "TCP" else "",
                "_icmp": d["icmp"],
                "_src_mac": d["src_mac"],
                "_dst_mac": d["dst_mac"],
                "_obs": obs,
            }
        )
    return rows


def select(
    rows: list[dict], from_: int | None = None, to: int | None = None, related_to: int | None = None
) -> list[dict]:
    """Cilium monitor's --from / --to / --related-to endpoint filters."""
    out = []
    for r in rows:
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


def monitor_json(r: dict) -> str:
    """`cilium monitor -j` object for one event (a subset of TraceNotifyVerbose)."""
    doc = {"cpu": "CPU 00:", "type": r["type"], "mark": f"{r['flow']:#x}"}
    if r["type"] == "trace":
        doc.update(
            ifindex=r["ifname"],
            state=r["state"],
            observationPoint=r["observation_point"],
            traceSummary=r["line"].split(" flow ")[0],
        )
    else:
        doc.update(reason=r["drop_reason"])
    doc.update(
        source=r["source"],
        srcLabel=r["src_identity"],
        dstLabel=r["dst_identity"],
        dstID=r["dst_id"],
        summary={
            "l2": {"src": r["_src_mac"], "dst": r["_dst_mac"]},
            "l3": {"src": r["src_ip"], "dst": r["dst_ip"]},
            "l4": {"src": str(r["src_port"] or ""), "dst": str(r["dst_port"] or "")},
        },
    )
    return json.dumps(doc, separators=(",", ":"))


# ------------------------------------------------------------------ flows
def flows(rows: list[dict], pods_by_ip: dict[str, dict]) -> list[dict]:
    """Hubble flows (one per trace/drop event) as dicts: FLOWS rows + the JSON document."""
    out = []
    for r in rows:
        src_ip, xlated = r["src_ip"], ""
        if r["type"] == "trace" and r["orig_ip"] != "0.0.0.0" and r["orig_ip"] != r["src_ip"]:
            src_ip, xlated = r["orig_ip"], r["src_ip"]
        sp, dp = pods_by_ip.get(src_ip), pods_by_ip.get(r["dst_ip"])
        is_reply = (r["state"] == "reply") if r["type"] == "trace" else None
        is_source_ep = sp is not None and sp.get("endpoint_id") == r["source"] and sp.get("node") == r["node"]
        if r["type"] != "trace":
            direction = "EGRESS" if is_source_ep else "TRAFFIC_DIRECTION_UNKNOWN"
        elif is_source_ep != bool(is_reply) or xlated:
            direction = "EGRESS"
        else:
            direction = "INGRESS"
        obs = OBS_POINTS.get(r["_obs"], ("", ""))[1] if r["type"] == "trace" else ""
        proto = {"ICMP": "ICMPv4"}.get(r["proto"], r["proto"])
        summary = (
            f"TCP Flags: {r['_hubble_flags']}"
            if r["proto"] == "TCP"
            else f"ICMPv4 {r['_icmp']}"
            if r["proto"] == "ICMP"
            else r["proto"]
        )
        out.append(
            {
                "time": r["time"],
                "node": r["node"],
                "verdict": "DROPPED" if r["type"] == "drop" else "FORWARDED",
                "drop_reason": r["drop_reason"],
                "proto": proto,
                "src_ip": src_ip,
                "src_xlated": xlated,
                "src_port": r["src_port"],
                "dst_ip": r["dst_ip"],
                "dst_port": r["dst_port"],
                "tcp_flags": r["_hubble_flags"],
                "src_pod": sp["key"] if sp else "",
                "dst_pod": dp["key"] if dp else "",
                "src_identity": r["src_identity"],
                "dst_identity": r["dst_identity"],
                "traffic_direction": direction,
                "observation_point": obs,
                "trace_reason": r["state"].upper(),
                "is_reply": is_reply,
                "ifname": r["ifname"] if r["ifindex"] else "",
                "summary": summary,
                "_json": _flow_json(r, src_ip, xlated, sp, dp, is_reply, direction, obs, summary),
            }
        )
    return out


def _endpoint(p: dict | None, identity: int) -> dict:
    if not p:
        return {"identity": identity}
    doc = {
        "ID": p["endpoint_id"],
        "identity": identity,
        "cluster_name": "default",
        "namespace": p["namespace"],
        "labels": [f"k8s:{k}={v}" for k, v in sorted(p["labels"].items())]
        + [f"k8s:io.kubernetes.pod.namespace={p['namespace']}"],
        "pod_name": p["name"],
    }
    if p.get("owner"):
        doc["workloads"] = [{"name": p["owner"], "kind": "Deployment"}]
    return doc


def _flow_json(r, src_ip, xlated, sp, dp, is_reply, direction, obs, summary) -> dict:
    ts = r["time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ip = {"source": src_ip, "destination": r["dst_ip"], "ipVersion": "IPv4"}
    if xlated:
        ip["source_xlated"] = xlated
    flow: dict = {"time": ts, "verdict": "DROPPED" if r["type"] == "drop" else "FORWARDED"}
    if r["type"] == "drop":
        flow["drop_reason_desc"] = r["drop_reason"].upper().replace(" ", "_")
    flow["ethernet"] = {"source": r["_src_mac"], "destination": r["_dst_mac"]}
    flow["IP"] = ip
    if r["proto"] == "TCP":
        flow["l4"] = {
            "TCP": {
                "source_port": r["src_port"],
                "destination_port": r["dst_port"],
                "flags": {n: True for n in r["_hubble_flags"].split(", ") if n},
            }
        }
    elif r["proto"] == "UDP":
        flow["l4"] = {"UDP": {"source_port": r["src_port"], "destination_port": r["dst_port"]}}
    elif r["proto"] == "ICMP":
        flow["l4"] = {"ICMPv4": {"type": {"EchoRequest": 8, "EchoReply": 0}.get(r["_icmp"], 0)}}
    flow["source"] = _endpoint(sp, r["src_identity"])
    flow["destination"] = _endpoint(dp, r["dst_identity"])
    flow.update({"Type": "L3_L4", "node_name": r["node"], "event_type": {"type": 1 if r["type"] == "drop" else 4}})
    if r["type"] == "trace" and r["_obs"]:
        flow["event_type"]["sub_type"] = r["_obs"]
    flow["traffic_direction"] = direction
    if obs:
        flow["trace_observation_point"] = obs
    if r["state"]:
        flow["trace_reason"] = r["state"].upper()
    if is_reply is not None:
        flow["is_reply"] = is_reply
    if r["ifindex"]:
        flow["interface"] = {"index": r["ifindex"], "name": r["ifname"]}
    flow["Summary"] = summary
    return {"flow": flow, "node_name": r["node"], "time": ts}


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
