"""Widgets in a static page: `labkit export` runs the notebooks with LABKIT_EXPORT=1, and the
panels then record what the run showed (a capture, the maps) and say plainly that their
buttons need a live lab, instead of offering buttons that do nothing offline."""

from __future__ import annotations

import os

from ..i18n import _

EXPORT_ENV = "LABKIT_EXPORT"

STYLE = """<style>
.lk-tabs .lm-TabBar-tab, .lk-tabs .p-TabBar-tab { flex: 0 0 auto !important; max-width: none !important; }
.lk-tabs .lm-TabBar-tabLabel, .lk-tabs .p-TabBar-tabLabel {
  overflow: visible !important; text-overflow: clip !important; }
.lk-scroll { overflow-x: auto; max-width: 100%; }
.lk-scroll table { font-size: 12px; }
.lk-scroll td, .lk-scroll th { text-align: left !important; white-space: nowrap !important; }
.lk-note { color: #555; font-style: italic; margin: 4px 0; }
</style>"""
"""CSS the panels carry with them (an HTML widget): full tab titles, tables that scroll
sideways instead of being cut off."""


def exporting() -> bool:
    """True while `labkit export` runs the notebook for a static page."""
    return os.environ.get(EXPORT_ENV) == "1"


def static_note(what: str) -> str:
    text = _(
        "Recorded when this page was made: {what}. The buttons need a live lab: run {make_lab} and open this "
        "notebook in JupyterLab."
    ).format(what=what, make_lab="<code>make lab</code>")
    return f"<div class='lk-note'>📄 {text}</div>"
