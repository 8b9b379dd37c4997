"""Ladder diagram: which capture point saw which packet, in path order.

One vertical lane per capture point (left to right along the packet path the caller gives),
one row per packet (earliest first, going down), labelled with what the packet is (SYN,
SYN-ACK, GET /, 200 OK, FIN, ARP request ...). A packet seen at several points is one arrow
through the lanes where it was seen, in the order it was seen; every sighting has a marker,
also the only one of a packet seen at a single point.

A red ``x`` marks a lane the packet skipped: a lane between the first and the last lane that
saw it, on the conversation's path (e.g. an lxc bypassed by ``bpf_redirect_peer``). A lane
is on the path when it shares a packet with another lane, or when the caller says so
(``path=``): a node's eth0 that a same-node conversation never crosses gets no crosses.

Rows are ordinal (not to time scale) so microsecond-apart hops stay readable; the hover
gives the real times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..i18n import _

IDENTITY = ["proto", "ip_id", "seq", "ack", "tcp_flags", "length"]
"""Columns that tell one packet seen at several points. Addresses and ports are left out on
purpose, so a packet still matches after NAT rewrote them; non-IP packets use the summary."""
COLORS = {"TCP": "#1f77b4", "UDP": "#2ca02c", "ICMP": "#9467bd", "ARP": "#ff7f0e"}
OTHER_COLOR = "#7f7f7f"
SKIPPED_COLOR = "#d62728"
SLANT = 0.6  # vertical room (in rows) one packet's arrow takes from first to last point
ROW_PX = 30  # height of one packet row
LANE_LABEL_PX = 34  # room above the plot for one tier of lane names (two lines each)

_TCP_NAMES = {"[S]": "SYN", "[S.]": "SYN-ACK", "[.]": "ACK", "[R]": "RST", "[R.]": "RST-ACK"}
_HTTP = re.compile(r"HTTP: (?:HTTP/1\.[01] )?(\S+(?: \S+)?)")


def packet_label(row: pd.Series | dict) -> str:
    """What a learner calls this packet: SYN, SYN-ACK, ACK, GET /, 200 OK, FIN, ARP request,
    DNS query, echo request ... (from the PACKETS columns and tcpdump's summary)."""
    proto, flags, summary = str(row["proto"]), str(row["tcp_flags"] or ""), str(row["summary"] or "")
    if proto == "ARP":
        return "ARP request" if "Request" in summary else "ARP reply"
    if proto == "TCP":
        http = _HTTP.search(summary)
        if http and "P" in flags:
            first = http.group(1)
            if first.split()[0].isdigit():  # a status line: "200 OK"
                return first
            return first.removesuffix(" HTTP/1.1").removesuffix(" HTTP/1.0")
        if "F" in flags:
            return "FIN"
        if "P" in flags:
            return "data"
        return _TCP_NAMES.get(flags, flags.strip("[]") or "TCP")
    if proto == "UDP":
        if row.get("dst_port") == 53:
            return "DNS query"
        if row.get("src_port") == 53:
            return "DNS answer"
        return "UDP"
    if proto == "ICMP":
        for kind in ("echo request", "echo reply", "unreachable"):
            if kind in summary:
                return kind
        return "ICMP"
    return proto


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


def path_lanes(df: pd.DataFrame, lanes: Sequence[str]) -> set[int]:
    """Lanes on the conversation's path: those that share at least one packet with another
    lane (``df`` has ``lane`` and ``pid``)."""
    shared = df.groupby("pid")["lane"].nunique()
    multi = df[df["pid"].isin(shared[shared > 1].index)]
    return set(multi["lane"].tolist())


def _lane_text(lane: str) -> str:
    target, _sep, iface = lane.partition(":")
    return f"{target}<br>{iface}" if iface else target


def ladder(packets: pd.DataFrame, lanes: list[str] | None = None, *, path: Sequence[str] | None = None) -> go.Figure:
    """A plotly ladder diagram of a PACKETS frame; ``lanes`` orders (and picks) the points;
    ``path``: the lanes a packet could cross (default: those sharing a packet with another)."""
    df = packets.sort_values("time", kind="stable")
    lanes = list(lanes) if lanes is not None else list(dict.fromkeys(df["point"].tolist()))
    df = df[df["point"].isin(lanes)].copy()
    lane_of = {name: i for i, name in enumerate(lanes)}
    df["lane"] = df["point"].map(lane_of).astype("int64")
    df["pid"] = packet_ids(df)
    t0 = float(df["time"].min()) if len(df) else 0.0
    on_path = {lane_of[p] for p in path if p in lane_of} if path is not None else path_lanes(df, lanes)

    fig = go.Figure()
    lines: dict[str, dict[str, list]] = {}  # per protocol: the arrows (None between packets)
    firsts: dict[str, dict[str, list]] = {}  # per protocol: the first sighting of each packet
    skipped: dict[str, list] = {"x": [], "y": [], "text": []}
    row_labels = []
    for pid, obs in df.groupby("pid", sort=True):
        obs = obs.sort_values("time", kind="stable").drop_duplicates("lane")
        n = len(obs)
        ys = pid + SLANT * np.arange(n) / max(1, n - 1)
        first = obs.iloc[0]
        label = packet_label(first)
        row_labels.append(label)
        proto = str(first["proto"])
        key = proto if proto in COLORS else "other"
        ln = lines.setdefault(key, {"x": [], "y": [], "text": [], "size": []})
        fs = firsts.setdefault(key, {"x": [], "y": [], "text": []})
        for j, (lane, y, point, direction, when, summary) in enumerate(
            zip(obs["lane"], ys, obs["point"], obs["direction"], obs["time"], obs["summary"])
        ):
            text = (
                _("{packet} at {point} {direction}").format(
                    packet=f"<b>{label}</b>", point=point, direction=direction or ""
                )
                + f"<br>+{(when - t0) * 1e3:.3f} ms<br>{summary}"
            )
            if j == 0:
                fs["x"].append(lane)
                fs["y"].append(y)
                fs["text"].append(text)
            ln["x"].append(lane)
            ln["y"].append(y)
            ln["text"].append(text)
            ln["size"].append(0 if j == 0 else 11)  # the first sighting is drawn by the circles
        for k in ("x", "y", "text"):
            ln[k].append(None)
        ln["size"].append(0)
        seen = dict(zip(obs["lane"], ys))
        by_lane = sorted(seen)
        for lane in range(by_lane[0] + 1, by_lane[-1]):
            if lane in seen or lane not in on_path:
                continue
            skipped["x"].append(lane)
            skipped["y"].append(float(np.interp(lane, by_lane, [seen[k] for k in by_lane])))
            skipped["text"].append(
                _("{packet} did not cross {point}").format(packet=f"<b>{label}</b>", point=lanes[lane])
            )

    for key, ln in lines.items():
        color = COLORS.get(key, OTHER_COLOR)
        fig.add_trace(
            go.Scatter(
                x=ln["x"],
                y=ln["y"],
                mode="lines+markers",
                name=key,
                legendgroup=key,
                hovertext=ln["text"],
                hoverinfo="text",
                line={"color": color, "width": 2},
                marker={"symbol": "arrow", "angleref": "previous", "size": ln["size"], "color": color},
                meta={"role": "arrows"},
            )
        )
        fs = firsts[key]
        fig.add_trace(
            go.Scatter(
                x=fs["x"],
                y=fs["y"],
                mode="markers",
                name=f"{key} (first seen)",
                legendgroup=key,
                showlegend=False,
                hovertext=fs["text"],
                hoverinfo="text",
                marker={"symbol": "circle", "size": 10, "color": color},
                meta={"role": "first"},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=skipped["x"],
            y=skipped["y"],
            mode="markers",
            name=_("skipped this interface"),
            hovertext=skipped["text"],
            hoverinfo="text",
            marker={
                "symbol": "x-thin-open",
                "size": 12,
                "color": SKIPPED_COLOR,
                "line": {"width": 2, "color": SKIPPED_COLOR},
            },
            meta={"role": "skipped"},
        )
    )

    n_packets = len(row_labels)
    tiers = 2 if len(lanes) > 4 else 1  # many lanes: names alternate between two heights
    top = 50 + LANE_LABEL_PX * tiers
    for i, lane in enumerate(lanes):
        fig.add_annotation(
            x=i,
            y=1,
            xref="x",
            yref="paper",
            yanchor="bottom",
            yshift=4 + LANE_LABEL_PX * (i % tiers),
            showarrow=False,
            text=_lane_text(lane),
            font={"size": 12},
            name=f"lane:{lane}",
        )
    fig.update_layout(
        title={
            "text": _("Who saw which packet"),
            "x": 0,
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 12},
        },
        height=top + 60 + ROW_PX * max(n_packets, 4),
        margin={"t": top, "l": 110, "r": 80, "b": 50},
        xaxis={
            "showticklabels": False,
            "tickvals": list(range(len(lanes))),
            "range": [-0.5, len(lanes) - 0.5],
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
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
        legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
        meta={"lanes": lanes, "packets": n_packets, "sightings": len(df), "skipped": len(skipped["x"])},
    )
    return fig
