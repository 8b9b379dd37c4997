"""Reading (and flushing) one node's pinned maps into labkit's shared tables.

Each reader fetches the whole map with BPF_MAP_LOOKUP_BATCH (a few system calls, see
bpfsys.lookup_batch), views the bytes as a numpy structured array (layouts.py) and builds
the DataFrame column by column: no per-entry Python, so a 100k-entry CT map reads in a
fraction of a second. Columns and dtypes are the shared schemas of labkit.tables, the
same the live backend parses from real Cilium output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ... import tables
from ...cilium import agent as cilium_agent
from ...cilium import ct_flag_names
from ...cilium import text as cilium_text
from ...cilium.reasons import DIRECTIONS, FILES, metric_reason
from ...errors import ExitStatus, LabError
from . import bpfsys
from . import layouts as L

FLUSHABLE = {"ct": ("cilium_ct4_global", "cilium_ct_any4_global"), "nat": ("cilium_snat_v4_external",)}
# Where `cilium bpf ... flush` says it flushed (Cilium's pin paths; ours are per lab and node).
CILIUM_PINS = "/sys/fs/bpf/tc/globals"
TEXT = (
    "endpoints", "ct", "nat", "lb", "ipcache", "metrics", "services",
    "endpoint-list", "identities", "status", "status-verbose", "version",
)  # fmt: skip


class NodeMapReader:
    """The maps of node ``node`` pinned in ``pin_dir`` (a :class:`labkit.backend.MapsReader`)."""

    def __init__(
        self,
        node: str,
        pin_dir: Path,
        service_meta: dict | None = None,
        agent: Callable[[], cilium_agent.NodeAgent] | None = None,
    ) -> None:
        self.node = node
        self.pin_dir = Path(pin_dir)
        self.agent = agent  # what the node's agent knows beyond its maps (status, endpoints)
        # frontend (ip, port, proto) -> what `service list -o json` shows beyond the maps
        self.service_meta = service_meta or {}
        if not self.pin_dir.is_dir():
            raise LabError(
                f"node {node!r} has no datapath maps ({self.pin_dir} is missing)", exit_code=ExitStatus.FAILURE
            )

    # ------------------------------------------------------------------ raw access
    def _open(self, name: str) -> int:
        """A new fd of map ``name`` (the caller closes it)."""
        path = self.pin_dir / name
        if not path.exists():
            raise LabError(f"map {name} is missing on node {self.node} ({path})", exit_code=ExitStatus.FAILURE)
        return bpfsys.obj_get(str(path))

    def _dump(self, name: str, kdt: np.dtype, vdt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        fd = self._open(name)
        try:
            info = bpfsys.MapInfo(fd)
            if info.type == bpfsys.MAP_PERCPU_HASH:
                # one value per possible CPU, summed (as `cilium bpf metrics list` does)
                ncpu = bpfsys.possible_cpus()
                kb, vb, n = bpfsys.lookup_batch(fd, kdt.itemsize, vdt.itemsize * ncpu, info.max_entries)
                per = np.frombuffer(vb, dtype=vdt, count=n * ncpu).reshape(n, ncpu)
                summed = np.zeros(n, dtype=vdt)
                for f in vdt.names or ():
                    summed[f] = per[f].sum(axis=1)
                return np.frombuffer(kb, dtype=kdt, count=n), summed
            if info.type == bpfsys.MAP_LPM_TRIE:
                ks = bpfsys.keys(fd, kdt.itemsize)
                vs = [bpfsys.lookup(fd, k, vdt.itemsize) or b"\0" * vdt.itemsize for k in ks]
                kb, vb, n = b"".join(ks), b"".join(vs), len(ks)
            else:
                kb, vb, n = bpfsys.lookup_batch(fd, kdt.itemsize, vdt.itemsize, info.max_entries)
        finally:
            os.close(fd)
        return np.frombuffer(kb, dtype=kdt, count=n), np.frombuffer(vb, dtype=vdt, count=n)

    # ------------------------------------------------------------------ tables
    def endpoints(self) -> pd.DataFrame:
        k, v = self._dump("cilium_lxc", L.ENDPOINT_KEY, L.ENDPOINT_INFO)
        host = (v["flags"] & L.FLAG_HOST) != 0
        df = pd.DataFrame(
            {
                "node": self.node,
                "ip": L.ips(k["ip4"]),
                "endpoint_id": pd.array(np.where(host, 0, v["lxc_id"]), dtype="Int64"),
                "identity": pd.array(np.where(host, 0, v["sec_id"]), dtype="Int64"),
                "flags": v["flags"].astype("int64"),
                "ifindex": pd.array(np.where(host, 0, v["ifindex"]), dtype="Int64"),
                "mac": L.macs(v["mac"]),
                "node_mac": L.macs(v["node_mac"]),
                "is_host": host,
            }
        )
        for col in ("endpoint_id", "identity", "ifindex"):
            df.loc[host, col] = pd.NA
        df.loc[host, ["mac", "node_mac"]] = None
        return tables.ENDPOINTS.frame(df)

    def ct(self) -> pd.DataFrame:
        frames, rx, tx = [], [], []
        for name in FLUSHABLE["ct"]:
            k, v = self._dump(name, L.CT_KEY, L.CT_ENTRY)
            frames.append(_ct_frame(self.node, k, v))
            rx += v["last_rx_report"].tolist()
            tx += v["last_tx_report"].tolist()
        df = tables.CT.frame(pd.concat(frames, ignore_index=True))
        # Not in the shared schema, but `cilium bpf ct list` prints them: kept for cilium.text.ct_list.
        df.attrs["last_rx_report"], df.attrs["last_tx_report"] = rx, tx
        return df

    def nat(self) -> pd.DataFrame:
        k, v = self._dump("cilium_snat_v4_external", L.CT_KEY, L.NAT_ENTRY)
        inbound = (k["flags"] & 1) != 0
        now = int(time.monotonic())
        df = pd.DataFrame(
            {
                "node": self.node,
                "proto": _protos(k["nexthdr"]),
                "direction": np.where(inbound, "IN", "OUT"),
                "src_ip": L.ips(k["saddr"]),
                "src_port": k["sport"].astype("int64"),
                "dst_ip": L.ips(k["daddr"]),
                "dst_port": k["dport"].astype("int64"),
                "xlate": np.where(inbound, "DST", "SRC"),
                "xlate_ip": L.ips(v["addr"]),
                "xlate_port": v["port"].astype("int64"),
                "created_ago_s": pd.array(now - v["created"].astype("int64"), dtype="Int64"),
                "needs_ct": v["needs_ct"].astype("int64"),
            }
        )
        out = tables.NAT.frame(df)
        out.attrs["created"] = v["created"].astype("int64").tolist()  # -o json prints the raw value
        return out

    def lb(self) -> pd.DataFrame:
        k, v = self._dump("cilium_lb4_services_v2", L.LB4_KEY, L.LB4_SERVICE)
        bk, bv = self._dump("cilium_lb4_backends_v3", np.dtype("<u4"), L.LB4_BACKEND)
        backends = {int(i): b for i, b in zip(bk, bv)}
        rows = []
        for key, val in zip(k, v):
            slot = int(key["backend_slot"])
            row = {
                "node": self.node,
                "frontend_ip": L.ips([key["address"]])[0],
                "frontend_port": int(key["dport"]),
                "proto": L.PROTO_NAMES.get(int(key["proto"]), "ANY"),
                "slot": slot,
                "rev_nat": int(val["rev_nat_index"]),
            }
            if slot == 0:
                row.update(
                    backend_ip="0.0.0.0", backend_port=0, flags=_svc_flags(int(val["flags"]), int(val["flags2"]))
                )
            else:
                bid = int(val["backend_id"])
                b = backends.get(bid)
                row.update(backend_id=bid, flags="" if b is not None else f"backend {bid} not found")
                if b is not None:
                    row.update(backend_ip=L.ips([b["address"]])[0], backend_port=int(b["port"]))
            rows.append(row)
        return tables.LB.frame(rows)

    def _backend_protos(self) -> dict[int, str]:
        bk, bv = self._dump("cilium_lb4_backends_v3", np.dtype("<u4"), L.LB4_BACKEND)
        return {int(i): L.PROTO_NAMES.get(int(b["proto"]), "ANY") for i, b in zip(bk, bv)}

    def ipcache(self) -> pd.DataFrame:
        k, v = self._dump("cilium_ipcache", L.IPCACHE_KEY, L.IPCACHE_VALUE)
        plen = k["prefixlen"].astype("int64") - 32
        df = pd.DataFrame(
            {
                "node": self.node,
                "prefix": [f"{ip}/{p}" for ip, p in zip(L.ips(k["ip4"]), plen)],
                "identity": v["sec_identity"].astype("int64"),
                "encrypt_key": v["key"].astype("int64"),
                "tunnel_endpoint": L.ips(v["tunnel_endpoint"]),
                "flags": "<none>",  # Cilium 1.17 sets no ipcache flags (pkg/maps/ipcache/listener.go)
            }
        )
        return tables.IPCACHE.frame(df)

    def _metrics_raw(self) -> pd.DataFrame:
        """One row per (reason, direction, line, file), as `cilium bpf metrics list` prints."""
        k, v = self._dump("cilium_metrics", L.METRICS_KEY, L.METRICS_VALUE)
        return pd.DataFrame(
            {
                "reason": [metric_reason(int(r)) for r in k["reason"]],
                "direction": [DIRECTIONS.get(int(d), "UNKNOWN") for d in k["dir"]],
                "packets": v["count"].astype("int64"),
                "bytes": v["bytes"].astype("int64"),
                "line": k["line"].astype("int64"),
                "file": [FILES.get(int(f), str(int(f))) for f in k["file"]],
            }
        )

    def metrics(self) -> pd.DataFrame:
        raw = self._metrics_raw()
        if raw.empty:
            return tables.METRICS.frame([])
        df = raw.groupby(["reason", "direction"], sort=True, as_index=False)[["packets", "bytes"]].sum()
        df.insert(0, "node", self.node)
        return tables.METRICS.frame(df)

    # ------------------------------------------------------------------ flush
    def flush(self, what: str) -> dict[str, int]:
        """Delete every entry of the CT maps ("ct") or the NAT map ("nat"): removed per map,
        keyed by the path `cilium bpf ... flush` names."""
        if what not in FLUSHABLE:
            raise LabError(f"cannot flush {what!r}: choose ct or nat")
        removed: dict[str, int] = {}
        for name in FLUSHABLE[what]:
            fd = self._open(name)
            try:
                info = bpfsys.MapInfo(fd)
                kb, _, n = bpfsys.lookup_batch(fd, info.key_size, info.value_size, info.max_entries)
                bpfsys.delete_batch(fd, kb, info.key_size)
                removed[f"{CILIUM_PINS}/{name}"] = n
            finally:
                os.close(fd)
        return removed

    # ------------------------------------------------------------------ as Cilium prints them
    def text(self, what: str, *, output: str = "text", time_diff: bool = False) -> str:
        """What `cilium bpf <what> list` / `cilium service list` prints for these maps."""
        if what not in TEXT:
            raise LabError(f"unknown map {what!r}: use one of {', '.join(TEXT)}")
        if what == "endpoints":
            return cilium_text.endpoint_list(self.endpoints(), output)
        if what == "ct":
            return cilium_text.ct_list(self.ct(), output, int(time.monotonic()) if time_diff else None)
        if what == "nat":
            return cilium_text.nat_list(self.nat(), output)
        if what == "lb":
            return cilium_text.lb_list(self.lb(), self._backend_protos(), output)
        if what == "services":
            return cilium_text.service_list(self.lb(), output, self.service_meta)
        if what in ("endpoint-list", "identities", "status", "status-verbose", "version"):
            if what == "version":
                return cilium_agent.version()
            if self.agent is None:
                raise LabError(f"`cilium {what}` needs the lab's plan; read it through lab.maps(node)")
            a = self.agent()
            if what == "endpoint-list":
                return cilium_agent.endpoint_list(a, output)
            if what == "identities":
                return cilium_agent.identity_list(a.identities, output)
            return cilium_agent.status(a, verbose=what == "status-verbose")
        if what == "ipcache":
            return cilium_text.ipcache_list(self.ipcache(), output)
        return cilium_text.metrics_list(self._metrics_raw(), output)


def _protos(nexthdr: np.ndarray) -> list[str]:
    names = {6: "TCP", 17: "UDP", 1: "ICMP"}
    return (
        [names.get(int(x), str(int(x))) for x in nexthdr]
        if len(nexthdr) < 64
        else list(pd.Series(nexthdr).map(lambda x: names.get(int(x), str(int(x)))))
    )


def _svc_flags(flags: int, flags2: int = 0) -> str:
    """ServiceFlags.String() (pkg/loadbalancer) for the types we create (ClusterIP only)."""
    out = ["ClusterIP"]
    if flags2 & L.SVC_FLAG_INT_LOCAL_SCOPE:
        out.append("InternalLocal")
    if not flags & L.SVC_FLAG_ROUTABLE:
        out.append("non-routable")
    return ", ".join(out)


def _ct_frame(node: str, k: np.ndarray, v: np.ndarray) -> pd.DataFrame:
    f = k["flags"]
    svc = (f & 4) != 0
    inb = (f & 1) != 0
    saddr, daddr = k["saddr"], k["daddr"]
    sport, dport = k["sport"].astype("int64"), k["dport"].astype("int64")
    # SVC keys print "saddr:dport -> daddr:sport"; OUT/IN keys print reversed (see conntrack.h)
    src_ip = L.ips(np.where(svc, saddr, daddr))
    dst_ip = L.ips(np.where(svc, daddr, saddr))
    src_port = np.where(svc, dport, sport)
    dst_port = np.where(svc, sport, dport)
    eflags = v["flags"].astype("int64")
    uniq = {int(x): ct_flag_names(int(x)) for x in np.unique(eflags)}
    return pd.DataFrame(
        {
            "node": node,
            "proto": pd.Series(k["nexthdr"]).map({6: "TCP", 17: "UDP", 1: "ICMP"}).fillna("?").values,
            "direction": np.where(svc, "SVC", np.where(inb, "IN", "OUT")),
            "src_ip": src_ip,
            "src_port": src_port,
            "dst_ip": dst_ip,
            "dst_port": dst_port,
            "related": (f & 2) != 0,
            "expires": v["lifetime"].astype("int64"),
            "packets": v["packets"].astype("int64"),
            "bytes": v["bytes"].astype("int64"),
            "rx_flags_seen": v["rx_flags_seen"].astype("int64"),
            "tx_flags_seen": v["tx_flags_seen"].astype("int64"),
            "flags": eflags,
            "flag_names": [uniq[int(x)] for x in eflags],
            "rev_nat": v["rev_nat_index"].astype("int64"),
            "src_identity": v["src_sec_id"].astype("int64"),
            "ifindex": v["ifindex"].astype("int64"),
            "backend_id": v["backend_id"].astype("int64"),
        }
    )
