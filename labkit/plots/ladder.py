"""Ladder diagram: which capture point saw which packet, in path order.

One vertical lane per capture point (left to right along the packet path the caller gives),
one row per packet (earliest first, going down). A packet seen at several points is one
arrow through the lanes where it was seen, in the order it was seen; lanes where it was
*not* seen carry an ``x`` (red between the first and last lanes that saw it: the hop
skipped, e.g. an lxc bypassed by ``bpf_redirect_peer``; grey outside that span).

Rows are ordinal (not to time scale) so microsecond-apart hops stay readable; the hover and
the row labels give the real times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

IDENTITY = ["proto", "ip_id", "seq", "ack", "tcp_flags", "length"]
"""Columns that tell one packet seen at several points. Addresses and ports are left out on
purpose, so a packet still matches after NAT rewrote them; non-IP packets use the summary."""
COLORS = {"TCP": "#1f77b4", "UDP": "#2ca02c", "ICMP": "#9467bd", "ARP": "#ff7f0e"}
OTHER_COLOR = "#7f7f7f"
SLANT = 0.6  # vertical room (in rows) one packet's arrow takes from first to last point


def packet_ids(packets: pd.DataFrame) -> pd.Series:
    """One id per distinct packet (same id at every point that saw it), in first-seen order.

    The n-th occurrence of an identity at a point matches the n-th occurrence at another point.
    """
    if packets.empty:
        return pd.Series([], dtype="int64", index=packets.index)
    key = packets[IDENTITY].astype("string").fillna("").agg("|".join, axis=1)
    no_ip = packets["ip_id"].isna().to_numpy()
    key = key.where(~no_ip, "nonip|" + packets["summary"].astype("string").fillna(""))
    occurrence = key.groupby([packets["point"], key]).cumcount().astype("string")
    full = key + "#" + occurrence
    order = packets["time"].argsort(kind="stable").to_numpy()
    ids = pd.Series(pd.factorize(full.iloc[order])[0], index=packets.index[order])
    return ids.reindex(packets.index)


def ladder(packets: pd.DataFrame, lanes: list[str] | None = None) -> go.Figure:
    """A plotly ladder diagram of a PACKETS frame; ``lanes`` orders (and picks) the points."""
    df = packets.sort_values("time", kind="stable")
    lanes = list(lanes) if lanes is not None else list(dict.fromkeys(df["point"].tolist()))
    df = df[df["point"].isin(lanes)].copy()
    lane_of = {name: i for i, name in enumerate(lanes)}
    df["lane"] = df["point"].map(lane_of).astype("int64")
    df["pid"] = packet_ids(df)
    t0 = float(df["time"].min()) if len(df) else 0.0

    fig = go.Figure()
    per_proto: dict[str, dict[str, list]] = {}
    missing: dict[str, list] = {"x": [], "y": [], "text": [], "color": []}
    row_labels = []
    for pid, obs in df.groupby("pid", sort=True):
        obs = obs.sort_values("time", kind="stable").drop_duplicates("lane")
        n = len(obs)
        ys = pid + SLANT * np.arange(n) / max(1, n - 1)
        row_labels.append(f"+{(obs['time'].iloc[0] - t0) * 1e3:.3f} ms")
        proto = str(obs["proto"].iloc[0])
        tr = per_proto.setdefault(proto if proto in COLORS else "other", {"x": [], "y": [], "text": [], "symbol": []})
        for j, (lane, y, point, direction, when, summary) in enumerate(
            zip(obs["lane"], ys, obs["point"], obs["direction"], obs["time"], obs["summary"])
        ):
            tr["x"].append(lane)
            tr["y"].append(y)
            tr["text"].append(f"{point} {direction or ''}<br>+{(when - t0) * 1e3:.3f} ms<br>{summary}")
            tr["symbol"].append("circle" if j == 0 else "arrow")
        for key in tr:
            tr[key].append(None)
        seen = dict(zip(obs["lane"], ys))
        by_lane = sorted(seen)
        summary = obs["summary"].iloc[0]
        for lane in range(len(lanes)):
            if lane in seen:
                continue
            inside = by_lane[0] < lane < by_lane[-1]
            missing["x"].append(lane)
            missing["y"].append(float(np.interp(lane, by_lane, [seen[k] for k in by_lane])))
            missing["text"].append(f"not seen at {lanes[lane]}<br>{summary}")
            missing["color"].append("#d62728" if inside else "#c7c7c7")

    for proto, tr in per_proto.items():
        color = COLORS.get(proto, OTHER_COLOR)
        fig.add_trace(
            go.Scatter(
                x=tr["x"],
                y=tr["y"],
                mode="lines+markers",
                name=proto,
                hovertext=tr["text"],
                hoverinfo="text",
                line={"color": color, "width": 2},
                marker={
                    "symbol": [s or "circle" for s in tr["symbol"]],
                    "angleref": "previous",
                    "size": 11,
                    "color": color,
                },
            )
        )
    fig.add_trace(
        go.Scatter(
            x=missing["x"],
            y=missing["y"],
            mode="markers",
            name="not seen here",
            hovertext=missing["text"],
            hoverinfo="text",
            marker={
                "symbol": "x-thin-open",
                "size": 12,
                "line": {"width": 2, "color": missing["color"]},
                "color": missing["color"],
            },
        )
    )

    n_packets = len(row_labels)
    fig.update_layout(
        title="Who saw which packet",
        height=max(320, 120 + 34 * n_packets),
        xaxis={
            "tickmode": "array",
            "tickvals": list(range(len(lanes))),
            "ticktext": lanes,
            "side": "top",
            "range": [-0.5, len(lanes) - 0.5],
            "showgrid": False,
            "zeroline": False,
        },
        yaxis={
            "autorange": "reversed",
            "tickmode": "array",
            "tickvals": list(range(n_packets)),
            "ticktext": row_labels,
            "showgrid": False,
            "zeroline": False,
        },
        shapes=[
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": i,
                "x1": i,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#bbbbbb", "width": 1},
                "layer": "below",
            }
            for i in range(len(lanes))
        ],
        hovermode="closest",
        legend={"orientation": "h"},
        meta={"lanes": lanes, "packets": n_packets, "missing": len(missing["x"])},
    )
    return fig
