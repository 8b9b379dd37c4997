"""The capture panel: run one command in a pod while capturing on many interfaces, then
see, per interface, which packets it saw (counts, tcpdump-like tables, the ladder diagram).

This is the blog's method made one click: the same conversation looked at on the client's
eth0, its lxc, the nodes' eth0 and the server's lxc and eth0, to see where packets are
missing. Works on any backend: it only uses Lab and the shared tables. In a static page
(`labkit export`) it shows the capture of its first command, recorded during the run.
"""

from __future__ import annotations

import html
import shlex
import subprocess
from collections.abc import Callable

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, display

from .. import paths
from ..capture.lines import clock_text
from ..errors import LabError
from ..i18n import _
from ..lab import Lab, connect
from ..plots.ladder import ladder, packet_label
from ..plots.render import output_of
from ..tables import PACKETS
from .static import STYLE, exporting, static_note

SHOWN_COLUMNS = ["time", "+ms", "packet", "direction", "src_mac", "dst_mac", "summary"]


def presets(lab: Lab, source: str) -> list[tuple[str, str]]:
    """(label, command) the panel offers for ``source``: the blog's three conversations."""
    pods = lab.pods
    src = pods[pods.name == source].iloc[0]
    web = pods[(pods.app == "whoami") & (pods.name != source)]
    out = []
    same = web[web.node == src.node]
    other = web[web.node != src.node]
    if len(same):
        out.append(
            (
                _("curl a pod on the same node ({pod})").format(pod=same.iloc[0]["name"]),
                f"curl -s http://{same.iloc[0]['ip']}",
            )
        )
    for svc in lab.services.itertuples():
        if svc.protocol != "TCP" or svc.namespace != src.namespace:
            continue  # the blog's service, in the client's namespace
        port = "" if svc.port == 80 else f":{svc.port}"
        out.append((_("curl the service {name}").format(name=svc.name), f"curl -s http://{svc.name}{port}"))
        out.append((_("curl the ClusterIP of {name}").format(name=svc.name), f"curl -s http://{svc.cluster_ip}{port}"))
    if len(other):
        out.append(
            (
                _("curl a pod on another node ({pod})").format(pod=other.iloc[0]["name"]),
                f"curl -s http://{other.iloc[0]['ip']}",
            )
        )
    return out


def packet_rows(packets: pd.DataFrame) -> pd.DataFrame:
    """The packets of one interface as the panel shows them: tcpdump's clock, milliseconds
    since the first packet of the capture, what the packet is, and tcpdump's line."""
    if packets.empty:
        return pd.DataFrame(columns=SHOWN_COLUMNS)
    ns = (packets["time"].to_numpy() * 1e9).astype(np.int64)
    return pd.DataFrame(
        {
            "time": clock_text(ns),
            "+ms": [f"{v:.3f}" for v in (packets["time"].to_numpy() - packets["time"].min()) * 1e3],
            "packet": [packet_label(r) for _, r in packets.iterrows()],
            "direction": packets["direction"].to_numpy(),
            "src_mac": packets["src_mac"].to_numpy(),
            "dst_mac": packets["dst_mac"].to_numpy(),
            "summary": packets["summary"].to_numpy(),
        }
    )


class CapturePanel:
    """``CapturePanel(lab)`` in a notebook; tests drive ``.source``, ``.points``,
    ``.command`` and ``.run_button.click()`` and read ``.packets`` and ``.figure``.

    The lab picker offers this lab and its companions only (``labs`` overrides that)."""

    def __init__(self, lab: Lab, *, labs: Callable[[], list[str]] | None = None, seconds: float = 10) -> None:
        self.lab = lab
        self.seconds = seconds
        self.packets: pd.DataFrame = PACKETS.frame([])
        self.figure: go.Figure | None = None
        self.result: subprocess.CompletedProcess[str] | None = None
        self.static = exporting()
        lab_names = [lab.name] + [n for n in (labs() if labs else lab.companions()) if n != lab.name]
        self.lab_picker = w.Dropdown(options=lab_names, value=lab.name, description=_("lab"))
        self.source = w.Dropdown(description=_("from pod"))
        self.points = w.SelectMultiple(description=_("capture on"), rows=8, layout=w.Layout(width="560px"))
        pick = _("Ctrl-click (⌘-click on a Mac) or Shift-click to pick several interfaces")
        self.points_hint = w.HTML(f"<span class='lk-note'>{pick}</span>")
        self.command = w.Combobox(
            description=_("command"),
            placeholder="curl -s http://webpod",
            ensure_option=False,
            layout=w.Layout(width="560px"),
        )
        self.run_button = w.Button(description=_("Run"), button_style="primary", icon="play", disabled=self.static)
        self.status = w.HTML()
        self.progress = w.IntProgress(min=0, max=3, layout=w.Layout(width="200px", visibility="hidden"))
        self.counts = w.HTML()
        self.tabs = w.Tab(layout=w.Layout(display="none"))  # shown once there are results
        self.tabs.add_class("lk-tabs")
        self.plot = w.Output()
        self.note = w.HTML()
        self.lab_picker.observe(self._on_lab, names="value")
        self.source.observe(self._on_source, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.widget = w.VBox(
            [
                w.HTML(STYLE),
                self.note,
                w.HBox([self.lab_picker, self.source]),
                w.HBox([self.points, self.points_hint]),
                w.HBox([self.command, self.run_button]),
                w.HBox([self.progress, self.status]),
                self.counts,
                self.tabs,
                self.plot,
            ]
        )
        self._refresh()
        if self.static:
            self.run()
            self.note.value = static_note(
                _("{command} in {pod}, captured on {n} interfaces").format(
                    command=f"<code>{html.escape(self.command.value)}</code>",
                    pod=self.source.value,
                    n=len(self.points.value),
                )
            )
            self.run_button.disabled = True

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
        choices = self.lab.capture_choices()
        self.points.options = choices
        self.points.rows = max(4, len(choices))  # every interface in view, no hidden scroll
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
                raise LabError(_("type a command, e.g. curl -s http://webpod"))
            if not self.points.value:
                raise LabError(_("pick at least one interface to capture on"))
            self.progress.value = 1
            run = self.lab.run_captured(self.source.value, argv, list(self.points.value), seconds=self.seconds)
            self.result = run.result
            self.progress.value = 2
            self.packets = run.packets
            self._show(list(self.points.value))
            self.progress.value = 3
            code = run.result.returncode
            self.status.value = _("{command} in {pod}: exit {code}, {n} packets captured").format(
                command=f"<b>{html.escape(shlex.join(argv))}</b>", pod=self.source.value, code=code, n=len(self.packets)
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
                f"<tr><td style='padding-right:1em'>{p}</td><td>{_('{n} packets').format(n=f'<b>{n}</b>')}</td></tr>"
                for p, n in counts.items()
            )
            + "</table>"
        )
        children = []
        for point in lanes:
            out = w.Output()  # filled directly (not `with out:`), so it works outside a kernel too
            rows = packet_rows(pk[pk.point == point])
            out.append_display_data(
                HTML(f"<div class='lk-scroll'>{rows.to_html(index=False)}</div>")
                if len(rows)
                else HTML(f"<i>{_('no packets here')}</i>")
            )
            children.append(out)
        self.tabs.children = children
        self.tabs.layout.display = ""
        self.tabs.titles = tuple(f"{point} ({n})" for point, n in counts.items())
        self.figure = fig = ladder(pk, lanes)
        self.plot.outputs = (output_of(fig),)

    def _error(self, e: LabError) -> None:
        self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
