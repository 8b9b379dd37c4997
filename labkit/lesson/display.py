"""Figures and tables that read well in JupyterLab and in offline HTML exports.

Plotly figures get labkit's renderer (labkit.plots.render: the plotly mimetype for
JupyterLab plus HTML for exported pages, which load one shared plotly.js); DataFrames show
whole cells and every column instead of cutting them with "...".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from IPython.display import HTML, display

from ..plots.render import figure_bundle


def setup_plotting() -> None:
    """Make ``fig.show()`` and bare figures render in JupyterLab and in exported HTML, and
    tables show whole cells."""
    import plotly.io as pio  # heavy: loaded when a lesson starts
    from plotly.io._base_renderers import MimetypeRenderer

    class LabkitRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict: Any) -> dict[str, Any]:
            return figure_bundle(fig_dict)

    pio.renderers["labkit"] = LabkitRenderer()
    pio.renderers.default = "labkit"
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", None)


def note(html: str) -> None:
    """A short note in the notebook (italic)."""
    display(HTML(f"<i>{html}</i>"))
