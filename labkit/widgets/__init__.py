"""ipywidgets panels on top of the Lab: the capture panel and the map explorer."""

from __future__ import annotations


def __getattr__(name: str) -> type:
    # ipywidgets is heavy: loaded when a notebook first asks for a panel
    if name == "CapturePanel":
        from .capture_panel import CapturePanel

        return CapturePanel
    if name == "MapExplorer":
        from .map_explorer import MapExplorer

        return MapExplorer
    raise AttributeError(name)
