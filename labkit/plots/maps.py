"""Plots that fit each BPF map table (labkit.tables): what a student should see in it.

- ct: one marker per entry, client -> server, coloured by direction (OUT / IN / SVC);
  entries with a RevNAT index (a service translation to undo) are drawn large and outlined.
- lb: a Sankey from each service frontend to its backends (one link per slot).
- nat: a Sankey from the original source to the address it is translated to.
- metrics: packets by reason, split by direction.
- endpoints / ipcache: the table itself, as a figure (for offline HTML).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..i18n import N_, _

DIRECTION_COLORS = {"OUT": "#1f77b4", "IN": "#2ca02c", "SVC": "#d62728"}


def _empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=_(why), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))
    fig.update_layout(title=_(title), xaxis=dict(visible=False), yaxis=dict(visible=False), height=250)
    return fig


def ct_plot(ct: pd.DataFrame, title: str = N_("Conntrack entries")) -> go.Figure:
    if ct.empty:
        return _empty(title, N_("no conntrack entries (flush, then send some traffic)"))
    fig = go.Figure()
    src = ct.src_ip + ":" + ct.src_port.astype(str)
    dst = ct.proto + " " + ct.dst_ip + ":" + ct.dst_port.astype(str)
    for direction, color in DIRECTION_COLORS.items():
        for revnat in (False, True):
            sel = (ct.direction == direction) & ((ct.rev_nat > 0) == revnat)
            if not sel.any():
                continue
            rows = ct[sel]
            fig.add_trace(
                go.Scatter(
                    x=src[sel],
                    y=dst[sel],
                    mode="markers",
                    name=f"{direction}{' RevNAT' if revnat else ''}",
                    marker=dict(
                        color=color,
                        size=18 if revnat else 11,
                        symbol="diamond" if revnat else "circle",
                        line=dict(width=3 if revnat else 0, color="black"),
                    ),
                    hovertext=[
                        f"{r.proto} {r.direction} {r.src_ip}:{r.src_port} -> {r.dst_ip}:{r.dst_port}<br>"
                        f"RevNAT={r.rev_nat} BackendID={r.backend_id} SourceSecurityID={r.src_identity}<br>"
                        f"node {r.node}, flags [{r.flag_names}]"
                        for r in rows.itertuples()
                    ],
                    hoverinfo="text",
                )
            )
    fig.update_layout(
        title=_(title),
        xaxis_title=_("client (source ip:port)"),
        yaxis_title=_("server (destination)"),
        legend_title=_("direction"),
        height=max(300, 40 * dst.nunique() + 150),
    )
    return fig


def _sankey(title: str, pairs: list[tuple[str, str, str]], why_empty: str) -> go.Figure:
    if not pairs:
        return _empty(title, why_empty)
    # one node per label and side: a NAT entry that keeps its port (a node's own
    # connection) has the same text on both sides, and a link to itself draws as NaN
    left = list(dict.fromkeys(a for a, _, _ in pairs))
    right = list(dict.fromkeys(b for _, b, _ in pairs))
    labels = left + right
    fig = go.Figure(
        go.Sankey(
            node=dict(label=labels, pad=18, thickness=16),
            link=dict(
                source=[left.index(a) for a, _, _ in pairs],
                target=[len(left) + right.index(b) for _, b, _ in pairs],
                value=[1] * len(pairs),
                label=[h for _, _, h in pairs],
            ),
        )
    )
    fig.update_layout(title=_(title), height=max(300, 45 * len(labels)))
    return fig


def lb_sankey(lb: pd.DataFrame, title: str = N_("Services to backends")) -> go.Figure:
    rows = lb[lb.slot > 0]
    pairs = [
        (
            f"{r.frontend_ip}:{r.frontend_port}/{r.proto}",
            f"{r.backend_ip}:{r.backend_port}",
            f"slot {r.slot}, backend id {r.backend_id}, revnat {r.rev_nat}",
        )
        for r in rows.itertuples()
    ]
    return _sankey(title, pairs, N_("no service backends"))


def nat_sankey(nat: pd.DataFrame, title: str = N_("Source NAT (masquerade)")) -> go.Figure:
    rows = nat[nat.direction == "OUT"]
    pairs = [
        (f"{r.src_ip}:{r.src_port}", f"{r.xlate_ip}:{r.xlate_port}", f"{r.proto} to {r.dst_ip}:{r.dst_port}")
        for r in rows.itertuples()
    ]
    return _sankey(title, pairs, N_("no NAT entries: nothing was masqueraded"))


LOG_RATIO = 30  # counts this many times apart: a log axis, so the small ones stay visible


def metrics_bars(metrics: pd.DataFrame, title: str = N_("Datapath metrics")) -> go.Figure:
    """Packets by reason and direction; a log axis when counts differ by orders of magnitude
    (2 drops next to 45 forwarded), and every bar carries its count."""
    if metrics.empty:
        return _empty(title, N_("no metrics yet"))
    fig = go.Figure()
    for direction in sorted(metrics.direction.unique()):
        rows = metrics[metrics.direction == direction].groupby("reason", as_index=False)[["packets", "bytes"]].sum()
        fig.add_trace(
            go.Bar(
                x=rows.reason,
                y=rows.packets,
                name=direction,
                text=rows.packets,
                textposition="outside",
                cliponaxis=False,
                hovertext=[
                    _("{reason}, {direction}: {packets} packets, {bytes} bytes").format(
                        reason=r, direction=direction, packets=p, bytes=b
                    )
                    for r, p, b in zip(rows.reason, rows.packets, rows.bytes)
                ],
                hoverinfo="text",
            )
        )
    counts = metrics.groupby(["reason", "direction"]).packets.sum()
    positive = counts[counts > 0]
    log = len(positive) > 1 and positive.max() / positive.min() >= LOG_RATIO
    fig.update_layout(
        title=_(title),
        barmode="group",
        yaxis=dict(title=_("packets (log scale)") if log else _("packets"), type="log" if log else "linear"),
        height=400,
        margin=dict(t=70),
    )
    return fig


def table_figure(df: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure(
        go.Table(
            header=dict(values=list(df.columns)), cells=dict(values=[df[c].astype(str).tolist() for c in df.columns])
        )
    )
    fig.update_layout(title=_(title), height=min(900, 120 + 28 * max(len(df), 1)))
    return fig


PLOTS = {"ct": ct_plot, "lb": lb_sankey, "nat": nat_sankey, "metrics": metrics_bars}
PLOTTED = tuple(PLOTS)  # maps with a plot of their own; the others are best read as tables


def plot_map(name: str, df: pd.DataFrame) -> go.Figure:
    """The figure that fits map table ``name`` (endpoints, ct, nat, lb, ipcache, metrics)."""
    return PLOTS.get(name, lambda d: table_figure(d, name))(df)
