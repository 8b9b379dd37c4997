"""Plotly figures of labkit tables (import the submodules: plotly loads only when used)."""
