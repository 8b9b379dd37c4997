"""The capture panel: run one command in a pod while capturing on many interfaces, then
see, per interface, which packets it saw (tables, counts, and the ladder diagram).

This is the blog's method made one click: the same conversation looked at on the client's
eth0, its lxc, the nodes' eth0 and the server's lxc and eth0, to see where packets are
missing. Works on any backend: it only uses Lab and the shared tables.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, display

from .. import paths
from ..errors import LabError
from ..lab import Lab, connect
from ..plots.ladder import ladder
from ..tables import PACKETS

SHOWN_COLUMNS = ["time", "direction", "src_mac", "dst_mac", "summary"]


def presets(lab: Lab, source: str) -> list[tuple[str, str]]:
    """(label, command) the panel offers for ``source``: the blog's three conversations."""
    pods = lab.pods
    src = pods[pods.name == source].iloc[0]
    web = pods[(pods.app == "whoami") & (pods.name != source)]
    out = []
    same = web[web.node == src.node]
    other = web[web.node != src.node]
    if len(same):
        out.append((f"curl a pod on the same node ({same.iloc[0]['name']})", f"curl -s http://{same.iloc[0]['ip']}"))
    for svc in lab.services.itertuples():
        host = svc.name if svc.namespace == src.namespace else f"{svc.name}.{svc.namespace}.svc.cluster.local"
        port = "" if svc.port == 80 else f":{svc.port}"
        out.append((f"curl the service {svc.name}", f"curl -s http://{host}{port}"))
        out.append((f"curl the ClusterIP of {svc.name}", f"curl -s http://{svc.cluster_ip}{port}"))
    if len(other):
        out.append((f"curl a pod on another node ({other.iloc[0]['name']})", f"curl -s http://{other.iloc[0]['ip']}"))
    return out


class CapturePanel:
    """``CapturePanel(lab).widget`` in a notebook; tests drive ``.source``, ``.points``,
    ``.command`` and ``.run_button.click()`` and read ``.packets`` and ``.figure``."""

    def __init__(self, lab: Lab, *, labs: Callable[[], list[str]] | None = None, seconds: float = 10) -> None:
        self.lab = lab
        self.seconds = seconds
        self.packets: pd.DataFrame = PACKETS.frame([])
        self.figure: go.Figure | None = None
        self.result: subprocess.CompletedProcess[str] | None = None
        lab_names = sorted(set(labs() if labs else lab.existing_labs()) | {lab.name})
        self.lab_picker = w.Dropdown(options=lab_names, value=lab.name, description="lab")
        self.source = w.Dropdown(description="from pod")
        self.points = w.SelectMultiple(description="capture on", rows=8, layout=w.Layout(width="520px"))
        self.command = w.Combobox(
            description="command",
            placeholder="curl -s http://webpod",
            ensure_option=False,
            layout=w.Layout(width="520px"),
        )
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.status = w.HTML()
        self.progress = w.IntProgress(min=0, max=3, layout=w.Layout(width="200px", visibility="hidden"))
        self.counts = w.HTML()
        self.tabs = w.Tab(layout=w.Layout(display="none"))  # shown once there are results
        self.plot = w.Output()
        self.lab_picker.observe(self._on_lab, names="value")
        self.source.observe(self._on_source, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.widget = w.VBox(
            [
                w.HBox([self.lab_picker, self.source]),
                self.points,
                w.HBox([self.command, self.run_button]),
                w.HBox([self.progress, self.status]),
                self.counts,
                self.tabs,
                self.plot,
            ]
        )
        self._refresh()

    def _ipython_display_(self) -> None:
        display(self.widget)

    # ---------------------------------------------------------------- choices
    def _on_lab(self, change) -> None:
        try:
            self.lab = connect(change["new"], self.lab.backend.name)
            self._refresh()
        except LabError as e:
            self._error(e)

    def _refresh(self) -> None:
        try:
            pods = self.lab.pods
        except LabError as e:
            self._error(e)
            return
        names = list(pods.name)
        self.source.options = names
        preferred = "client-pod" if "client-pod" in names else (names[0] if names else None)
        self.source.value = preferred
        self.points.options = self.lab.capture_choices()
        self._on_source({"new": self.source.value})

    def _on_source(self, change) -> None:
        if not change["new"]:
            return
        try:
            choices = presets(self.lab, change["new"])
        except LabError as e:
            self._error(e)
            return
        self.command.options = [c for _, c in choices]
        if choices:
            self.command.value = choices[0][1]
        pods = self.lab.pods
        src = pods[pods.name == change["new"]].iloc[0]
        default = [f"{src['name']}:eth0", f"{src.node}:{src.lxc}", f"{src.node}:eth0"]
        available = {v for _, v in self.points.options}
        self.points.value = tuple(p for p in default if p in available)

    # ---------------------------------------------------------------- run
    def run(self) -> None:
        """Capture on the chosen points while the command runs in the chosen pod."""
        self.status.value = ""
        self.progress.layout.visibility = "visible"
        self.progress.value = 0
        try:
            argv = shlex.split(self.command.value or "")
            if not argv:
                raise LabError("type a command, e.g. curl -s http://webpod")
            if not self.points.value:
                raise LabError("pick at least one interface to capture on")
            self.progress.value = 1
            run = self.lab.run_captured(self.source.value, argv, list(self.points.value), seconds=self.seconds)
            self.result = run.result
            self.progress.value = 2
            self.packets = run.packets
            self._show(list(self.points.value))
            self.progress.value = 3
            code = run.result.returncode
            self.status.value = (
                f"<b>{shlex.join(argv)}</b> in {self.source.value}: exit {code}, {len(self.packets)} packets captured"
            )
        except LabError as e:
            self._error(e)
        finally:
            self.progress.layout.visibility = "hidden"

    def _show(self, points: list[str]) -> None:
        pk = self.packets
        lanes = paths.lanes(points, self.source.value, self.lab.pods)
        counts = pk.groupby("point").size().reindex(lanes, fill_value=0)
        self.counts.value = (
            "<table>"
            + "".join(
                f"<tr><td style='padding-right:1em'>{p}</td><td><b>{n}</b> packets</td></tr>" for p, n in counts.items()
            )
            + "</table>"
        )
        children = []
        for point in lanes:
            out = w.Output()
            with out:
                rows = pk[pk.point == point][SHOWN_COLUMNS]
                display(HTML(rows.to_html(index=False)) if len(rows) else HTML("<i>no packets here</i>"))
            children.append(out)
        self.tabs.children = children
        self.tabs.layout.display = ""
        for i, point in enumerate(lanes):
            self.tabs.set_title(i, point)
        self.figure = fig = ladder(pk, lanes)
        self.plot.clear_output()
        with self.plot:
            fig.show()

    def _error(self, e: LabError) -> None:
        self.status.value = f"<span style='color:#b00'>{e}</span>"
