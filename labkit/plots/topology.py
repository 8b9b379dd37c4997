"""The lab's topology as a plotly figure: the kind network, nodes, pods and their lxc
veths, addresses, and the routes each node holds (drawn from the running lab's tables).

Arrows from the kind network into a node are the other nodes' routes to its pod CIDR
(autoDirectNodeRoutes, hover a node for its whole table); the
line between a pod and its node is the veth pair, labelled with both ends and the node's
/32 route to the pod (endpointRoutes).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..plan import KIND_GATEWAY, KIND_NETWORK

NODE_W, NODE_GAP, POD_H, POD_GAP, HEAD_H = 3.0, 0.6, 0.9, 0.25, 1.3
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
        text=f"<b>kind network</b> {KIND_NETWORK} (bridge <i>kind</i>, gateway {KIND_GATEWAY})",
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
        fig.add_annotation(x=x0 + NODE_W / 2, y=0.25, showarrow=False, text=f"eth0 {n.internal_ip}")
        fig.add_annotation(
            x=x0 + NODE_W / 2,
            y=-0.45,
            showarrow=False,
            text=f"<b>{n.name}</b><br>cilium_host {n.router_ip} · pods {n.pod_cidr}",
        )
        node_routes = routes[routes.node == n.name] if routes is not None else pd.DataFrame()
        hover_x.append(x0 + NODE_W / 2)
        hover_y.append(-0.45)
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
                x0=x0 + 0.15,
                x1=x1 - 0.15,
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
                text=f"<b>{p.name}</b> {p.ip}<br>eth0 ⇄ {p.lxc} (if {_int(p.lxc_ifindex)})",
            )
            hover_x.append(x0 + NODE_W / 2)
            hover_y.append((y0 + y1) / 2)
            hover_text.append(
                f"{p.namespace}/{p.name}<br>IP {p.ip}, pod MAC {p.pod_mac}<br>"
                f"{p.lxc}: ifindex {_int(p.lxc_ifindex)}, MAC {p.lxc_mac}<br>"
                f"route in node: {p.ip}/32 dev {p.lxc}"
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
                    y=net_y - 0.25,
                    ax=0,
                    ay=-34,
                    showarrow=True,
                    arrowhead=2,
                    arrowcolor="#3a7",
                    font=dict(size=10, color="#2a6"),
                    bgcolor="white",
                    text=f"{dst} via {gw}<br>(route on {', '.join(g.node)})",
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
        title="Lab topology", plot_bgcolor="white", height=int(120 * (height + 4)), margin=dict(l=10, r=10, t=40, b=10)
    )
    return fig


def _int(v) -> str:
    return "?" if pd.isna(v) else str(int(v))
