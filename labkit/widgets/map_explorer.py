"""The map explorer: pick a node and one of its BPF maps, refresh, flush (after a
confirmation), and see the table with the plot that fits it (labkit.plots.maps).

It opens on the node with the most conntrack entries (where the lesson's traffic was) and
shows its maps at once. In a static page (`labkit export`) it shows every map of that node
as recorded during the run, one after the other (not in tabs: a plot drawn in a hidden tab
has no size), and says that its buttons need a live lab.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd
from IPython.display import HTML, display

from ..errors import LabError
from ..i18n import _
from ..plots.maps import PLOTTED, plot_map
from ..plots.render import output_of
from .static import STYLE, exporting, static_note

MAPS = ("ct", "nat", "lb", "endpoints", "ipcache", "metrics")
FLUSHABLE = ("ct", "nat")
# the columns a learner reads first, in the order `cilium bpf ... list` prints them; the rest
# stay in the table, to the right (it scrolls sideways instead of being cut off)
FIRST_COLUMNS = {
    "ct": ["proto", "direction", "src_ip", "src_port", "dst_ip", "dst_port", "rev_nat", "backend_id", "src_identity"],
    "nat": ["proto", "direction", "src_ip", "src_port", "dst_ip", "dst_port", "xlate", "xlate_ip", "xlate_port"],
}


def table_html(name: str, table: pd.DataFrame) -> str:
    first = [c for c in FIRST_COLUMNS.get(name, []) if c in table.columns]
    cols = first + [c for c in table.columns if c not in first and c != "node"]
    return f"<div class='lk-scroll'>{table[cols].to_html(index=False, max_rows=200)}</div>"


def busiest_node(lab) -> str | None:
    """The node whose CT map has the most entries (the lesson's traffic), else the first."""
    names = list(lab.nodes.name)
    if not names:
        return None
    sizes = {}
    for n in names:
        try:
            sizes[n] = len(lab.maps(n).ct())
        except LabError:
            sizes[n] = -1
    return max(names, key=lambda n: sizes[n])


class MapExplorer:
    """``MapExplorer(lab)``; tests set ``.node``/``.map`` and click the buttons."""

    def __init__(self, lab, *, node: str | None = None, map: str = "ct") -> None:
        self.lab = lab
        self.table = None
        self.figure = None
        self.static = exporting()
        self.node = w.Dropdown(description=_("node"))
        self.map = w.Dropdown(options=MAPS, value=map, description=_("map"))
        self.refresh_button = w.Button(description=_("Refresh"), icon="refresh", disabled=self.static)
        self.flush_button = w.Button(description=_("Flush"), icon="trash", button_style="warning", disabled=self.static)
        self.confirm_button = w.Button(
            description=_("Yes, flush"), button_style="danger", layout=w.Layout(display="none")
        )
        self.cancel_button = w.Button(description=_("Cancel"), layout=w.Layout(display="none"))
        self.status = w.HTML()
        self.note = w.HTML()
        self.out_table = w.Output()
        self.out_plot = w.Output()
        self.recorded = w.VBox(layout=w.Layout(display="none"))
        self.recorded.add_class("lk-recorded")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.flush_button.on_click(lambda _: self._ask())
        self.confirm_button.on_click(lambda _: self.flush())
        self.cancel_button.on_click(lambda _: self._confirming(False))
        self.widget = w.VBox(
            [
                w.HTML(STYLE),
                self.note,
                w.HBox(
                    [
                        self.node,
                        self.map,
                        self.refresh_button,
                        self.flush_button,
                        self.confirm_button,
                        self.cancel_button,
                    ]
                ),
                self.status,
                self.out_plot,
                self.out_table,
                self.recorded,
            ]
        )
        try:
            self.node.options = list(lab.nodes.name)
            self.node.value = node or busiest_node(lab)
        except LabError as e:
            self._error(e)
        self.map.observe(lambda _: self.refresh(), names="value")
        self.node.observe(lambda _: self.refresh(), names="value")
        if self.static:
            self._record_all()
        else:
            self.refresh()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def refresh(self) -> None:
        self._confirming(False)
        if not self.node.value:
            self._error(LabError(_("no node to read: is the lab up? (labkit up, then labkit apply cluster/manifests)")))
            return
        try:
            self.table = table = getattr(self.lab.maps(self.node.value), self.map.value)()
        except LabError as e:
            self._error(e)
            return
        self.status.value = _("{map} on {node}: {n} entries").format(
            map=f"<b>{self.map.value}</b>", node=self.node.value, n=len(table)
        )
        # outputs are set directly (not `with out:`), so the panel works outside a kernel too
        self.out_table.outputs = ()
        self.out_table.append_display_data(HTML(table_html(self.map.value, table)))
        self.out_plot.outputs = ()
        self.figure = None
        if self.map.value in PLOTTED:  # endpoints and ipcache are tables: shown once, below
            self.figure = fig = plot_map(self.map.value, table)
            self.out_plot.outputs = (output_of(fig),)

    def _record_all(self) -> None:
        """Every map of the node, one after the other, for a page read offline."""
        node = self.node.value
        children: list[w.Widget] = []
        for name in MAPS:
            out = w.Output()
            try:
                table = getattr(self.lab.maps(node), name)()
            except LabError as e:
                self._error(e)
                continue
            if name in PLOTTED:
                out.outputs = (output_of(plot_map(name, table)),)
            out.append_display_data(HTML(table_html(name, table)))
            head = _("{map} ({n} entries)").format(map=name, n=len(table))
            children += [w.HTML(f"<h4 class='lk-map'>{head}</h4>"), out]
        self.recorded.children = children
        self.recorded.layout.display = ""
        self.note.value = static_note(
            _("the BPF maps of {node}: {maps}").format(node=html.escape(str(node)), maps=", ".join(MAPS))
        )
        for control in (self.node, self.map):
            control.disabled = True

    def _ask(self) -> None:
        if self.map.value not in FLUSHABLE:
            self._error(
                LabError(
                    _("the {map} map cannot be flushed (only {maps})").format(
                        map=self.map.value, maps=", ".join(FLUSHABLE)
                    )
                )
            )
            return
        self.status.value = _("Flush {map} on {node}? Every entry will be removed.").format(
            map=f"<b>{self.map.value}</b>", node=self.node.value
        )
        self._confirming(True)

    def flush(self) -> None:
        """Remove every entry of the chosen map (after the confirmation step)."""
        self._confirming(False)
        try:
            self.lab.maps(self.node.value).flush(self.map.value)
        except LabError as e:
            self._error(e)
            return
        self.refresh()

    def _confirming(self, on: bool) -> None:
        self.confirm_button.layout.display = "" if on else "none"
        self.cancel_button.layout.display = "" if on else "none"
        self.flush_button.disabled = on or self.static

    def _error(self, e: LabError) -> None:
        self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
