"""The lab's topology as a plotly figure: the kind network, nodes, pods and their lxc
veths, addresses, and the routes each node holds (drawn from the running lab's tables).

The label on the stem from the kind network down to a node is the other nodes' route to
its pod CIDR (autoDirectNodeRoutes; hover a node for its whole table); a pod's box names
both ends of its veth pair (hover it for the node's /32 route to the pod, endpointRoutes).
Labels are short lines, sized to stay inside their boxes at JupyterLab's width.
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

from ..i18n import _
from ..plan import KIND_GATEWAY, KIND_NETWORK

NODE_W, NODE_GAP, POD_H, POD_GAP, HEAD_H, POD_INSET = 3.0, 0.35, 0.95, 0.2, 1.15, 0.1
PX_PER_UNIT = 70  # figure height per unit: a pod box is ~66 px, three lines of 11 px text
COLORS = {"control-plane": "#dbe9f6", "worker": "#e3f1e3", "pod": "#fff7e0", "net": "#eeeeee"}


def topology(nodes: pd.DataFrame, pods: pd.DataFrame, routes: pd.DataFrame | None = None) -> go.Figure:
    fig = go.Figure()
    hover_x, hover_y, hover_text = [], [], []
    max_pods = max([int((pods.node == n).sum()) for n in nodes.name] + [1])
    height = HEAD_H + max_pods * (POD_H + POD_GAP) + 0.3
    width = len(nodes) * (NODE_W + NODE_GAP) - NODE_GAP
    net_y = 1.4
    # the kind network (a bridge in its own namespace)
    fig.add_shape(
        type="rect", x0=0, x1=width, y0=net_y, y1=net_y + 0.6, fillcolor=COLORS["net"], line=dict(color="#888")
    )
    fig.add_annotation(
        x=width / 2,
        y=net_y + 0.3,
        showarrow=False,
        text=f"<b>kind network</b> {KIND_NETWORK}<br>bridge <i>kind</i>, gateway {KIND_GATEWAY}",
        name="in-box:net",
    )
    centers = {}
    for i, n in enumerate(nodes.itertuples()):
        x0 = i * (NODE_W + NODE_GAP)
        x1 = x0 + NODE_W
        centers[n.internal_ip] = (x0 + NODE_W / 2, n.name)
        fig.add_shape(
            type="rect", x0=x0, x1=x1, y0=-height, y1=0, fillcolor=COLORS.get(n.role, "#eee"), line=dict(color="#555")
        )
        fig.add_shape(type="line", x0=x0 + NODE_W / 2, x1=x0 + NODE_W / 2, y0=0, y1=net_y, line=dict(color="#555"))
        fig.add_annotation(
            x=x0 + NODE_W / 2, y=0.02, yanchor="bottom", showarrow=False, bgcolor="white", text=f"eth0 {n.internal_ip}"
        )
        fig.add_annotation(
            x=x0 + NODE_W / 2,
            y=-HEAD_H / 2,
            showarrow=False,
            font=dict(size=11),
            text=f"<b>{n.name}</b><br>cilium_host {n.router_ip}<br>pods {n.pod_cidr}",
            name=f"in-box:node:{n.name}",
        )
        node_routes = routes[routes.node == n.name] if routes is not None else pd.DataFrame()
        hover_x.append(x0 + NODE_W / 2)
        hover_y.append(-HEAD_H / 2)
        hover_text.append(
            "<br>".join(
                [f"<b>{n.name}</b> routes:"]
                + [
                    f"{r.dst} {'via ' + r.gateway + ' ' if r.gateway else ''}dev {r.dev}"
                    for r in node_routes.itertuples()
                ]
            )
        )
        for j, p in enumerate(pods[pods.node == n.name].itertuples()):
            y1 = -HEAD_H - j * (POD_H + POD_GAP)
            y0 = y1 - POD_H
            fig.add_shape(
                type="rect",
                x0=x0 + POD_INSET,
                x1=x1 - POD_INSET,
                y0=y0,
                y1=y1,
                fillcolor=COLORS["pod"],
                line=dict(color="#b08a2e"),
            )
            fig.add_annotation(
                x=x0 + NODE_W / 2,
                y=(y0 + y1) / 2,
                showarrow=False,
                font=dict(size=11),
                text=f"<b>{p.name}</b><br>{p.ip}<br>eth0 ⇄ {p.lxc}",
                name=f"in-box:pod:{p.name}",
            )
            hover_x.append(x0 + NODE_W / 2)
            hover_y.append((y0 + y1) / 2)
            hover_text.append(
                f"{p.namespace}/{p.name}<br>IP {p.ip}, pod MAC {p.pod_mac}<br>"
                f"{p.lxc}: ifindex {_int(p.lxc_ifindex)}, MAC {p.lxc_mac}<br>"
                + _("route in node: {route}").format(route=f"{p.ip}/32 dev {p.lxc}")
            )
    # routes to other nodes' pod CIDRs (autoDirectNodeRoutes): one label per destination node,
    # on its stem from the kind network, naming the nodes that hold the route
    if routes is not None:
        via = routes[routes.gateway.isin(list(centers))]
        for gw, group in via.groupby("gateway", sort=False):
            x = centers[gw][0]
            for dst, g in group.groupby("dst", sort=False):
                fig.add_annotation(
                    x=x,
                    y=net_y / 2 + 0.1,
                    showarrow=False,
                    font=dict(size=10, color="#2a6"),
                    bgcolor="white",
                    text="<br>".join(
                        [
                            f"↓ {dst} via {gw}",
                            *textwrap.wrap(f"(route on {', '.join(g.node)})", 30, break_on_hyphens=False),
                        ]
                    ),
                    name=f"route:{dst}",
                )
    fig.add_trace(
        go.Scatter(
            x=hover_x,
            y=hover_y,
            mode="markers",
            marker=dict(size=18, opacity=0),
            hovertext=hover_text,
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.update_xaxes(visible=False, range=[-0.2, width + 0.2])
    fig.update_yaxes(visible=False, range=[-height - 0.2, net_y + 0.8])
    fig.update_layout(
        title=_("Lab topology"),
        plot_bgcolor="white",
        height=int(PX_PER_UNIT * (height + net_y + 1.0)) + 50,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def _int(v) -> str:
    return "?" if pd.isna(v) else str(int(v))
