"""`cilium monitor` as Cilium 1.17 prints it: the one-line text of trace, drop and
trace-sock events, and the ``-j`` JSON objects.

From Cilium's pkg/monitor: datapath_trace.go (``TraceNotify.DumpInfo``, ``traceSummary``,
``TraceNotifyVerbose``), datapath_drop.go (``DropNotify.DumpInfo``, ``DropNotifyVerbose``),
datapath_sock_trace.go (``TraceSockNotify.DumpDebug``, printed with ``-v`` only: see
pkg/monitor/format/format.go ``traceSockEvents``) and dissect.go
(``GetConnectionSummary``, ``GetDissectSummary``), whose per-layer strings are gopacket's
``LayerString``. JSON is Go's encoding/json: struct field order, no spaces, and "<", ">",
"&" escaped as \\u003c, \\u003e, \\u0026.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from .identities import identity_name
from .reasons import FILES, OBS_POINTS

MONITOR_FLAGS = (("SYN", 0x02), ("ACK", 0x10), ("RST", 0x04), ("FIN", 0x01))
XLATE_POINTS = {1: "pre-xlate-fwd", 2: "post-xlate-fwd", 3: "pre-xlate-rev", 4: "post-xlate-rev"}
SOCK_L4 = {1: "tcp", 2: "udp"}
ICMP_TYPES = {
    0: "EchoReply",
    3: "DestinationUnreachable",
    4: "SourceQuench",
    5: "Redirect",
    8: "EchoRequest",
    11: "TimeExceeded",
    12: "ParameterProblem",
}
# gopacket's TCPPort / UDPPort names for the ports a lab uses (layers/ports.go).
PORT_NAMES = {22: "ssh", 53: "domain", 80: "http", 123: "ntp", 443: "https"}


def go_json(obj: Any) -> str:
    """json.Marshal: compact, and HTML-safe as Go escapes it."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ------------------------------------------------------------------ dissecting a frame
