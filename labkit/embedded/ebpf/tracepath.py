"""From the tracer's raw events to the TRACE table: one row per event, in the lab's words.

The kernel reports addresses: skbs, devices, a namespace number from our tc programs.
Here they become what a learner reads, as pwru prints its table:

- the network namespace and interface of every event: tc events carry their namespace's
  number and ifindex; each tells which device pointer is which interface, and the
  tracepoints' events are named by their device pointer (else, at the end of a path
  where the kernel no longer keeps the device, by where the packet was last seen);
- packets: one number per packet, the same across the skbs that carried it (clones);
- the tuple the packet had at its last tc hook (NAT may change it on the way);
- the datapath's view: which of labkit's programs runs at a hook, and its verdict, from
  the node's trace and drop events (events.py), joined by the packet's identity (IP id,
  TCP sequence and acknowledgement numbers, flags), which NAT leaves alone;
- frees: consumed, or dropped with the kernel's reason by name, from the tracepoint's
  own ``__print_symbolic`` table (tracefs.py), and the kernel function that freed it.
"""

from __future__ import annotations

import bisect
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ...capture.summary import TCP_FLAGS
from . import tracefs

EVENT = np.dtype(
    [
        ("ts", "<u8"),
        ("skb", "<u8"),
        ("packet", "<u8"),
        ("dev", "<u8"),
        ("netns", "<u8"),
        ("location", "<u8"),
        ("pid", "<u4"),
        ("ifindex", "<u4"),
        ("len", "<u4"),
        ("arg", "<i4"),
        ("arg2", "<u4"),
        ("addr1", ">u4"),
        ("addr2", ">u4"),
        ("addr3", ">u4"),
        ("seq", "<u4"),
        ("ack", "<u4"),
        ("sport", ">u2"),
        ("dport", ">u2"),
        ("kind", "<u2"),
        ("cpu", "<u2"),
        ("ethertype", "<u2"),
        ("ip_id", "<u2"),
        ("proto", "u1"),
        ("tcp_flags", "u1"),
        ("pad", "V2"),
        ("arg3", "<u4"),
        ("comm", "S16"),
        ("name", "S16"),
        ("tail", "V4"),
    ]
)
assert EVENT.itemsize == 144  # struct lkt_event, bpf/lib/skbtrace.h

TC_INGRESS, TC_EGRESS = 1, 2
KINDS = {
    1: "tc:ingress",
    2: "tc:egress",
    10: "net:net_dev_queue",
    11: "net:net_dev_start_xmit",
    12: "net:netif_rx",
    13: "net:netif_receive_skb",
    20: "skb:kfree_skb",
    21: "skb:consume_skb",
    22: "tcp:tcp_send_reset",
    23: "skb:skb_copy_datagram_iovec",
    30: "fib:fib_table_lookup",
    31: "neigh:neigh_create",
    32: "neigh:neigh_event_send_done",
}
KFREE, CONSUME, RESET, COPY, FIB, NEIGH_CREATE, NEIGH_SEND = 20, 21, 22, 23, 30, 31, 32
PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP"}
RT_TABLES = {255: "local", 254: "main", 253: "default"}
NUD = {0x01: "incomplete", 0x02: "reachable", 0x04: "stale", 0x08: "delay", 0x10: "probe", 0x20: "failed"}
VERDICTS = {
    "to-endpoint": "redirect to endpoint {dst_id} (bpf_redirect_peer)",
    "to-network": "FIB lookup, redirect to {ifname}",
    "to-stack": "pass to the node's stack",
}


@dataclass
class LabNetns:
    """One network namespace of the lab, as the trace names it."""

    netns: str  # the kernel's name, lk.<lab>.node.kind-worker
    label: str  # what the trace shows: a node or pod name, "kind-network", "external"
    node: str  # the node it belongs to ("" for the kind network and the external host)
    number: int = 0  # what the tc programs attached in it report (1, 2, ...)
    links: dict[int, str] = field(default_factory=dict)  # ifindex -> name
    hooks: dict[tuple[str, str], str] = field(default_factory=dict)  # (ifname, direction) -> datapath program


@dataclass(frozen=True)
class Mark:
    """The datapath's word on one packet at one node (a trace or drop event)."""

    node: str
    time: float  # when the lab's agent read it (just after it happened)
    key: tuple[int, int, int, int, int]  # proto, IP id, seq, ack, TCP flags
    verdict: str  # "drop", or what a trace's observation point means
    drop_reason: str


def decode(records: list[bytes]) -> np.ndarray:
    """Raw ring buffer records -> EVENT rows, oldest first."""
    blob = b"".join(r[: EVENT.itemsize] for r in records if len(r) >= EVENT.itemsize)
    arr = np.frombuffer(blob, dtype=EVENT)
    return np.sort(arr, order="ts", kind="stable")


