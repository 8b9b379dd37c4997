"""What a Lab asks of the eBPF datapath: map tables, monitor events, flows.

The embedded backend delegates ``maps`` / ``monitor`` / ``flows`` (and their line-by-line
CLI forms) here with its names and plan; everything is read from pins and the agent's
event files, so any process can do it while the lab runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator

import pandas as pd

from ...cilium import text as cilium_text
from ...errors import LabError
from ...netns import NetNS
from ...plan import Plan
from ..names import LabNames
from . import bpfsys
from . import events as ev
from .maps import NodeMapReader
from .ringbuf import wait_drained

BANNER = "Listening for events on {cpus} CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit"


class DatapathView:
    def __init__(self, names: LabNames, plan: Plan) -> None:
        self.names, self.plan = names, plan

    def maps(self, node: str) -> NodeMapReader:
        self.plan.node(node)  # unknown node: LabError (exit 2)
        return NodeMapReader(node, self.names.bpffs / node)

    def nodes(self, node: str | None) -> list[str]:
        if node is not None:
            return [self.plan.node(node).name]
        return [n.name for n in self.plan.nodes]

    def ifnames(self, node: str) -> dict[int, str]:
        return {v["ifindex"]: k for k, v in NetNS(self.names.node(node)).links().items()}

    def check_filters(self, node: str | None, *endpoints: int | None) -> None:
        """A bad node or endpoint id is one error line, before anything is printed."""
        self.nodes(node)
        known = {p.endpoint_id for p in self.plan.pods if node is None or p.node == node}
        for ep in endpoints:
            if ep is not None and ep not in known:
                raise LabError(
                    f"unknown endpoint id {ep}"
                    + (f" on node {node}" if node else "")
                    + f"; known: {', '.join(str(i) for i in sorted(known)) or 'none'} "
                    f"(labkit bpf endpoint list)"
                )

    def event_rows(
        self,
        node: str | None = None,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        seconds: float | None = None,
    ) -> list[dict]:
        """Recorded events (the last ``seconds``, or all kept), oldest first, filtered."""
        self.check_filters(node, from_, to, related_to)
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
        try:
            fd = bpfsys.obj_get(str(self.names.bpffs / node / "cilium_events"))
        except LabError:
            return
        try:
            wait_drained(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _window(
        seconds: float | None, duration: float | None, during: Callable[[], object] | None, settle: float = 0.3
    ) -> float | None:
        """The look-back window that covers ``during`` / ``duration`` (or ``seconds``)."""
        if during is None and duration is None:
            return seconds
        t0 = time.time()
        if during is not None:
            during()
        time.sleep(max(settle, (duration or 0) - (time.time() - t0)))
        return time.time() - t0 + 0.05

    def monitor(
        self,
        node: str | None = None,
        *,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        self.check_filters(node, from_, to, related_to)
        window = self._window(seconds, duration, during)
        return ev.events_frame(self.event_rows(node, from_, to, related_to, window))

    def follow(
        self,
        node: str | None = None,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        duration: float | None = None,
    ) -> Iterator[dict]:
        """New events as they happen (for `labkit monitor` / `observe --follow`)."""
        self.check_filters(node, from_, to, related_to)
        names = {n: self.ifnames(n) for n in self.nodes(node)}
        for n, recs in ev.follow(self.names.state_dir / "events", names, duration):
            yield from ev.select(ev.decode(recs, n, names[n]), from_, to, related_to)

    def monitor_lines(
        self,
        node: str | None = None,
        *,
        from_: int | None = None,
        to: int | None = None,
        related_to: int | None = None,
        json: bool = False,
        seconds: float | None = None,
        duration: float | None = None,
    ) -> Iterator[str]:
        self.check_filters(node, from_, to, related_to)
        print(BANNER.format(cpus=os.cpu_count()), file=sys.stderr, flush=True)  # as cilium-dbg: on stderr
        rows = (
            self.event_rows(node, from_, to, related_to, seconds)
            if seconds is not None
            else self.follow(node, from_, to, related_to, duration)
        )
        for r in rows:
            yield ev.monitor_json(r) if json else r["line"]

    def pods_by_ip(self) -> dict[str, dict]:
        return {
            p.ip: {
                "key": p.key,
                "namespace": p.namespace,
                "name": p.name,
                "endpoint_id": p.endpoint_id,
                "node": p.node,
                "labels": p.labels,
                "owner": p.owner,
            }
            for p in self.plan.pods
        }

    def flow_rows(self, node: str | None = None, seconds: float | None = None) -> list[dict]:
        return ev.flows(self.event_rows(node, seconds=seconds), self.pods_by_ip())

    def flows(
        self,
        node: str | None = None,
        *,
        seconds: float | None = None,
        duration: float | None = None,
        during: Callable[[], object] | None = None,
    ) -> pd.DataFrame:
        self.nodes(node)
        window = self._window(seconds, duration, during)
        return ev.flows_frame(self.flow_rows(node, window))

    def observe_lines(
        self,
        node: str | None = None,
        *,
        last: int | None = 20,
        seconds: float | None = None,
        follow: bool = False,
        duration: float | None = None,
        output: str = "compact",
    ) -> Iterator[str]:
        self.nodes(node)

        def show(f: dict) -> str:
            return json.dumps(f["_json"], separators=(",", ":")) if output == "json" else cilium_text.hubble_compact(f)

        rows = self.flow_rows(node, seconds)
        for f in rows if last is None else rows[-last:] if last else []:
            yield show(f)
        if follow:
            pods = self.pods_by_ip()
            for r in self.follow(node, duration=duration):
                for f in ev.flows([r], pods):
                    yield show(f)
