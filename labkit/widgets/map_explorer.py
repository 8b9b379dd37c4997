"""The map explorer: pick a node and one of its BPF maps, refresh, flush (after a
confirmation), and see the table with the plot that fits it (labkit.plots.maps)."""

from __future__ import annotations

import ipywidgets as w
from IPython.display import HTML, display

from ..errors import LabError
from ..plots.maps import plot_map

MAPS = ("endpoints", "ct", "nat", "lb", "ipcache", "metrics")
FLUSHABLE = ("ct", "nat")


class MapExplorer:
    """``MapExplorer(lab).widget``; tests set ``.node``/``.map`` and click the buttons."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.table = None
        self.figure = None
        self.node = w.Dropdown(description="node")
        self.map = w.Dropdown(options=MAPS, value="ct", description="map")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.flush_button = w.Button(description="Flush", icon="trash", button_style="warning")
        self.confirm_button = w.Button(description="Yes, flush", button_style="danger", layout=w.Layout(display="none"))
        self.cancel_button = w.Button(description="Cancel", layout=w.Layout(display="none"))
        self.status = w.HTML()
        self.out_table = w.Output()
        self.out_plot = w.Output()
        self.refresh_button.on_click(lambda _: self.refresh())
        self.flush_button.on_click(lambda _: self._ask())
        self.confirm_button.on_click(lambda _: self.flush())
        self.cancel_button.on_click(lambda _: self._confirming(False))
        self.map.observe(lambda _: self.refresh(), names="value")
        self.node.observe(lambda _: self.refresh(), names="value")
        self.widget = w.VBox(
            [
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
            ]
        )
        try:
            self.node.options = list(lab.nodes.name)
        except LabError as e:
            self._error(e)

    def _ipython_display_(self) -> None:
        display(self.widget)

    def refresh(self) -> None:
        self._confirming(False)
        if not self.node.value:
            return
        try:
            self.table = table = getattr(self.lab.maps(self.node.value), self.map.value)()
        except LabError as e:
            self._error(e)
            return
        self.figure = fig = plot_map(self.map.value, table)
        self.status.value = f"{self.map.value} on {self.node.value}: {len(table)} entries"
        self.out_table.clear_output()
        with self.out_table:
            display(HTML(table.to_html(index=False, max_rows=200)))
        self.out_plot.clear_output()
        with self.out_plot:
            fig.show()

    def _ask(self) -> None:
        if self.map.value not in FLUSHABLE:
            self._error(LabError(f"the {self.map.value} map cannot be flushed (only {', '.join(FLUSHABLE)})"))
            return
        self.status.value = f"Flush <b>{self.map.value}</b> on {self.node.value}? Every entry will be removed."
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
        self.flush_button.disabled = on

    def _error(self, e: LabError) -> None:
        self.status.value = f"<span style='color:#b00'>{e}</span>"
