"""Parsers: `cilium-dbg bpf ... list` (text and ``-o json``) and `service list` -> shared tables.

Text is read as ``key=value`` bags, never by column position: fields were added and removed
between releases (CT: ``RxPackets`` -> ``Packets`` in 1.16, ``BackendID`` in 1.16, no
``IfIndex`` and a ``NatPort`` in 1.18; endpoint: ``parent_ifindex`` in late 1.17). Whitespace
may be tabwriter padding or single spaces (outputs pasted from web pages): both parse.
Each parser takes the node whose map it read and returns a frame of the schema in
:mod:`labkit.tables`. Lines that are not entries (headers, ``Unable to open ...``,
``No entries found.``) are skipped.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..cilium import ct_flag_names
from ..errors import LabError
from ..tables import CT, ENDPOINTS, IPCACHE, LB, METRICS, NAT

PROTOS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
TUPLE_F_IN, TUPLE_F_RELATED, TUPLE_F_SERVICE = 1, 2, 4

_KV = re.compile(r"([A-Za-z_][\w]*)=(\S+)")


def _bag(text: str) -> dict[str, str]:
    return dict(_KV.findall(text))


def _int(v: Any, default: int | None = 0) -> int | None:
    if v is None or v == "":
        return default
    try:
        return int(str(v), 0)
    except ValueError:
        return default


def _entry_lines(text: str) -> Iterable[str]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("Unable to open", "No entries found", "Listening for events", "Press Ctrl-C")):
            continue
        yield line


def _json(text: str, what: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise LabError(f"cannot parse the JSON of `{what}`: {e}", exit_code=1) from e


def _is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _hostport(s: str) -> tuple[str, int]:
    """'10.244.1.71:42278' or '[f00d::1]:80' -> (ip, port)."""
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def _ntohs(v: int, byteorder: str) -> int:
    v = int(v) & 0xFFFF
    return v if byteorder == "big" else int.from_bytes(v.to_bytes(2, "little"), "big")


def _addr(v: Any) -> str:
    if isinstance(v, str):
        return v
    return str(ipaddress.ip_address(bytes(int(b) for b in v)))


# ------------------------------------------------------------------------------ endpoints


def parse_endpoints(text: str, node: str) -> pd.DataFrame:
    """`cilium-dbg bpf endpoint list` (text or ``-o json``) -> ENDPOINTS."""
    pairs: list[tuple[str, str]] = []
    if _is_json(text):
        data = _json(text, "bpf endpoint list") or {}
        for key, values in data.items():
            for v in values:
                pairs.append((key, v))
    else:
        for line in _entry_lines(text):
            if line.startswith("IP ADDRESS"):
                continue
            key, _, value = line.partition(" ")
            pairs.append((key, value.strip()))
    rows = []
    for key, value in pairs:
        ip = key.rpartition(":")[0] if ":" in key and key.rpartition(":")[2].isdigit() else key
        value = value.strip()
        if value.startswith("(localhost)"):
            rows.append(dict(node=node, ip=ip, flags=1, is_host=True))
            continue
        b = _bag(value)
        rows.append(
            dict(
                node=node,
                ip=ip,
                endpoint_id=_int(b.get("id"), None),
                identity=_int(b.get("sec_id"), None),
                flags=_int(b.get("flags")),
                ifindex=_int(b.get("ifindex"), None),
                mac=b.get("mac"),
                node_mac=b.get("nodemac"),
                is_host=False,
            )
        )
    return ENDPOINTS.frame(rows)


# ------------------------------------------------------------------------------------- CT

_CT_KEY = re.compile(
    r"^(?P<proto>[A-Za-z0-9]+)\s+(?P<dir>IN|OUT|SVC)\s+(?P<src>\S+)\s+->\s+(?P<dst>\S+)\s+"
    r"(?P<related>related\s+)?(?P<rest>expires=.*)$"
)
_CT_FLAGS = re.compile(r"Flags=(0x[0-9a-fA-F]+)\s*\[([^\]]*)\]")
_REMAINING = re.compile(r"\(remaining:[^)]*\)")


def parse_ct(text: str, node: str, *, byteorder: str = "little") -> pd.DataFrame:
    """`cilium-dbg bpf ct list global` (text of v1.15..v1.18, or ``-o json``) -> CT.

    JSON carries raw BPF structs: [a,b,c,d] addresses and network-byte-order ports and
    RevNAT; ``byteorder`` is the node's CPU byte order (kind nodes: little).
    """
    if _is_json(text):
        return _ct_json(_json(text, "bpf ct list global") or [], node, byteorder)
    rows = []
    for line in _entry_lines(text):
        m = _CT_KEY.match(line)
        if not m:
            continue
        rest = _REMAINING.sub("", m["rest"])
        fm = _CT_FLAGS.search(rest)
        flags, names = (int(fm[1], 16), " ".join(fm[2].split())) if fm else (0, "")
        if fm:
            rest = rest[: fm.start()] + rest[fm.end() :]
        b = _bag(rest)
        if "Packets" in b or "Bytes" in b:  # v1.16+
            packets, nbytes = _int(b.get("Packets")), _int(b.get("Bytes"))
        else:  # v1.15 and older: per direction
            packets = (_int(b.get("RxPackets")) or 0) + (_int(b.get("TxPackets")) or 0)
            nbytes = (_int(b.get("RxBytes")) or 0) + (_int(b.get("TxBytes")) or 0)
        src, sport = _hostport(m["src"])
        dst, dport = _hostport(m["dst"])
        rows.append(
            dict(
                node=node,
                proto=m["proto"],
                direction=m["dir"],
                src_ip=src,
                src_port=sport,
                dst_ip=dst,
                dst_port=dport,
                related=bool(m["related"]),
                expires=_int(b.get("expires")),
                packets=packets,
                bytes=nbytes,
                rx_flags_seen=_int(b.get("RxFlagsSeen")),
                tx_flags_seen=_int(b.get("TxFlagsSeen")),
                flags=flags,
                flag_names=names,
                rev_nat=_int(b.get("RevNAT")),
                src_identity=_int(b.get("SourceSecurityID")),
                ifindex=_int(b.get("IfIndex")),
                backend_id=_int(b.get("BackendID")),
            )
        )
    return CT.frame(rows)


def _ct_json(records: list, node: str, byteorder: str) -> pd.DataFrame:
    rows = []
    for rec in records:
        k, v = rec.get("Key", {}), rec.get("Value", {})
        kf = int(k.get("Flags", 0))
        daddr, saddr = _addr(k["DestAddr"]), _addr(k["SourceAddr"])
        dport, sport = _ntohs(k.get("DestPort", 0), byteorder), _ntohs(k.get("SourcePort", 0), byteorder)
        if kf & TUPLE_F_SERVICE:  # printed "SourceAddr:DestPort -> DestAddr:SourcePort"
            direction, src, sp, dst, dp = "SVC", saddr, dport, daddr, sport
        else:  # printed reversed: "DestAddr:SourcePort -> SourceAddr:DestPort"
            direction = "IN" if kf & TUPLE_F_IN else "OUT"
            src, sp, dst, dp = daddr, sport, saddr, dport
        flags = int(v.get("Flags", 0))
        rows.append(
            dict(
                node=node,
                proto=PROTOS.get(int(k.get("NextHeader", 0)), str(k.get("NextHeader"))),
                direction=direction,
                src_ip=src,
                src_port=sp,
                dst_ip=dst,
                dst_port=dp,
                related=bool(kf & TUPLE_F_RELATED),
                expires=int(v.get("Lifetime", 0)),
                packets=int(v.get("Packets", 0)),
                bytes=int(v.get("Bytes", 0)),
                rx_flags_seen=int(v.get("RxFlagsSeen", 0)),
                tx_flags_seen=int(v.get("TxFlagsSeen", 0)),
                flags=flags,
                flag_names=ct_flag_names(flags),
                rev_nat=_ntohs(v.get("RevNAT", 0), byteorder),
                src_identity=int(v.get("SourceSecurityID", 0)),
                ifindex=int(v.get("IfIndex", 0)),
                backend_id=int(v.get("BackendID", 0)),
            )
        )
    return CT.frame(rows)


# ------------------------------------------------------------------------------------ NAT

_NAT = re.compile(
    r"^(?P<proto>[A-Za-z0-9]+)\s+(?P<dir>IN|OUT)\s+(?P<src>\S+)\s+->\s+(?P<dst>\S+)\s+"
    r"(?:(?:related|service)\s+)*XLATE_(?P<x>SRC|DST)\s+(?P<to>\S+)\s+"
    r"Created=(?P<created>.*?)\s+NeedsCT=(?P<needs>\d+)"
)
_AGO = re.compile(r"^(\d+)\s*sec ago")


def parse_nat(text: str, node: str, *, byteorder: str = "little") -> pd.DataFrame:
    """`cilium-dbg bpf nat list` (text or ``-o json``) -> NAT."""
    if _is_json(text):
        return _nat_json(_json(text, "bpf nat list") or [], node, byteorder)
    rows = []
    for line in _entry_lines(text):
        m = _NAT.match(line)
        if not m:
            continue
        src, sport = _hostport(m["src"])
        dst, dport = _hostport(m["dst"])
        to, toport = _hostport(m["to"])
        ago = _AGO.match(m["created"].strip())
        rows.append(
            dict(
                node=node,
                proto=m["proto"],
                direction=m["dir"],
                src_ip=src,
                src_port=sport,
                dst_ip=dst,
                dst_port=dport,
                xlate=m["x"],
                xlate_ip=to,
                xlate_port=toport,
                created_ago_s=int(ago[1]) if ago else None,
                needs_ct=int(m["needs"]),
            )
        )
    return NAT.frame(rows)


def _nat_json(records: list, node: str, byteorder: str) -> pd.DataFrame:
    rows = []
    for rec in records:
        k, v = rec.get("Key", {}), rec.get("Value", {})
        kf = int(k.get("Flags", 0))
        rows.append(
            dict(
                node=node,
                proto=PROTOS.get(int(k.get("NextHeader", 0)), str(k.get("NextHeader"))),
                direction="IN" if kf & TUPLE_F_IN else "OUT",
                src_ip=_addr(k["SourceAddr"]),
                src_port=_ntohs(k.get("SourcePort", 0), byteorder),
                dst_ip=_addr(k["DestAddr"]),
                dst_port=_ntohs(k.get("DestPort", 0), byteorder),
                xlate="DST" if kf & TUPLE_F_IN else "SRC",
                xlate_ip=_addr(v["Addr"]),
                xlate_port=_ntohs(v.get("Port", 0), byteorder),
                created_ago_s=None,  # JSON has the raw creation time, not its age
                needs_ct=int(v.get("NeedsCT", 0)),
            )
        )
    return NAT.frame(rows)


# ------------------------------------------------------------------------------------- LB

_LB_KEY = re.compile(r"^(?P<addr>\S+?)(?:/(?P<proto>[A-Z]+))?(?P<scope>/i)?\s+\((?P<slot>\d+)\)$")
_LB_MASTER = re.compile(r"^(?P<addr>\S+)\s+\((?P<revnat>\d+)\)\s+\((?P<slot>\d+)\)\s*(?:\[(?P<flags>[^\]]*)\])?")
_LB_BACKEND = re.compile(r"^(?P<addr>\S+?)(?:/(?P<proto>[A-Z]+))?\s+\((?P<revnat>\d+)\)\s+\((?P<slot>\d+)\)")


def parse_lb(text: str, node: str) -> pd.DataFrame:
    """`cilium-dbg bpf lb list` (text or ``-o json``) -> LB, one row per slot.

    The text shows no backend ids (``backend_id`` stays missing); the proto is missing for
    releases before 1.17, which did not print it.
    """
    pairs: list[tuple[str, str]] = []
    if _is_json(text):
        for key, values in (_json(text, "bpf lb list") or {}).items():
            for v in values:
                pairs.append((key, v))
    else:
        for line in _entry_lines(text):
            if line.startswith("SERVICE ADDRESS"):
                continue
            m = re.match(r"^(\S+\s+\(\d+\))\s+(.*)$", line)
            if m:
                pairs.append((m[1], m[2]))
    rows = []
    for key, value in pairs:
        k = _LB_KEY.match(" ".join(key.split()))
        if not k:
            continue
        fip, fport = _hostport(k["addr"])
        value = value.strip()
        row = dict(node=node, frontend_ip=fip, frontend_port=fport, proto=k["proto"], slot=int(k["slot"]))
        if int(k["slot"]) == 0 and (mm := _LB_MASTER.match(value)):
            bip, bport = _hostport(mm["addr"])
            row.update(backend_ip=bip, backend_port=bport, rev_nat=int(mm["revnat"]), flags=(mm["flags"] or "").strip())
        elif mb := _LB_BACKEND.match(value):
            bip, bport = _hostport(mb["addr"])
            row.update(backend_ip=bip, backend_port=bport, rev_nat=int(mb["revnat"]), flags="")
        else:  # "backend 5 not found"
            bid = re.match(r"backend (\d+) not found", value)
            row.update(backend_id=int(bid[1]) if bid else None, flags=value)
        rows.append(row)
    return LB.frame(rows)


_SVC_ROW = re.compile(r"^(?P<id>\d+)\s{2,}(?P<fe>\S+)\s{2,}(?P<type>.+?)(?:\s{2,}(?P<be>\d+ => .*))?$")
_SVC_BE = re.compile(r"^(?P<idx>\d+) => (?P<addr>\S+?)(?:/(?P<proto>[A-Z]+))?(?:/i)? \((?P<state>[^)]*)\)")


def parse_service_list(text: str, node: str) -> pd.DataFrame:
    """`cilium-dbg service list` (text or ``-o json``) -> LB rows (slot 0 = the service).

    The service ID is the reverse NAT id, the backend index is the slot, the service type
    goes into ``flags``.
    """
    if _is_json(text):
        return _service_json(_json(text, "service list") or [], node)
    rows = []
    current: dict | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("ID "):
            continue
        if raw[:1].isspace():
            be = _SVC_BE.match(raw.strip())
            if be and current is not None:
                rows.append(_svc_backend(current, be))
            continue
        m = _SVC_ROW.match(raw.rstrip())
        if not m:
            continue
        fe = re.match(r"^(?P<addr>\S+?)(?:/(?P<proto>[A-Z]+))?(?:/i)?$", m["fe"])
        if fe is None:
            continue
        fip, fport = _hostport(fe["addr"])
        current = dict(node=node, frontend_ip=fip, frontend_port=fport, proto=fe["proto"], rev_nat=int(m["id"]))
        rows.append(dict(current, slot=0, backend_ip="0.0.0.0", backend_port=0, flags=m["type"].strip()))
        if m["be"]:
            be = _SVC_BE.match(m["be"].strip())
            if be:
                rows.append(_svc_backend(current, be))
    return LB.frame(rows)


def _svc_backend(current: dict, be: re.Match) -> dict:
    bip, bport = _hostport(be["addr"])
    return dict(current, slot=int(be["idx"]), backend_ip=bip, backend_port=bport, flags="")


def _service_json(services: list, node: str) -> pd.DataFrame:
    rows = []
    for svc in services:
        spec = svc.get("spec", {})
        fe = spec.get("frontend-address", {})
        base = dict(
            node=node,
            frontend_ip=fe.get("ip"),
            frontend_port=int(fe.get("port", 0)),
            proto=fe.get("protocol") or None,
            rev_nat=int(spec.get("id", 0)),
        )
        rows.append(
            dict(base, slot=0, backend_ip="0.0.0.0", backend_port=0, flags=(spec.get("flags") or {}).get("type", ""))
        )
        for i, be in enumerate(spec.get("backend-addresses") or [], start=1):
            rows.append(dict(base, slot=i, backend_ip=be.get("ip"), backend_port=int(be.get("port", 0)), flags=""))
    return LB.frame(rows)


# -------------------------------------------------------------------------------- ipcache


def parse_ipcache(text: str, node: str) -> pd.DataFrame:
    """`cilium-dbg bpf ipcache list` (text or ``-o json``) -> IPCACHE."""
    pairs: list[tuple[str, str]] = []
    if _is_json(text):
        for key, values in (_json(text, "bpf ipcache list") or {}).items():
            for v in values:
                pairs.append((key, v))
    else:
        for line in _entry_lines(text):
            if line.startswith("IP PREFIX"):
                continue
            key, _, value = line.partition(" ")
            pairs.append((key, value))
    rows = []
    for key, value in pairs:
        b = _bag(value)
        if "identity" not in b:
            continue
        rows.append(
            dict(
                node=node,
                prefix=key,
                identity=_int(b["identity"]),
                encrypt_key=_int(b.get("encryptkey")),
                tunnel_endpoint=b.get("tunnelendpoint", "0.0.0.0"),
                flags=b.get("flags", "<none>"),
            )
        )
    return IPCACHE.frame(rows)


# -------------------------------------------------------------------------------- metrics

_METRIC = re.compile(
    r"^(?P<reason>.+?)\s+(?P<dir>INGRESS|EGRESS|SERVICE|UNKNOWN)\s+(?P<packets>\d+)\s+"
    r"(?P<bytes>\d+)\s+(?P<line>\d+)\s+(?P<file>\S+)$",
    re.IGNORECASE,
)


def parse_metrics(text: str, node: str) -> pd.DataFrame:
    """`cilium-dbg bpf metrics list` (text or ``-o json``) -> METRICS.

    Cilium prints one row per (reason, direction, source line, file); the table has no
    line/file columns, so rows are summed per (reason, direction).
    """
    rows = []
    if _is_json(text):
        for m in _json(text, "bpf metrics list") or []:
            rows.append(
                dict(
                    reason=m.get("reason", ""),
                    direction=str(m.get("direction", "")).upper(),
                    packets=int(m.get("packets", 0)),
                    bytes=int(m.get("bytes", 0)),
                )
            )
    else:
        for line in _entry_lines(text):
            if line.startswith("REASON"):
                continue
            m = _METRIC.match(line)
            if m:
                rows.append(
                    dict(
                        reason=m["reason"].strip(),
                        direction=m["dir"].upper(),
                        packets=int(m["packets"]),
                        bytes=int(m["bytes"]),
                    )
                )
    if not rows:
        return METRICS.frame([])
    df = pd.DataFrame(rows).groupby(["reason", "direction"], sort=True, as_index=False)[["packets", "bytes"]].sum()
    df.insert(0, "node", node)
    return METRICS.frame(df)
