"""Figures from the shared tables (topology, map plots): right elements, no root needed."""

from __future__ import annotations

from labkit import plan as planning
from labkit import spec, tables
from labkit.plots.maps import ct_plot, lb_sankey, metrics_bars, nat_sankey, plot_map
from labkit.plots.topology import topology


def _tables():
    p, _ = planning.extend(planning.initial(spec.load_cluster()), spec.load_manifests([spec.CLUSTER_DIR / "manifests"]))
    nodes = tables.NODES.frame(
        {"name": n.name, "role": n.role, "internal_ip": n.ip, "pod_cidr": n.pod_cidr, "router_ip": n.router_ip}
        for n in p.nodes
    )
    pods = tables.PODS.frame(
        {"namespace": x.namespace, "name": x.name, "node": x.node, "ip": x.ip, "lxc": x.lxc, "lxc_ifindex": 5}
        for x in p.pods
    )
    routes = tables.ROUTES.frame(
        [
            {"node": n.name, "dst": o.pod_cidr, "gateway": o.ip, "dev": "eth0"}
            for n in p.nodes
            for o in p.nodes
            if o != n
        ]
        + [{"node": x.node, "dst": x.ip, "gateway": "", "dev": x.lxc, "scope": "link"} for x in p.pods]
    )
    return nodes, pods, routes


def test_topology_draws_nodes_pods_and_node_routes():
    nodes, pods, routes = _tables()
    fig = topology(nodes, pods, routes)
    texts = " ".join(a.text or "" for a in fig.layout.annotations)
    for n in nodes.itertuples():
        assert n.name in texts and n.internal_ip in texts and n.router_ip in texts
    for p in pods.itertuples():
        assert p.name in texts and p.lxc in texts and p.ip in texts
    arrows = [a.text for a in fig.layout.annotations if (a.name or "").startswith("route:")]
    assert len(arrows) == 3  # one per node: the others' route to its pod CIDR
    assert "↓ 10.244.2.0/24 via 172.18.0.4<br>(route on kind-control-plane,<br>kind-worker)" in arrows
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 1 + 3 + 4  # kind network, nodes, pods


def test_ct_plot_highlights_revnat():
    ct = tables.CT.frame(
        [
            {
                "node": "w",
                "proto": "TCP",
                "direction": "OUT",
                "src_ip": "10.244.1.71",
                "src_port": 42278,
                "dst_ip": "10.244.1.182",
                "dst_port": 80,
                "rev_nat": 2,
            },
            {
                "node": "w",
                "proto": "TCP",
                "direction": "IN",
                "src_ip": "10.244.1.71",
                "src_port": 42278,
                "dst_ip": "10.244.1.182",
                "dst_port": 80,
                "rev_nat": 0,
            },
            {
                "node": "w",
                "proto": "TCP",
                "direction": "SVC",
                "src_ip": "10.244.1.71",
                "src_port": 42278,
                "dst_ip": "10.96.92.233",
                "dst_port": 80,
                "rev_nat": 2,
                "backend_id": 7,
            },
        ]
    )
    fig = ct_plot(ct)
    names = {t.name: t for t in fig.data}
    assert set(names) == {"OUT RevNAT", "IN", "SVC RevNAT"}
    assert names["OUT RevNAT"].marker.size > names["IN"].marker.size
    assert "BackendID=7" in names["SVC RevNAT"].hovertext[0]
    assert "no conntrack entries" in ct_plot(tables.CT.frame()).layout.annotations[0].text


def test_lb_nat_and_metrics_plots():
    lb = tables.LB.frame(
        [
            {
                "node": "w",
                "frontend_ip": "10.96.92.233",
                "frontend_port": 80,
                "proto": "TCP",
                "slot": 0,
                "backend_ip": "0.0.0.0",
                "backend_port": 0,
                "rev_nat": 2,
                "flags": "ClusterIP, non-routable",
            },
            {
                "node": "w",
                "frontend_ip": "10.96.92.233",
                "frontend_port": 80,
                "proto": "TCP",
                "slot": 1,
                "backend_ip": "10.244.1.182",
                "backend_port": 80,
                "backend_id": 1,
                "rev_nat": 2,
            },
            {
                "node": "w",
                "frontend_ip": "10.96.92.233",
                "frontend_port": 80,
                "proto": "TCP",
                "slot": 2,
                "backend_ip": "10.244.2.5",
                "backend_port": 80,
                "backend_id": 2,
                "rev_nat": 2,
            },
        ]
    )
    sankey = lb_sankey(lb).data[0]
    assert list(sankey.node.label) == ["10.96.92.233:80/TCP", "10.244.1.182:80", "10.244.2.5:80"]
    assert list(sankey.link.source) == [0, 0] and list(sankey.link.target) == [1, 2]
    nat = tables.NAT.frame(
        [
            {
                "node": "w",
                "proto": "TCP",
                "direction": "OUT",
                "src_ip": "10.244.1.71",
                "src_port": 4000,
                "dst_ip": "172.18.0.100",
                "dst_port": 80,
                "xlate": "SRC",
                "xlate_ip": "172.18.0.3",
                "xlate_port": 4000,
            },
            {
                "node": "w",
                "proto": "TCP",
                "direction": "IN",
                "src_ip": "172.18.0.100",
                "src_port": 80,
                "dst_ip": "172.18.0.3",
                "dst_port": 4000,
                "xlate": "DST",
                "xlate_ip": "10.244.1.71",
                "xlate_port": 4000,
            },
        ]
    )
    assert list(nat_sankey(nat).data[0].node.label) == ["10.244.1.71:4000", "172.18.0.3:4000"]
    own = nat.assign(src_ip="172.18.0.3")  # a node's own connection keeps its address and port
    link = nat_sankey(own).data[0].link
    assert all(a != b for a, b in zip(link.source, link.target)), "a link to itself draws as NaN"
    metrics = tables.METRICS.frame(
        [
            {"node": "w", "reason": "Forwarded", "direction": "EGRESS", "packets": 10, "bytes": 1000},
            {"node": "w", "reason": "Forwarded", "direction": "INGRESS", "packets": 8, "bytes": 800},
            {"node": "w", "reason": "No route", "direction": "EGRESS", "packets": 1, "bytes": 60},
        ]
    )
    bars = {t.name: t for t in metrics_bars(metrics).data}
    assert list(bars["EGRESS"].x) == ["Forwarded", "No route"] and list(bars["EGRESS"].y) == [10, 1]
    assert plot_map("endpoints", tables.ENDPOINTS.frame()).data[0].type == "table"
