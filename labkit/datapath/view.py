"""What a Lab asks of the eBPF datapath: map tables, monitor events, flows.

The embedded backend delegates ``maps`` / ``monitor`` / ``flows`` here with its names,
plan and datapath; everything is read from pins and the agent's event files, so any
process can do it while the lab runs.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import pandas as pd

from ..embedded import netns
from ..embedded.datapath import no_datapath
from ..embedded.names import LabNames
from ..errors import LabError
from ..plan import Plan
from . import events as ev
from .maps import NodeMapReader

MAPS = ("endpoints", "ct", "nat", "lb", "ipcache", "metrics")


class DatapathView:
    def __init__(self, names: LabNames, plan: Plan, datapath: str) -> None:
        self.names, self.plan, self.datapath = names, plan, datapath

    def _need_ebpf(self, what: str) -> None:
        if self.datapath != "ebpf":
            raise no_datapath(self.datapath, what)

    def maps(self, node: str) -> NodeMapReader:
        self._need_ebpf("bpf maps")
        self.plan.node(node)     # unknown node: LabError (exit 2)
        return NodeMapReader(node, self.names.bpffs / node)

    def nodes(self, node: str | None) -> list[str]:
        if node is not None:
            return [self.plan.node(node).name]
        return [n.name for n in self.plan.nodes]

    def ifnames(self, node: str) -> dict[int, str]:
        return {v["ifindex"]: k for k, v in netns.links(self.names.node(node)).items()}

    def check_endpoint(self, ep: int | None, node: str | None) -> None:
        if ep is None:
            return
        known = {p.endpoint_id for p in self.plan.pods if node is None or p.node == node}
        if ep not in known:
            raise LabError(f"unknown endpoint id {ep}" + (f" on node {node}" if node else "") +
                           f"; known: {', '.join(str(i) for i in sorted(known)) or 'none'} (labkit bpf endpoint list)")

    def event_rows(self, node: str | None = None, from_: int | None = None, to: int | None = None,
                   related_to: int | None = None, seconds: float | None = None) -> list[dict]:
        """Recorded events (the last ``seconds``, or all kept), oldest first, filtered."""
        self._need_ebpf("monitor")
        for ep in (from_, to, related_to):
            self.check_endpoint(ep, node)
        since = 0 if seconds is None else ev.now_ns() - int(seconds * 1e9)
        rows: list[dict] = []
        for n in self.nodes(node):
            self._drained(n)
            recs = ev.read_records(self.names.state_dir / "events", n, since)
            rows += ev.decode(recs, n, self.ifnames(n) if recs else {})
        rows.sort(key=lambda r: r["time"])
        return ev.select(rows, from_, to, related_to)

    def _drained(self, node: str) -> None:
        """Let the agent move every event produced so far into its file before reading."""
        from . import bpfsys
        from .ringbuf import wait_drained
        try:
            fd = bpfsys.obj_get(str(self.names.bpffs / node / "cilium_events"))
        except LabError:
            return
        try:
            wait_drained(fd)
        finally:
            os.close(fd)

    def monitor(self, node: str | None = None, from_: int | None = None, to: int | None = None,
                related_to: int | None = None, seconds: float | None = None, *,
                during: Callable[[], object] | None = None, duration: float | None = None,
                settle: float = 0.3) -> pd.DataFrame:
        """EVENTS. ``during``: run it, then return the events since it started (plus
        ``settle`` s for the last ones to arrive); ``duration``: wait that long and return
        what happened meanwhile (the live backend's semantics); else the last ``seconds``."""
        if during is not None or duration is not None:
            t0 = time.time()
            if during is not None:
                during()
            time.sleep(max(settle, (duration or 0) - (time.time() - t0)))
            seconds = time.time() - t0 + 0.05
        return ev.events_frame(self.event_rows(node, from_, to, related_to, seconds))

    def follow(self, node: str | None = None, from_: int | None = None, to: int | None = None,
               related_to: int | None = None, seconds: float | None = None) -> Iterator[dict]:
        """New events as they happen (for `labkit monitor` / `observe --follow`)."""
        self._need_ebpf("monitor")
        for ep in (from_, to, related_to):
            self.check_endpoint(ep, node)
        names = {n: self.ifnames(n) for n in self.nodes(node)}
        for n, recs in ev.follow(self.names.state_dir / "events", names, seconds):
            yield from ev.select(ev.decode(recs, n, names[n]), from_, to, related_to)

    def pods_by_ip(self) -> dict[str, dict]:
        return {p.ip: {"key": p.key, "namespace": p.namespace, "name": p.name, "endpoint_id": p.endpoint_id,
                       "node": p.node, "labels": p.labels, "owner": p.owner} for p in self.plan.pods}

    def flow_rows(self, **kw) -> list[dict]:
        return ev.flows(self.event_rows(**kw), self.pods_by_ip())

    def flows(self, node: str | None = None, seconds: float | None = None, *,
              during: Callable[[], object] | None = None, settle: float = 0.3, **kw) -> pd.DataFrame:
        if during is not None:
            t0 = time.time()
            during()
            time.sleep(settle)
            seconds = time.time() - t0 + 0.05
        return ev.flows_frame(self.flow_rows(node=node, seconds=seconds, **kw))
