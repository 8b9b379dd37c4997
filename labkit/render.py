"""Plain-text tables for the CLI (aligned columns, like kubectl and cilium print them)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def text_table(df: pd.DataFrame, columns: Sequence[str] | None = None, gap: int = 3) -> str:
    cols = list(columns or df.columns)
    cells = [[c.upper() for c in cols]]
    for row in df[cols].itertuples(index=False):
        cells.append(["" if pd.isna(v) else str(v) for v in row])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    return "\n".join((" " * gap).join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)
