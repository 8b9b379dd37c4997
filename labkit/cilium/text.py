"""Text exactly as the Cilium CLI prints it, from labkit's tables (Cilium's cilium-dbg/cmd
and pkg/maps/* String() methods; hubble/pkg/printer for `hubble observe`).

Two-column tables mimic Go's tabwriter(minwidth 5, padding 3) with the trailing tab of
Cilium's TablePrinter (so data rows end in spaces); CT lines end with " " as Cilium's do.
JSON (-o json) is Cilium's command.PrintOutput: json.MarshalIndent with two spaces, so Go
maps ({key: [value]} for endpoint/ipcache/lb) come out with sorted keys and structs (CT
and NAT records, models.Service) in field order.
"""

from __future__ import annotations

import json
import socket
import struct

import pandas as pd


def tabwriter(rows: list[list[str]], trailing: bool = True) -> str:
    """Go text/tabwriter with minwidth=5, padding=3: every cell but the last is padded."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, c in enumerate(r[:-1] if not trailing else r):
            widths[i] = max(widths[i], len(c))
    out = []
    for r in rows:
        cells = []
        last = len(r) - 1
        for i, c in enumerate(r):
            if i == last and not trailing:
                cells.append(c)
            else:
                cells.append(c.ljust(max(widths[i] + 3, 5)))
        out.append("".join(cells))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ endpoint list
def endpoint_value(r) -> str:
    if r.is_host:
        return "(localhost)"
    return (
        f"id={int(r.endpoint_id):<5d} sec_id={int(r.identity):<5d} flags=0x{int(r.flags):04X} "
        f"ifindex={int(r.ifindex):<3d} mac={r.mac} nodemac={r.node_mac} parent_ifindex=0"
    )


def _go_map(pairs: list[tuple[str, str]]) -> str:
    """A map[string][]string as json.MarshalIndent prints it (keys sorted)."""
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return json.dumps(out, indent=2, sort_keys=True)


def endpoint_list(df: pd.DataFrame, output: str = "text") -> str:
    pairs = [(f"{r.ip}:0", endpoint_value(r)) for r in df.itertuples()]
    if output == "json":
        return _go_map(pairs)
    # header row ends with a newline, no trailing tab, in Cilium's TablePrinter
    rows = [["IP ADDRESS", "LOCAL ENDPOINT INFO"]] + [[k, v] for k, v in pairs]
    text = tabwriter(rows)
    lines = text.splitlines()
    lines[0] = lines[0].rstrip()
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ ct list
def ct_line(r, time_diff_now: int | None = None, last_rx: int = 0, last_tx: int = 0) -> str:
    rel = "related " if r.related else ""
    diff = f" (remaining: {int(r.expires) - time_diff_now} sec(s))" if time_diff_now is not None else ""
    return (
        f"{r.proto} {r.direction} {r.src_ip}:{int(r.src_port)} -> {r.dst_ip}:{int(r.dst_port)} {rel}"
        f"expires={int(r.expires)}{diff} Packets={int(r.packets)} Bytes={int(r.bytes)} "
        f"RxFlagsSeen=0x{int(r.rx_flags_seen):02x} LastRxReport={int(last_rx)} "
        f"TxFlagsSeen=0x{int(r.tx_flags_seen):02x} LastTxReport={int(last_tx)} "
        f"Flags=0x{int(r.flags):04x} [ {r.flag_names + ' ' if r.flag_names else ''}] RevNAT={int(r.rev_nat)} "
        f"SourceSecurityID={int(r.src_identity)} IfIndex={int(r.ifindex)} BackendID={int(r.backend_id)} "
    )


def ct_list(df: pd.DataFrame, output: str = "text", time_diff_now: int | None = None) -> str:
    rx = df.attrs.get("last_rx_report") or [0] * len(df)
    tx = df.attrs.get("last_tx_report") or [0] * len(df)
    if output == "json":
        return json.dumps([_ct_record(r, a, b) for r, a, b in zip(df.itertuples(), rx, tx)], indent=2)
    lines = [(r.proto, ct_line(r, time_diff_now, a, b)) for r, a, b in zip(df.itertuples(), rx, tx)]
    tcp = [line for proto, line in lines if proto == "TCP"]
    other = [line for proto, line in lines if proto != "TCP"]
    # one block per map (TCP, then any), each followed by a blank line
    return "".join(line + "\n" for line in tcp) + "\n" + "".join(line + "\n" for line in other) + "\n"


def _ip_list(ip: str) -> list[int]:
    return list(socket.inet_aton(ip))


def _raw16(port: int) -> int:
    """A network-order u16 as Go's encoding/json shows it on a little-endian node."""
    return struct.unpack("<H", struct.pack(">H", int(port)))[0]


