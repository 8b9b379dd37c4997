"""Figures that work in JupyterLab and in offline HTML exports.

Plotly figures get labkit's renderer: the plotly mimetype for JupyterLab plus
self-contained HTML for nbconvert (no CDN, no MathJax: exported pages read offline).
"""

from __future__ import annotations

from typing import Any

from IPython.display import HTML, display

_PLOTLY_JS_SENT = False


def _figure_bundle(fig: Any) -> dict[str, Any]:
    """The plotly mimetype for JupyterLab, plus self-contained HTML for nbconvert/HTML export.

    The first figure of a kernel carries plotly.js inline (hidden from require.js, which
    would otherwise claim it as an anonymous AMD module); later ones reuse window.Plotly.
    """
    global _PLOTLY_JS_SENT
    import plotly.io as pio  # heavy: loaded when the first figure is shown

    fig_dict = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    html = pio.to_html(
        fig_dict,
        include_plotlyjs=not _PLOTLY_JS_SENT,
        include_mathjax=False,
        full_html=False,
        default_width="100%",
        validate=False,
    )
    if not _PLOTLY_JS_SENT:
        html = (
            "<script>window.__labkitDefine = window.define; window.define = undefined;</script>"
            + html
            + "<script>window.define = window.__labkitDefine;</script>"
        )
    _PLOTLY_JS_SENT = True
    return {
        "application/vnd.plotly.v1+json": {
            "data": fig_dict.get("data", []),
            "layout": fig_dict.get("layout", {}),
            "config": {},
        },
        "text/html": html,
    }


def setup_plotting() -> None:
    """Make ``fig.show()`` and bare figures render in JupyterLab and in exported HTML."""
    import plotly.io as pio  # heavy: loaded when a lesson starts
    from plotly.io._base_renderers import MimetypeRenderer

    class LabkitRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict: Any) -> dict[str, Any]:
            return _figure_bundle(fig_dict)

    pio.renderers["labkit"] = LabkitRenderer()
    pio.renderers.default = "labkit"


def note(html: str) -> None:
    """A short note in the notebook (italic)."""
    display(HTML(f"<i>{html}</i>"))
