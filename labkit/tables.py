"""The table schemas at labkit's boundaries, shared by every backend.

Data flows one way: spec -> backend -> these tables -> plots and widgets. A backend returns
rows (dicts); :meth:`Schema.frame` turns them into a DataFrame with exactly these columns, in
this order, with these dtypes, so plots and widgets never know which backend fed them. Tests
assert that both backends produce exactly these schemas.

dtype names are pandas' ("string", "Int64" for integers that may be missing, "int64",
"float64", "boolean", "datetime64[ns, UTC]").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from .errors import LabError


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    doc: str


@dataclass(frozen=True)
class Schema:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}

    def frame(self, rows: Iterable[Mapping] | pd.DataFrame = ()) -> pd.DataFrame:
        """Rows (dicts, or a DataFrame) -> a DataFrame of exactly this schema.

        Missing keys become missing values; unknown keys are an error (a backend bug).
        """
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        extra = set(df.columns) - set(self.names)
        if extra:
            raise LabError(f"table {self.name}: unknown columns {sorted(extra)}", exit_code=1)
        out = {}
        for c in self.columns:
            col = df[c.name] if c.name in df.columns else pd.Series([None] * len(df), dtype="object")
            out[c.name] = _cast(col, c.dtype)
        return pd.DataFrame(out, index=pd.RangeIndex(len(df)))

    def check(self, df: pd.DataFrame) -> None:
        """Raise if ``df`` does not have exactly this schema (used by tests of both backends)."""
        got = {k: str(v) for k, v in df.dtypes.items()}
        if list(df.columns) != self.names or got != self.dtypes:
            raise LabError(f"table {self.name}: schema mismatch: {got} != {self.dtypes}", exit_code=1)


def _cast(col: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime64"):
        return pd.to_datetime(col, utc=True).astype(dtype)
    if dtype == "int64":
        return col.fillna(0).astype("int64")
    if dtype == "float64":
        return col.astype("float64")
    return col.astype(dtype)


def _schema(name: str, doc: str, *cols: tuple[str, str, str]) -> Schema:
    return Schema(name, doc, tuple(Column(*c) for c in cols))


S, INT, NI, F, B = "string", "int64", "Int64", "float64", "boolean"

NODES = _schema(
    "nodes",
    "One row per node (kind node).",
    ("name", S, "node name, e.g. kind-worker"),
    ("role", S, "control-plane or worker"),
    ("internal_ip", S, "node IP on the kind network (eth0)"),
    ("pod_cidr", S, "the node's pod CIDR, e.g. 10.244.1.0/24"),
    ("router_ip", S, "cilium_host address (the pods' gateway)"),
)

PODS = _schema(
    "pods",
    "One row per pod.",
    ("namespace", S, "Kubernetes namespace"),
    ("name", S, "pod name"),
    ("node", S, "node it runs on"),
    ("ip", S, "pod IP"),
    ("image", S, "container image"),
    ("app", S, "what runs in it: whoami (HTTP server) or idle (netshoot)"),
    ("lxc", S, "host-side veth in the node, lxc + 12 hex"),
    ("lxc_ifindex", NI, "ifindex of the lxc in the node"),
    ("pod_mac", S, "MAC of the pod's eth0"),
    ("lxc_mac", S, "MAC of the lxc (the endpoint's nodemac)"),
    ("endpoint_id", NI, "Cilium endpoint id (missing without a datapath)"),
    ("identity", NI, "security identity of the pod's label set"),
    ("labels", S, "pod labels, k=v joined by ','"),
)

SERVICES = _schema(
    "services",
    "One row per service port.",
    ("namespace", S, "Kubernetes namespace"),
    ("name", S, "service name"),
    ("type", S, "ClusterIP"),
    ("cluster_ip", S, "the virtual IP"),
    ("port", INT, "service port"),
    ("target_port", INT, "port on the backends"),
    ("protocol", S, "TCP or UDP"),
    ("backends", S, "backend ip:port joined by ','"),
)

LABS = _schema(
    "labs",
    "One row per lab of a backend on this machine (`labkit list`).",
    ("name", S, "lab name (--lab)"),
    ("backend", S, "embedded or kind"),
    ("status", S, "up, building, or leftovers (a crash halfway: labkit down removes them)"),
    ("datapath", S, "ebpf, kernel (embedded) or cilium (kind); missing when unknown"),
    ("options", S, "--set overrides, KEY=VALUE joined by ','"),
    ("created", "datetime64[ns, UTC]", "when `up` finished; missing when unknown"),
    ("companion_of", S, "the lab a lesson made this one for ('' if none): down of that lab removes it"),
    ("companions", S, "labs made for this one, joined by ','"),
    ("checkout", S, "the labkit checkout that built it ('' if unknown): down --all asks before others'"),
)

ROUTES = _schema(
    "routes",
    "The IPv4 routing table of each node (`ip route`), main table.",
    ("node", S, "node name"),
    ("dst", S, "destination prefix, or 'default'"),
    ("gateway", S, "next hop, '' when directly connected"),
    ("dev", S, "output interface"),
    ("scope", S, "link, global, ..."),
    ("src", S, "preferred source address, ''"),
)

ENDPOINTS = _schema(
    "endpoints",
    "cilium_lxc, as `cilium bpf endpoint list`: one row per local address.",
    ("node", S, "node whose map this is"),
    ("ip", S, "endpoint address"),
    ("endpoint_id", NI, "endpoint id (lxc_id); missing for (localhost) rows"),
    ("identity", NI, "security identity (sec_id); missing for (localhost)"),
    ("flags", INT, "ENDPOINT_F_* bits; 1 = host"),
    ("ifindex", NI, "host-side lxc ifindex"),
    ("mac", S, "pod eth0 MAC"),
    ("node_mac", S, "lxc MAC, used as the router MAC"),
    ("is_host", B, "a (localhost) row: router IP or node IP"),
)

CT = _schema(
    "ct",
    "cilium_ct4_global + cilium_ct_any4_global, as `cilium bpf ct list global`.",
    ("node", S, "node whose map this is"),
    ("proto", S, "TCP, UDP or ICMP"),
    ("direction", S, "OUT, IN or SVC (tuple flags)"),
    ("src_ip", S, "client address, as printed"),
    ("src_port", INT, "client port (ICMP: echo id)"),
    ("dst_ip", S, "server address, as printed"),
    ("dst_port", INT, "server port"),
    ("related", B, "TUPLE_F_RELATED"),
    ("expires", INT, "absolute expiry, seconds of monotonic clock"),
    ("packets", INT, "packets (with conntrack accounting)"),
    ("bytes", INT, "bytes (with conntrack accounting)"),
    ("rx_flags_seen", INT, "TCP flags seen in reply direction"),
    ("tx_flags_seen", INT, "TCP flags seen in original direction"),
    ("flags", INT, "entry flag bits"),
    ("flag_names", S, "RxClosing TxClosing SeenNonSyn ... as printed between [ ]"),
    ("rev_nat", INT, "RevNAT index (service id), 0 if none"),
    ("src_identity", INT, "SourceSecurityID"),
    ("ifindex", INT, "IfIndex (v1.17 prints it)"),
    ("backend_id", INT, "BackendID (SVC entries)"),
)

NAT = _schema(
    "nat",
    "cilium_snat_v4_external, as `cilium bpf nat list`.",
    ("node", S, "node whose map this is"),
    ("proto", S, "TCP, UDP or ICMP"),
    ("direction", S, "OUT (SNAT) or IN (reverse SNAT)"),
    ("src_ip", S, "tuple source"),
    ("src_port", INT, "tuple source port"),
    ("dst_ip", S, "tuple destination"),
    ("dst_port", INT, "tuple destination port"),
    ("xlate", S, "SRC (rewrite source) or DST (rewrite destination)"),
    ("xlate_ip", S, "address written"),
    ("xlate_port", INT, "port written"),
    ("created_ago_s", NI, "seconds since created"),
    ("needs_ct", INT, "NeedsCT"),
)

LB = _schema(
    "lb",
    "cilium_lb4_services_v2 + backends + reverse NAT, as `cilium bpf lb list`: one row per slot.",
    ("node", S, "node whose map this is"),
    ("frontend_ip", S, "service VIP"),
    ("frontend_port", INT, "service port"),
    ("proto", S, "TCP, UDP or ANY"),
    ("slot", INT, "backend slot; 0 is the service (master) entry"),
    ("backend_ip", S, "backend address; 0.0.0.0 on slot 0"),
    ("backend_port", INT, "backend port"),
    ("backend_id", NI, "backend id (missing on slot 0)"),
    ("rev_nat", INT, "reverse NAT id of the service"),
    ("flags", S, "service flags on slot 0, e.g. 'ClusterIP, non-routable'"),
)

IPCACHE = _schema(
    "ipcache",
    "cilium_ipcache, as `cilium bpf ipcache list`.",
    ("node", S, "node whose map this is"),
    ("prefix", S, "CIDR, e.g. 10.244.1.71/32"),
    ("identity", INT, "security identity"),
    ("encrypt_key", INT, "encryptkey"),
    ("tunnel_endpoint", S, "node IP for remote pods, 0.0.0.0 otherwise"),
    ("flags", S, "<none> (Cilium 1.17 sets no flags)"),
)

METRICS = _schema(
    "metrics",
    "cilium_metrics, as `cilium bpf metrics list`.",
    ("node", S, "node whose map this is"),
    ("reason", S, "Success, Interface (received on a device), or the drop reason"),
    ("direction", S, "INGRESS or EGRESS"),
    ("packets", INT, "packet count"),
    ("bytes", INT, "byte count"),
)

EVENTS = _schema(
    "events",
    "Datapath trace and drop events, as `cilium monitor`.",
    ("time", "datetime64[ns, UTC]", "when the event was read"),
    ("node", S, "node that emitted it"),
    ("type", S, "trace, drop, or trace-sock (a socket-LB translation; `cilium monitor -v` prints these)"),
    ("observation_point", S, "to-endpoint, to-network, to-stack, ...; trace-sock: pre-xlate-fwd, post-xlate-fwd, ..."),
    ("source", INT, "endpoint id of the emitting program (the host endpoint's for host programs)"),
    ("dst_id", INT, "destination endpoint id, 0 if none"),
    ("flow", INT, "skb hash, printed as flow 0x..."),
    ("src_identity", INT, "source security identity"),
    ("dst_identity", INT, "destination security identity"),
    ("state", S, "CT result: new, established, reply, related, unknown"),
    ("ifindex", INT, "interface index"),
    ("ifname", S, "interface name, or '0'"),
    ("orig_ip", S, "source before reverse NAT, 0.0.0.0 if not set"),
    ("proto", S, "TCP, UDP, ICMP or ARP"),
    ("src_ip", S, "packet source"),
    ("src_port", NI, "packet source port"),
    ("dst_ip", S, "packet destination"),
    ("dst_port", NI, "packet destination port"),
    ("tcp_flags", S, "SYN, ACK, FIN ... as Cilium joins them"),
    ("drop_reason", S, "drop reason text, '' for traces"),
    ("line", S, "the line `cilium monitor` prints"),
)

FLOWS = _schema(
    "flows",
    "Hubble-like flows, as `hubble observe -o json` (one row per flow event).",
    ("time", "datetime64[ns, UTC]", "event time"),
    ("node", S, "node_name"),
    ("verdict", S, "FORWARDED, DROPPED, TRACED, TRANSLATED, ..."),
    ("drop_reason", S, "the drop reason as `cilium monitor` names it (from drop_reason_desc), '' if none"),
    ("proto", S, "TCP, UDP, ICMPv4"),
    ("src_ip", S, "IP.source"),
    ("src_xlated", S, "IP.source_xlated, '' if none"),
    ("src_port", NI, "l4 source port"),
    ("dst_ip", S, "IP.destination"),
    ("dst_port", NI, "l4 destination port"),
    ("tcp_flags", S, "flags joined by ', ' (SYN, ACK, ...)"),
    ("src_pod", S, "namespace/pod of the source, '' if not a pod"),
    ("dst_pod", S, "namespace/pod of the destination"),
    ("src_identity", INT, "source identity"),
    ("dst_identity", INT, "destination identity"),
    ("traffic_direction", S, "INGRESS, EGRESS or TRAFFIC_DIRECTION_UNKNOWN"),
    ("observation_point", S, "TO_ENDPOINT, FROM_ENDPOINT, TO_NETWORK, ..."),
    ("type", S, "the TYPE `hubble observe` prints: to-endpoint, pre-xlate-fwd, ..., or the drop reason"),
    ("trace_reason", S, "NEW, ESTABLISHED, REPLY, ..."),
    ("is_reply", B, "is_reply (missing when unknown)"),
    ("ifname", S, "interface name"),
    ("summary", S, "Summary, e.g. 'TCP Flags: SYN'"),
)

PACKETS = _schema(
    "packets",
    "Captured packets: one row per packet per capture point.",
    ("time", F, "seconds since the epoch"),
    ("point", S, "capture point, node:iface or pod:iface"),
    ("node", S, "node the interface is in (for a pod point: the pod's node)"),
    ("pod", S, "pod the interface belongs to ('' for node interfaces other than lxc; for an lxc, its pod)"),
    ("interface", S, "interface name"),
    ("direction", S, "in or out, relative to the interface ('' if unknown)"),
    ("src_mac", S, "Ethernet source"),
    ("dst_mac", S, "Ethernet destination"),
    ("proto", S, "TCP, UDP, ICMP, ARP or the ethertype in hex"),
    ("src_ip", S, "IPv4 source (ARP: sender)"),
    ("dst_ip", S, "IPv4 destination (ARP: target)"),
    ("src_port", NI, "L4 source port"),
    ("dst_port", NI, "L4 destination port"),
    ("tcp_flags", S, "tcpdump notation: [S], [S.], [P.], [F.], [.], [R]"),
    ("seq", NI, "TCP sequence number (absolute)"),
    ("ack", NI, "TCP acknowledgement number (absolute)"),
    ("ip_id", NI, "IPv4 identification; with ports and seq/ack it tells one packet seen at several points"),
    ("length", INT, "frame length on the wire"),
    ("summary", S, "one line like tcpdump's"),
)

TRACE = _schema(
    "trace",
    "Kernel events of traced packets (`labkit trace`, like pwru): one row per event, oldest first.",
    ("time", F, "seconds since the epoch (the kernel's clock)"),
    ("packet", INT, "packet number in this trace (1, 2, ...); a packet keeps it across the skbs that carry it"),
    ("skb", S, "kernel address of the skb, as pwru prints it"),
    ("cpu", INT, "CPU the event ran on"),
    ("process", S, "task running on that CPU (softirq work runs in whichever task it interrupted)"),
    ("pid", INT, "its process id"),
    ("netns", S, "the lab's node or pod whose network namespace it happened in ('' if unknown)"),
    ("node", S, "the node of that namespace ('' for the kind network)"),
    ("interface", S, "the device"),
    ("length", NI, "skb length in bytes (missing where the event has none)"),
    ("tuple", S, "addresses, ports and protocol at the packet's last tc hook: 10.244.1.71:41234->10.244.1.182:80(tcp)"),
    ("proto", S, "TCP, UDP, ICMP, ARP"),
    ("tcp_flags", S, "tcpdump notation: [S], [S.], [P.], [F.], [.]"),
    ("event", S, "tracepoint (net:netif_receive_skb, fib:fib_table_lookup, ...) or tc:ingress / tc:egress"),
    ("hook", S, "tc events: the datapath's program at that hook (cil_from_container, ...), '' if none"),
    ("verdict", S, "tc events: what the datapath did with the packet, from its trace and drop events"),
    ("free", S, "consumed or dropped (skb:consume_skb / skb:kfree_skb), '' otherwise"),
    ("drop_reason", S, "the kernel's drop reason by name (NO_SOCKET), or the datapath's at its hook"),
    ("detail", S, "the event's own fields: the route found, the neighbour, the freeing function"),
)

CHECKS = _schema(
    "checks",
    "a classroom's lesson checks: each student's latest verdict per exercise (the instructor's page)",
    ("student", S, "login name of the student"),
    ("lesson", S, "notebook the check cell is in, e.g. 02-same-node ('' if unknown)"),
    ("question", S, "what the check asks, as the lesson's check cell names it"),
    ("verdict", S, "right, wrong or not tried"),
    ("time", F, "when it was checked (Unix seconds)"),
)

ALL = {
    s.name: s
    for s in (
        LABS,
        NODES,
        PODS,
        SERVICES,
        ROUTES,
        ENDPOINTS,
        CT,
        NAT,
        LB,
        IPCACHE,
        METRICS,
        EVENTS,
        FLOWS,
        PACKETS,
        TRACE,
        CHECKS,
    )
}