def dissect(data: bytes) -> dict:
    """The fields of a captured frame that the monitor and Hubble show."""
    d: dict = {
        "proto": "",
        "src_ip": "",
        "dst_ip": "",
        "src_port": None,
        "dst_port": None,
        "flags": 0,
        "icmp": "",
        "icmp_type": None,
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
        d["icmp_type"] = data[l4]
        d["icmp"] = ICMP_TYPES.get(data[l4], f"Type{data[l4]}")
    else:
        d["proto"] = str(proto)
    return d


def tcp_flags(bits: int) -> str:
    """The flags as GetConnectionSummary joins them (SYN, ACK, RST, FIN)."""
    return ", ".join(n for n, b in MONITOR_FLAGS if bits & b)


def connection_summary(d: dict) -> str:
    """GetConnectionSummary()."""
    if d["proto"] == "TCP":
        return f"{d['src_ip']}:{d['src_port']} -> {d['dst_ip']}:{d['dst_port']} tcp {tcp_flags(d['flags'])}"
    if d["proto"] == "UDP":
        return f"{d['src_ip']}:{d['src_port']} -> {d['dst_ip']}:{d['dst_port']} udp"
    if d["proto"] == "ICMP":
        return f"{d['src_ip']} -> {d['dst_ip']} {d['icmp']}"
    if d["proto"] == "ARP":
        return f"ARP {d['src_ip']} -> {d['dst_ip']}"
    return "unknown packet"


# ------------------------------------------------------------------ one-line text
def trace_summary(obs: int, dst_id: int, source: int, ifname: str) -> str:
    """TraceNotify.traceSummary()."""
    point = OBS_POINTS.get(obs, ("", ""))[0]
    return {
        "to-endpoint": f"-> endpoint {dst_id}",
        "to-proxy": f"-> proxy port {dst_id}" if dst_id else "-> proxy",
        "to-host": f"-> host from {ifname}",
        "to-stack": "-> stack",
        "to-overlay": "-> overlay",
        "to-network": "-> network",
        "from-endpoint": f"<- endpoint {source}",
        "from-proxy": "<- proxy",
        "from-host": "<- host",
        "from-stack": "<- stack",
        "from-overlay": "<- overlay",
        "from-network": "<- network",
    }.get(point, "unknown trace")


def trace_line(summary: str, flow: int, src_id: int, dst_id: int, state: str, ifname: str, orig: str, conn: str) -> str:
    """TraceNotify.DumpInfo()."""
    return (
        f"{summary} flow {flow:#x} , identity {identity_name(src_id)}->{identity_name(dst_id)} "
        f"state {state} ifindex {ifname} orig-ip {orig}: {conn}"
    )


def drop_line(
    reason: str, flow: int, dst_ep: int, ifindex: int, file: int, line: int, src_id: int, dst_id: int, conn: str
) -> str:
    """DropNotify.DumpInfo()."""
    return (
        f"xx drop ({reason}) flow {flow:#x} to endpoint {dst_ep}, ifindex {ifindex}, "
        f"file {FILES.get(file, str(file))}:{line}, , identity {identity_name(src_id)}->{identity_name(dst_id)}: {conn}"
    )


def sock_line(cpu: int, xlate: int, cgroup_id: int, cookie: int, ip: str, port: int, l4: int) -> str:
    """TraceSockNotify.DumpDebug() (with its trailing space)."""
    return (
        f"CPU {cpu:02d}: [{XLATE_POINTS.get(xlate, 'unknown')}] cgroup_id: {cgroup_id} sock_cookie: {cookie}, "
        f"dst [{ip}]:{port} {SOCK_L4.get(l4, 'unknown')} "
    )


# ------------------------------------------------------------------ -j: gopacket layer strings
def _bytes(b: bytes) -> str:
    """A []byte as gopacket's LayerString prints it: the values when 4 or fewer."""
    return f"[..{len(b)}..]" if len(b) > 4 else "[" + ", ".join(str(x) for x in b) + "]"


def _port(p: int) -> str:
    return f"{p}({PORT_NAMES[p]})" if p in PORT_NAMES else str(p)


_TCP_OPT = {0: "EndList", 1: "NOP", 2: "MSS", 3: "WindowScale", 4: "SACKPermitted", 5: "SACK", 8: "Timestamps"}


def _tcp_options(opts: bytes) -> list[str]:
    out, i = [], 0
    while i < len(opts):
        kind = opts[i]
        if kind in (0, 1):
            out.append(f"TCPOption({_TCP_OPT[kind]}:)")
            i += 1
            if kind == 0:
                break
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        data = opts[i + 2 : i + opts[i + 1]]
        name = _TCP_OPT.get(kind, f"Unknown({kind})")
        hd = (" 0x" + data.hex()) if data else ""
        if kind == 2 and len(data) >= 2:
            out.append(f"TCPOption({name}:{struct.unpack('>H', data[:2])[0]}{hd})")
        elif kind == 8 and len(data) == 8:
            a, b = struct.unpack(">II", data)
            out.append(f"TCPOption({name}:{a}/{b}{hd})")
        else:
            out.append(f"TCPOption({name}:{hd})")
        i += opts[i + 1]
    return out


def layer_strings(data: bytes) -> dict[str, str]:
    """GetDissectSummary()'s ethernet / ipv4 / tcp / udp / icmpv4 strings."""
    out: dict[str, str] = {}
    if len(data) < 14:
        return out
    etype = struct.unpack_from(">H", data, 12)[0]
    macs = [":".join(f"{b:02x}" for b in data[o : o + 6]) for o in (6, 0)]
    ename = {0x0800: "IPv4", 0x0806: "ARP"}.get(etype, f"UnknownEthernetType({etype})")
    out["ethernet"] = (
        f"Ethernet\t{{Contents=[..14..] Payload={_bytes(data[14:])} SrcMAC={macs[0]} DstMAC={macs[1]} "
        f"EthernetType={ename} Length=0}}"
    )
    if etype != 0x0800 or len(data) < 34:
        return out
    ip = data[14:]
    ihl = ip[0] & 0x0F
    total, ident, frag = struct.unpack_from(">HHH", ip, 2)
    flags = "|".join(n for n, b in (("EvilBit", 4), ("DF", 2), ("MF", 1)) if (frag >> 13) & b)
    proto = ip[9]
    pname = {6: "TCP", 17: "UDP", 1: "ICMPv4"}.get(proto, f"UnknownIPProtocol({proto})")
    end = min(len(ip), total)
    l4 = ip[ihl * 4 : end]
    out["ipv4"] = (
        f"IPv4\t{{Contents={_bytes(ip[: ihl * 4])} Payload={_bytes(l4)} Version={ip[0] >> 4} IHL={ihl} TOS={ip[1]} "
        f"Length={total} Id={ident} Flags={flags} FragOffset={frag & 0x1FFF} TTL={ip[8]} Protocol={pname} "
        f"Checksum={struct.unpack_from('>H', ip, 10)[0]} SrcIP={socket.inet_ntoa(ip[12:16])} "
        f"DstIP={socket.inet_ntoa(ip[16:20])} Options=[] Padding=[]}}"
    )
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq, ack, off, fl, win, csum, urg = struct.unpack_from(">HHIIBBHHH", l4)
        doff = off >> 4
        opts = _tcp_options(l4[20 : doff * 4])
        optstr = f"[..{len(opts)}..]" if len(opts) > 4 else "[" + ", ".join(opts) + "]"
        bits = {n: bool(fl & b) for n, b in (("FIN", 1), ("SYN", 2), ("RST", 4), ("PSH", 8), ("ACK", 16), ("URG", 32))}
        bits.update(ECE=bool(fl & 64), CWR=bool(fl & 128), NS=bool(off & 1))
        flagstr = " ".join(f"{n}={'true' if v else 'false'}" for n, v in bits.items())
        out["tcp"] = (
            f"TCP\t{{Contents={_bytes(l4[: doff * 4])} Payload={_bytes(l4[doff * 4 :])} SrcPort={_port(sport)} "
            f"DstPort={_port(dport)} Seq={seq} Ack={ack} DataOffset={doff} {flagstr} Window={win} Checksum={csum} "
            f"Urgent={urg} Options={optstr} Padding=[]}}"
        )
    elif proto == 17 and len(l4) >= 8:
        sport, dport, length, csum = struct.unpack_from(">HHHH", l4)
        out["udp"] = (
            f"UDP\t{{Contents=[..8..] Payload={_bytes(l4[8:])} SrcPort={_port(sport)} DstPort={_port(dport)} "
            f"Length={length} Checksum={csum}}}"
        )
    elif proto == 1 and len(l4) >= 8:
        t, code, csum, ident2, seq2 = struct.unpack_from(">BBHHH", l4)
        tc = ICMP_TYPES.get(t, f"{t}({code})")
        out["icmpv4"] = (
            f"ICMPv4\t{{Contents=[..8..] Payload={_bytes(l4[8:])} TypeCode={tc} Checksum={csum} "
            f"Id={ident2} Seq={seq2}}}"
        )
    return out


def dissect_summary(data: bytes, d: dict) -> dict:
    """DissectSummary: the layer strings, then l2 / l3 / l4 {src, dst} (l4 only with ports)."""
    s: dict[str, Any] = dict(layer_strings(data))
    if d["src_mac"]:
        s["l2"] = {"src": d["src_mac"], "dst": d["dst_mac"]}
    if d["src_ip"] and d["proto"] != "ARP":
        s["l3"] = {"src": d["src_ip"], "dst": d["dst_ip"]}
    if d["src_port"] is not None:
        s["l4"] = {"src": str(d["src_port"]), "dst": str(d["dst_port"])}
    return s


def trace_json(
    cpu: int, flow: int, ifname: str, state: str, point: str, summary: str, source: int, length: int,
    src_id: int, dst_id: int, dst_ep: int, data: bytes, d: dict,
) -> str:  # fmt: skip
    """TraceNotify.DumpJSON() (TraceNotifyVerbose)."""
    return go_json(
        {
            "cpu": f"CPU {cpu:02d}:",
            "type": "trace",
            "mark": f"{flow:#x}",
            "ifindex": ifname,
            "state": state,
            "observationPoint": point,
            "traceSummary": summary,
            "source": source,
            "bytes": length,
            "srcLabel": src_id,
            "dstLabel": dst_id,
            "dstID": dst_ep,
            "summary": dissect_summary(data, d),
        }
    )


def drop_json(
    cpu: int, flow: int, reason: str, source: int, length: int, src_id: int, dst_id: int, dst_ep: int,
    line: int, file: int, ifindex: int, data: bytes, d: dict,
) -> str:  # fmt: skip
    """DropNotify.DumpJSON() (DropNotifyVerbose): File is the file id, as the struct holds it."""
    return go_json(
        {
            "cpu": f"CPU {cpu:02d}:",
            "type": "drop",
            "mark": f"{flow:#x}",
            "reason": reason,
            "source": source,
            "bytes": length,
            "srcLabel": src_id,
            "dstLabel": dst_id,
            "dstID": dst_ep,
            "Line": line,
            "File": file,
            "ExtError": 0,
            "Ifindex": ifindex,
            "summary": dissect_summary(data, d),
        }
    )