def _ct_record(r, last_rx: int = 0, last_tx: int = 0) -> dict:
    flags = {"OUT": 0, "IN": 1, "SVC": 4}[r.direction] | (2 if r.related else 0)
    if r.direction == "SVC":
        key = {
            "DestAddr": _ip_list(r.dst_ip),
            "SourceAddr": _ip_list(r.src_ip),
            "DestPort": _raw16(r.src_port),
            "SourcePort": _raw16(r.dst_port),
        }
    else:
        key = {
            "DestAddr": _ip_list(r.src_ip),
            "SourceAddr": _ip_list(r.dst_ip),
            "DestPort": _raw16(r.dst_port),
            "SourcePort": _raw16(r.src_port),
        }
    key.update(NextHeader={"TCP": 6, "UDP": 17, "ICMP": 1}.get(r.proto, 0), Flags=flags)
    val = {
        "Reserved0": 0,
        "BackendID": int(r.backend_id),
        "Packets": int(r.packets),
        "Bytes": int(r.bytes),
        "Lifetime": int(r.expires),
        "Flags": int(r.flags),
        "RevNAT": _raw16(r.rev_nat),
        "IfIndex": int(r.ifindex),
        "TxFlagsSeen": int(r.tx_flags_seen),
        "RxFlagsSeen": int(r.rx_flags_seen),
        "SourceSecurityID": int(r.src_identity),
        "LastTxReport": int(last_tx),
        "LastRxReport": int(last_rx),
    }
    return {"Key": key, "Value": val}


# ------------------------------------------------------------------ nat list
def nat_line(r) -> str:
    created = f"{int(r.created_ago_s)}sec ago" if pd.notna(r.created_ago_s) else "? (raw 0)"
    return (
        f"{r.proto} {r.direction} {r.src_ip}:{int(r.src_port)} -> {r.dst_ip}:{int(r.dst_port)} "
        f"XLATE_{r.xlate} {r.xlate_ip}:{int(r.xlate_port)} Created={created} NeedsCT={int(r.needs_ct)}"
    )


def nat_list(df: pd.DataFrame, output: str = "text") -> str:
    if output == "json":
        recs = []
        created = df.attrs.get("created") or [0] * len(df)
        for r, c in zip(df.itertuples(), created):
            recs.append(
                {
                    "Key": {
                        "DestAddr": _ip_list(r.dst_ip),
                        "SourceAddr": _ip_list(r.src_ip),
                        "DestPort": _raw16(r.dst_port),
                        "SourcePort": _raw16(r.src_port),
                        "NextHeader": {"TCP": 6, "UDP": 17, "ICMP": 1}.get(r.proto, 0),
                        "Flags": 1 if r.direction == "IN" else 0,
                    },
                    "Value": {
                        "Created": int(c),
                        "NeedsCT": int(r.needs_ct),
                        "Pad1": 0,
                        "Pad2": 0,
                        "Addr": _ip_list(r.xlate_ip),
                        "Port": _raw16(r.xlate_port),
                    },
                }
            )
        return json.dumps(recs, indent=2)
    return "".join(nat_line(r) + "\n" for r in df.itertuples()) + "\n"


# ------------------------------------------------------------------ lb list / service list
def _lb_pairs(df: pd.DataFrame, protos: dict[int, str]) -> list[tuple[str, str]]:
    pairs = []
    for r in df.itertuples():
        key = f"{r.frontend_ip}:{int(r.frontend_port)}/{r.proto} ({int(r.slot)})"
        if r.slot == 0:
            val = f"0.0.0.0:0 ({int(r.rev_nat)}) (0) [{r.flags}] "
        elif r.flags:
            val = r.flags
        else:
            proto = protos.get(int(r.backend_id), r.proto) if pd.notna(r.backend_id) else r.proto
            val = f"{r.backend_ip}:{int(r.backend_port)}/{proto} ({int(r.rev_nat)}) ({int(r.slot)})"
        pairs.append((key, val))
    return pairs


def lb_list(df: pd.DataFrame, protos: dict[int, str], output: str = "text") -> str:
    pairs = _lb_pairs(df, protos)
    if output == "json":
        return _go_map(pairs)
    text = tabwriter([["SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"]] + [[k, v] for k, v in pairs])
    lines = text.splitlines()
    lines[0] = lines[0].rstrip()
    return "\n".join(lines) + "\n"


