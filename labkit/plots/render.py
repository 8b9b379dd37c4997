"""Figures as notebook outputs that work in JupyterLab and in offline HTML pages.

A figure's output carries the plotly mimetype (JupyterLab draws it with its plotly
extension) and HTML that calls ``Plotly.newPlot`` without plotly.js inside: an exported page
loads one shared copy (``PLOTLY_JS``, copied next to the pages by `labkit export`), so five
pages do not carry five 3.5 MB copies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def plotly_js() -> Path:
    """plotly.js as the plotly package ships it (the version its figures are made for)."""
    import plotly  # heavy: loaded when a page is written

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def figure_bundle(fig: Any) -> dict[str, Any]:
    """The output bundle of a figure (or figure dict): plotly mimetype + HTML for pages."""
    import plotly.io as pio  # heavy: loaded when the first figure is shown

    fig_dict = json.loads(pio.to_json(fig, validate=False))  # plain JSON types (no numpy arrays)
    html = pio.to_html(
        fig_dict,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        default_width="100%",
        validate=False,
    )
    return {
        "application/vnd.plotly.v1+json": {
            "data": fig_dict.get("data", []),
            "layout": fig_dict.get("layout", {}),
            "config": {},
        },
        "text/html": html,
    }


def output_of(fig: Any) -> dict[str, Any]:
    """A display_data output of ``fig``, for an ipywidgets Output's ``outputs``."""
    return {"output_type": "display_data", "data": figure_bundle(fig), "metadata": {}}
