"""Timeline of a trace: where in the kernel each packet went, and when.

One horizontal lane per interface (``netns:interface``, the capture points' notation), in
the order the packets reached them, or in the order the caller gives (lanes no packet
reached stay, empty, marked "not crossed": that is the point of the blog's pwru step).
Time runs left to right in microseconds from the first event shown. Each packet is one
line through its events; the marker says what kind of event it was.

Reads a TRACE table (labkit.tables) only, whichever backend made it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from ..i18n import N_, _

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
SYMBOLS = {"hook": "square", "route": "diamond", "neighbour": "triangle-up", "kept": "star", "dropped": "x"}
LEGEND = {
    "hook": N_("tc hook"),
    "route": N_("route lookup"),
    "neighbour": N_("neighbour"),
    "kept": N_("consumed / to the app"),
    "dropped": N_("dropped"),
    "kernel": N_("kernel event"),
}
SYMBOLS["kernel"] = "circle"
BAND = "rgba(120, 120, 120, 0.08)"


def category(row: pd.Series) -> str:
    """hook, route, neighbour, kept (consumed or handed to the application), dropped, or kernel."""
    event = row["event"]
    if event.startswith("tc:"):
        return "hook"
    if event.startswith("fib:"):
        return "route"
    if event.startswith("neigh:"):
        return "neighbour"
    if row["free"] == "dropped" or str(row["verdict"]).startswith("drop"):
        return "dropped"
    if row["free"] == "consumed" or event == "skb:skb_copy_datagram_iovec":
        return "kept"
    return "kernel"


def lane_of(netns: str, interface: str) -> str:
    return f"{netns or '?'}:{interface}"


def merge_lanes(listed: list[str], seen: list[str]) -> list[str]:
    """``listed`` in its order, with each lane only the data has put right after the lane
    the packets reached before it (the kind network between two nodes' eth0)."""
    order = list(listed)
    for i, lane in enumerate(seen):
        if lane in order:
            continue
        before = next((seen[j] for j in range(i - 1, -1, -1) if seen[j] in order), None)
        order.insert(order.index(before) + 1 if before is not None else len(order), lane)
    return order


def timeline(
    trace: pd.DataFrame,
    packets: Sequence[int] | None = None,
    lanes: Sequence[str] | None = None,
    title: str = N_("The packets' way through the kernel"),
) -> go.Figure:
    """A plotly timeline of ``trace`` (TRACE rows); ``packets`` picks packet numbers (all
    if None); ``lanes`` orders the interfaces (``netns:interface``) and adds the ones no
    packet reached."""
    df = trace if packets is None else trace[trace.packet.isin(list(packets))]
    df = df.sort_values("time", kind="stable").copy()
    df["lane"] = [lane_of(n, i) for n, i in zip(df.netns, df.interface)]
    order = merge_lanes(list(lanes or []), list(dict.fromkeys(df["lane"])))
    t0 = float(df["time"].min()) if len(df) else 0.0
    df["since"] = (df["time"] - t0) * 1e3  # ms since the first event shown (hover)
    df["us"] = (df["time"] - df.groupby("packet")["time"].transform("min")) * 1e6
    df["category"] = [category(r) for _, r in df.iterrows()]
    y = {lane: i for i, lane in enumerate(order)}
    n_packets = df["packet"].nunique()

    fig = go.Figure()
    for k, (packet, ev) in enumerate(df.groupby("packet", sort=True)):
        color = PALETTE[k % len(PALETTE)]
        first = ev.iloc[0]
        label = f"packet {packet} {first['tcp_flags'] or first['proto']}".strip()
        shift = 0.3 * (k / max(1, n_packets - 1) - 0.5) if n_packets > 1 else 0.0  # parallel paths stay apart
        texts = [_label(r) for _, r in ev.iterrows()]
        fig.add_trace(
            go.Scatter(
                x=ev["us"],
                y=[y[lane] + shift for lane in ev["lane"]],
                mode="lines+markers+text",
                text=texts,
                textposition=_alternate(texts),
                textfont={"size": 10, "color": "#444"},
                name=label,
                line={"color": color, "width": 1.5, "shape": "hv"},
                marker={
                    "symbol": [SYMBOLS.get(c, "circle") for c in ev["category"]],
                    "size": [13 if c in ("dropped", "kept") else 9 for c in ev["category"]],
                    "color": ["#d62728" if c == "dropped" else color for c in ev["category"]],
                    "line": {"width": 1, "color": "white"},
                },
                hovertext=[_hover(r) for _, r in ev.iterrows()],
                hoverinfo="text",
            )
        )
    for cat, symbol in SYMBOLS.items():  # what the markers mean
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=_(LEGEND[cat]),
                marker={"symbol": symbol, "size": 9, "color": "#d62728" if cat == "dropped" else "#888"},
            )
        )
    empty = [lane for lane in order if lane not in set(df["lane"])]
    if empty:
        fig.add_trace(
            go.Scatter(
                x=[0.0] * len(empty),
                y=[y[lane] for lane in empty],
                mode="markers+text",
                name=_("not crossed"),
                text=[_("not crossed")] * len(empty),
                textposition="middle right",
                marker={
                    "symbol": "x-thin-open",
                    "size": 12,
                    "color": "#d62728",
                    "line": {"width": 2, "color": "#d62728"},
                },
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=_(title),
        height=max(400, 220 + 46 * len(order)),
        xaxis={"title": _("microseconds since the packet's first event"), "zeroline": False},
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(order))),
            "ticktext": order,
            "autorange": "reversed",
            "showgrid": True,
            "zeroline": False,
        },
        shapes=_bands(order),
        hovermode="closest",
        legend={"orientation": "h", "y": -0.18, "yanchor": "top"},
        margin={"b": 150},
        meta={"lanes": order, "packets": sorted(int(p) for p in df["packet"].unique()), "empty": empty},
    )
    return fig