def service_list(df: pd.DataFrame, output: str = "text", meta: dict | None = None) -> str:
    """`cilium service list`, one row per frontend sorted by id, from the LB table of one
    node. ``meta`` (frontend (ip, port, proto) -> name, namespace, type, traffic policies,
    backend node names) fills what the BPF maps do not hold; JSON is models.Service."""
    meta = meta or {}
    services = []
    for (ip, port, proto), g in df.groupby(["frontend_ip", "frontend_port", "proto"], sort=False):
        master = g[g.slot == 0]
        sid = int(master.rev_nat.iloc[0]) if len(master) else int(g.rev_nat.iloc[0])
        bes = g[g.slot > 0].sort_values("slot")
        services.append(
            (
                sid,
                f"{ip}:{int(port)}/{proto}",
                ip,
                int(port),
                proto,
                [(b.backend_ip, int(b.backend_port)) for b in bes.itertuples() if pd.notna(b.backend_ip)],
            )
        )
    services.sort()
    if output == "json":
        out = []
        for sid, _, ip, port, proto, bes in services:
            m = meta.get((ip, port, proto), {})
            nodes = m.get("backend_nodes", {})
            backends = []
            for b, p in bes:
                be: dict = {"ip": b}
                if nodes.get(b):
                    be["nodeName"] = nodes[b]
                be.update(port=p, protocol=proto, state="active", weight=100)
                backends.append(be)
            flags = {
                "extTrafficPolicy": m.get("ext_policy", "Cluster"),
                "intTrafficPolicy": m.get("int_policy", "Cluster"),
            }
            if m.get("name"):
                flags.update(name=m["name"], namespace=m["namespace"])
            flags.update(trafficPolicy=m.get("ext_policy", "Cluster"), type="ClusterIP")
            spec = {
                "backend-addresses": backends,
                "flags": flags,
                "frontend-address": {"ip": ip, "port": port, "protocol": proto, "scope": "external"},
                "id": sid,
            }
            out.append({"spec": spec, "status": {"realized": spec}})
        return json.dumps(out, indent=2)
    rows = [["ID", "Frontend", "Service Type", "Backend"]]
    for sid, fe, _, _, proto, bes in services:
        if not bes:
            rows.append([str(sid), fe, "ClusterIP", ""])
        for i, (b, p) in enumerate(bes, start=1):
            cell = f"{i} => {b}:{p}/{proto} (active)"
            rows.append([str(sid), fe, "ClusterIP", cell] if i == 1 else ["", "", "", cell])
    return tabwriter(rows)


# ------------------------------------------------------------------ ipcache / metrics
def ipcache_list(df: pd.DataFrame, output: str = "text") -> str:
    """Empty text for an empty map (the CLI then says "No entries found." on stderr)."""
    if df.empty and output != "json":
        return ""
    pairs = [
        (
            r.prefix,
            f"identity={int(r.identity)} encryptkey={int(r.encrypt_key)} "
            f"tunnelendpoint={r.tunnel_endpoint} flags={r.flags}",
        )
        for r in df.itertuples()
    ]
    if output == "json":
        return _go_map(pairs)
    return tabwriter([["IP PREFIX/ADDRESS", "IDENTITY"]] + [[k, v] for k, v in pairs])


def metrics_list(raw: pd.DataFrame, output: str = "text") -> str:
    """cilium-dbg/cmd/bpf_metrics_list.go: rows sorted as strings, column by column; JSON
    summed per (reason, direction, line, file) in Go's map order (labkit: sorted)."""
    if output == "json":
        if raw.empty:
            return ""
        g = raw.groupby(["reason", "direction", "line", "file"], sort=True, as_index=False)[["packets", "bytes"]].sum()
        return json.dumps(
            [
                {
                    "reason": r.reason,
                    "direction": r.direction.lower(),
                    "packets": int(r.packets),
                    "bytes": int(r.bytes),
                    "line": int(r.line),
                    "file": r.file,
                }
                for r in g.itertuples()
            ],
            indent=2,
        )
    if raw.empty:
        return ""
    body = sorted(
        [r.reason, r.direction, str(int(r.packets)), str(int(r.bytes)), str(int(r.line)), r.file]
        for r in raw.itertuples()
    )
    return tabwriter([["REASON", "DIRECTION", "PACKETS", "BYTES", "LINE", "FILE"], *body], trailing=False)