def ip(v: int) -> str:
    return socket.inet_ntoa(int(v).to_bytes(4, "big"))


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def frame_key(frame: bytes) -> tuple[int, int, int, int, int] | None:
    """A frame's identity as bpf/lib/pktfilter.h's lkt_parse sees it (None: not IPv4)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    proto, ip_id = frame[23], struct.unpack_from(">H", frame, 18)[0]
    l4 = 14 + ihl
    seq = ack = flags = 0
    if struct.unpack_from(">H", frame, 20)[0] & 0x1FFF:
        pass
    elif proto == 6 and len(frame) >= l4 + 14:
        seq, ack = struct.unpack_from(">II", frame, l4 + 4)
        flags = frame[l4 + 13]
    elif proto == 1 and len(frame) >= l4 + 8:
        seq = (frame[l4] << 8) | frame[l4 + 1]
        ack = struct.unpack_from(">I", frame, l4 + 4)[0]
    return proto, ip_id, seq, ack, flags


def verdict_text(row: dict, ifnames: dict[int, str]) -> tuple[str, str]:
    """(verdict, drop reason) of a decoded datapath event (events.decode's row)."""
    if row["type"] == "drop":
        return "drop", row["drop_reason"]
    point = row["observation_point"]
    fmt = VERDICTS.get(point, point)
    return fmt.format(dst_id=row["dst_id"], ifname=ifnames.get(row["ifindex"], str(row["ifindex"]))), ""


# ---------------------------------------------------------------------- rows
@cache
def _kallsyms() -> tuple[list[int], list[str]]:
    addrs, names = [], []
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                a, kind, name = line.split()[:3]
                if kind in "tT":
                    addrs.append(int(a, 16))
                    names.append(name)
    except OSError:
        return [], []
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def symbol(addr: int) -> str:
    """The kernel function containing ``addr`` (root reads real addresses in kallsyms)."""
    addrs, names = _kallsyms()
    i = bisect.bisect_right(addrs, addr) - 1
    if i < 0 or not addrs or addrs[i] == 0:
        return f"{addr:#x}" if addr else ""
    return names[i]


def tcp_flags(flags: int) -> str:
    return f"[{TCP_FLAGS[flags]}]"


class _Path:
    """Per-packet state while the events are walked in time order."""

    def __init__(self) -> None:
        self.where: tuple[LabNetns | None, str] = (None, "")
        self.tuple = ""
        self.proto = ""
        self.flags = ""


def rows(
    events: np.ndarray,
    spaces: list[LabNetns],
    formats: dict[str, tracefs.Format],
    clock_offset_ns: int,
    marks: list[Mark] = (),  # type: ignore[assignment]
    symbolize: Callable[[int], str] = symbol,
) -> list[dict]:
    """TRACE rows of a trace's events."""
    by_number = {ns.number: ns for ns in spaces}
    devs: dict[int, tuple[LabNetns, str]] = {}
    for e in events[np.isin(events["kind"], (TC_INGRESS, TC_EGRESS))]:
        ns = by_number.get(int(e["netns"]))
        if ns is not None:
            devs.setdefault(int(e["dev"]), (ns, ns.links.get(int(e["ifindex"]), str(int(e["ifindex"])))))
    drop_names = formats["skb:kfree_skb"].symbols("reason")
    reset_names = formats["tcp:tcp_send_reset"].symbols("reason")
    numbers: dict[int, int] = {}
    paths: dict[int, _Path] = {}
    verdicts = _assign(events, by_number, marks, clock_offset_ns)
    out = []
    for i, e in enumerate(events):
        kind = int(e["kind"])
        raw_packet = int(e["packet"])
        number = numbers.setdefault(raw_packet, len(numbers) + 1)
        path = paths.setdefault(raw_packet, _Path())
        hook, verdict, free, reason, detail = "", "", "", "", ""
        if kind in (TC_INGRESS, TC_EGRESS):
            ns = by_number.get(int(e["netns"]))
            iface = ns.links.get(int(e["ifindex"]), str(int(e["ifindex"]))) if ns else str(int(e["ifindex"]))
            direction = "ingress" if kind == TC_INGRESS else "egress"
            hook = ns.hooks.get((iface, direction), "") if ns else ""
            path.where = (ns, iface)
            path.proto, path.tuple, path.flags = _tuple(e)
            verdict, reason = verdicts.get(i, ("", ""))
        else:
            known = devs.get(int(e["dev"]))
            if known is not None:
                path.where = known
            elif _text(e["name"]):
                path.where = (path.where[0], _text(e["name"]))
        ns, iface = path.where
        if kind == KFREE:
            free, reason = "dropped", drop_names.get(int(e["arg"]), str(int(e["arg"])))
            detail = f"by {symbolize(int(e['location']))}"
        elif kind == CONSUME:
            free, detail = "consumed", f"by {symbolize(int(e['location']))}"
        elif kind == COPY:
            detail = f"{int(e['len'])} bytes to {_text(e['comm'])}"
        elif kind == RESET:
            detail = f"the kernel answers with a RST ({reset_names.get(int(e['arg']), str(int(e['arg'])))})"
        elif kind == FIB:
            detail = _fib_detail(e)
        elif kind in (NEIGH_CREATE, NEIGH_SEND):
            detail = _neigh_detail(e)
        length = int(e["len"]) if kind not in (KFREE, CONSUME, RESET, FIB, NEIGH_CREATE, NEIGH_SEND) else None
        out.append(
            {
                "time": (int(e["ts"]) + clock_offset_ns) / 1e9,
                "packet": number,
                "skb": f"{int(e['skb']):#x}",
                "cpu": int(e["cpu"]),
                "process": _text(e["comm"]),
                "pid": int(e["pid"]),
                "netns": ns.label if ns else "",
                "node": ns.node if ns else "",
                "interface": iface,
                "length": length,
                "tuple": path.tuple,
                "proto": path.proto,
                "tcp_flags": path.flags,
                "event": KINDS.get(kind, str(kind)),
                "hook": hook,
                "verdict": verdict,
                "free": free,
                "drop_reason": reason,
                "detail": detail,
            }
        )
    return out


def _tuple(e: np.void) -> tuple[str, str, str]:
    """(proto, tuple as pwru --output-tuple prints it, TCP flags) of a tc event."""
    ethertype, proto = int(e["ethertype"]), int(e["proto"])
    if ethertype == 0x0806:
        return "ARP", f"{ip(e['addr1'])}->{ip(e['addr2'])}(arp)", ""
    if ethertype != 0x0800:
        return f"{ethertype:#06x}", "", ""
    name = PROTO_NAMES.get(proto, str(proto))
    if proto in (6, 17):
        t = f"{ip(e['addr1'])}:{int(e['sport'])}->{ip(e['addr2'])}:{int(e['dport'])}({name.lower()})"
    else:
        t = f"{ip(e['addr1'])}->{ip(e['addr2'])}({name.lower()})"
    return name, t, tcp_flags(int(e["tcp_flags"])) if proto == 6 else ""


def _fib_detail(e: np.void) -> str:
    table = int(e["arg2"])
    src, dst, gw = ip(e["addr1"]), ip(e["addr2"]), int(e["addr3"])
    what = f"table {RT_TABLES.get(table, table)}: {src} -> {dst}"
    if int(e["arg"]):
        return f"{what}: no route (error {int(e['arg'])})"
    via = f" via {ip(gw)}" if gw else ""
    return f"{what}: dev {_text(e['name'])}{via}"


def _neigh_detail(e: np.void) -> str:
    key, dev = ip(e["addr1"]), _text(e["name"])
    if int(e["kind"]) == NEIGH_CREATE:
        return f"neighbour {key} on {dev}: new entry, to resolve"
    state = NUD.get(int(e["arg2"]), f"state {int(e['arg2'])}")
    queued = " (packet queued until it answers)" if int(e["arg"]) else ""
    return f"neighbour {key} on {dev}: {state}{queued}"


def _assign(
    events: np.ndarray, by_number: dict[int, LabNetns], marks: list[Mark], clock_offset_ns: int
) -> dict[int, tuple[str, str]]:
    """Event index of the tc hook each datapath mark belongs to -> (verdict, drop reason):
    the latest hook of that packet on that node with a datapath program, before the mark
    was read (traces come from the ingress programs; drops from any)."""
    candidates: dict[tuple[str, tuple], list[tuple[float, int]]] = {}
    for i, e in enumerate(events):
        kind = int(e["kind"])
        if kind not in (TC_INGRESS, TC_EGRESS) or int(e["ethertype"]) != 0x0800:
            continue
        ns = by_number.get(int(e["netns"]))
        if ns is None or not ns.node or ns.label != ns.node:
            continue  # datapath programs run in nodes only
        iface = ns.links.get(int(e["ifindex"]), "")
        direction = "ingress" if kind == TC_INGRESS else "egress"
        if not ns.hooks.get((iface, direction)):
            continue
        key = (int(e["proto"]), int(e["ip_id"]), int(e["seq"]), int(e["ack"]), int(e["tcp_flags"]))
        t = (int(e["ts"]) + clock_offset_ns) / 1e9
        candidates.setdefault((ns.node, key), []).append((t, i * 2 + (kind == TC_EGRESS)))
    out: dict[int, tuple[str, str]] = {}
    for m in sorted(marks, key=lambda m: m.time):
        best = None
        for t, coded in candidates.get((m.node, m.key), []):
            i, egress = coded // 2, bool(coded % 2)
            if t > m.time + 0.001 or i in out or (m.verdict != "drop" and egress):
                continue
            best = i
        if best is not None:
            out[best] = (m.verdict, m.drop_reason)
    return out