def _label(r: pd.Series) -> str:
    """A few words on the markers that tell the story; the rest is in the hover."""
    cat = r["category"]
    if cat == "hook":
        return str(r["hook"]).split(",")[0]
    if cat == "route":
        return _("route")
    if cat == "neighbour":
        return _("neighbour")
    if cat == "dropped":
        return _("dropped: {reason}").format(reason=r["drop_reason"]) if r["drop_reason"] else _("dropped")
    if cat == "kept":
        return _("consumed") if r["free"] == "consumed" else _("to the app")
    return ""


def _alternate(texts: list[str]) -> list[str]:
    """Labels of neighbouring markers above and below, in turn, so they do not overlap."""
    out, up = [], True
    for t in texts:
        out.append("top center" if up else "bottom center")
        up = up != bool(t)
    return out


def _hover(r: pd.Series) -> str:
    lines = [
        f"<b>{r['event']}</b>  +{r['us']:.1f} µs " + _("(at {ms} ms)").format(ms=f"{r['since']:.3f}"),
        f"{r['netns']} {r['interface']}  {r['tuple']} {r['tcp_flags']}",
    ]
    if r["hook"]:
        lines.append(f"{r['hook']}: {r['verdict'] or _('(no datapath event)')}")
    if r["free"]:
        lines.append(f"{r['free']} {r['drop_reason']}".strip())
    elif r["drop_reason"]:
        lines.append(_("reason {reason}").format(reason=r["drop_reason"]))
    if r["detail"]:
        lines.append(r["detail"])
    lines.append(f"skb {r['skb']}  cpu {r['cpu']}  {r['process']}")
    return "<br>".join(lines)


def _bands(order: list[str]) -> list[dict]:
    """A shaded band behind every other namespace, so the lanes group by namespace."""
    shapes, start, shade = [], 0, False
    for i in range(1, len(order) + 1):
        if i == len(order) or order[i].split(":")[0] != order[start].split(":")[0]:
            if shade:
                shapes.append(
                    {
                        "type": "rect",
                        "xref": "paper",
                        "yref": "y",
                        "x0": 0,
                        "x1": 1,
                        "y0": start - 0.5,
                        "y1": i - 0.5,
                        "fillcolor": BAND,
                        "line": {"width": 0},
                        "layer": "below",
                    }
                )
            shade, start = not shade, i
    return shapes
