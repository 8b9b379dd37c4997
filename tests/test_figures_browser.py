"""Every figure a lesson shows, drawn by plotly.js in headless Chromium at JupyterLab's
widths, and checked by what is drawn: markers per packet, labels present, no text box over
another, labels inside their boxes, small bars visible."""

from __future__ import annotations

import pytest

from labkit import tables
from labkit.plots.ladder import ladder
from labkit.plots.maps import ct_plot, lb_sankey, metrics_bars, nat_sankey
from labkit.plots.topology import topology

from .browser import drawn_markers, figure_page, overlapping, text_boxes
from .conversations import SAME_NODE, same_node_http
from .test_plots import _tables

pytestmark = pytest.mark.slow
WIDTHS = (600, 860, 1100)  # narrow, JupyterLab at a 1280 px window, wide

BOXES_JS = """
() => {
  const ann = Array.from(document.querySelectorAll('#fig g.annotation')).map((g) => {
    const r = g.querySelector('.annotation-text').getBoundingClientRect();
    return {i: +g.getAttribute('data-index'), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  });
  const shapes = Array.from(document.querySelectorAll('#fig .shapelayer path')).map((p) => {
    const r = p.getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  });
  const svg = document.querySelector('#fig .main-svg').getBoundingClientRect();
  return {ann, shapes, svg: {x0: svg.left, y0: svg.top, x1: svg.right, y1: svg.bottom}};
}
"""


def _inside(inner: dict, outer: dict, slack: float = 1.0) -> bool:
    return (
        inner["x0"] >= outer["x0"] - slack
        and inner["x1"] <= outer["x1"] + slack
        and inner["y0"] >= outer["y0"] - slack
        and inner["y1"] <= outer["y1"] + slack
    )


def _all_text_inside_the_figure(page) -> None:
    svg = page.evaluate(BOXES_JS)["svg"]
    out = [b["text"] for b in text_boxes(page) if not _inside(b, svg)]
    assert out == [], f"text cut off at the figure's edge: {out}"


@pytest.mark.parametrize("width", WIDTHS)
def test_ladder_marks_every_sighting_names_packets_and_never_overlaps(tmp_path, width):
    packets = same_node_http()
    fig = ladder(packets, SAME_NODE)
    with figure_page(fig, tmp_path, width=width) as (page, seen):
        drawn = drawn_markers(page)
        sightings = sum(n for role, n in drawn.items() if not role.startswith("skipped"))
        conversation = packets[packets.point != "kind-worker:eth0"]
        assert sightings == len(packets) == len(conversation) + 1  # every packet at every point has a marker
        # the conversation skips the other side's lxc: 6 client packets skip the server's lxc,
        # 4 server packets the client's; the node's eth0 is on no path, so no cross there
        assert drawn.get("skipped:skipped this interface", 0) == 10 == fig.layout.meta["skipped"]
        texts = [b["text"] for b in text_boxes(page)]
        for label in ("SYN", "SYN-ACK", "GET /", "200 OK", "FIN", "ARP request", "ARP reply"):
            assert label in texts, f"row label {label!r} missing"
        for lane in SAME_NODE:
            assert lane.replace(":", "") in texts, f"lane {lane} not labelled"
        assert overlapping(text_boxes(page)) == []
        _all_text_inside_the_figure(page)
        assert seen["errors"] == []


@pytest.mark.parametrize("width", (700, 860))
def test_topology_labels_stay_inside_their_boxes(tmp_path, width):
    nodes, pods, routes = _tables()
    fig = topology(nodes, pods, routes)
    with figure_page(fig, tmp_path, width=width) as (page, _):
        drawn = page.evaluate(BOXES_JS)
        assert overlapping(text_boxes(page)) == []
        for a in drawn["ann"]:
            name = fig.layout.annotations[a["i"]].name or ""
            if not name.startswith("in-box:"):
                continue
            cx, cy = (a["x0"] + a["x1"]) / 2, (a["y0"] + a["y1"]) / 2
            around = [s for s in drawn["shapes"] if s["x0"] <= cx <= s["x1"] and s["y0"] <= cy <= s["y1"]]
            box = min(around, key=lambda s: (s["x1"] - s["x0"]) * (s["y1"] - s["y0"]))
            assert _inside(a, box), f"{name} runs past its box at {width} px"
        _all_text_inside_the_figure(page)


def test_metrics_log_scale_keeps_two_drops_visible(tmp_path):
    metrics = tables.METRICS.frame(
        [
            {"node": "w", "reason": "Forwarded", "direction": "EGRESS", "packets": 4500, "bytes": 450000},
            {"node": "w", "reason": "Forwarded", "direction": "INGRESS", "packets": 45, "bytes": 4500},
            {"node": "w", "reason": "Invalid source ip", "direction": "INGRESS", "packets": 2, "bytes": 120},
        ]
    )
    fig = metrics_bars(metrics)
    assert fig.layout.yaxis.type == "log"
    with figure_page(fig, tmp_path) as (page, _):
        heights = page.evaluate(
            "() => Array.from(document.querySelectorAll('#fig .bars path')).map((p) => p.getBBox().height)"
        )
        assert len(heights) == 3 and min(heights) > 8, heights  # the 2 drops are a bar you can see
        texts = [b["text"] for b in text_boxes(page)]
        assert "Invalid source ip" in texts and "2" in texts
        assert overlapping(text_boxes(page)) == []
    linear = metrics_bars(metrics[metrics.packets < 100])
    assert linear.layout.yaxis.type == "linear"  # 45 and 2: close enough for a linear axis


@pytest.mark.parametrize("which", ["ct", "lb", "nat"])
def test_map_plots_are_readable(tmp_path, which):
    ct = tables.CT.frame(
        [
            {
                "node": "w",
                "proto": "TCP",
                "direction": d,
                "src_ip": "10.244.1.71",
                "src_port": 42278,
                "dst_ip": "10.244.1.182",
                "dst_port": 80,
                "rev_nat": 0,
            }
            for d in ("OUT", "IN")
        ]
    )
    lb = tables.LB.frame(
        [
            {
                "node": "w",
                "frontend_ip": "10.96.92.233",
                "frontend_port": 80,
                "proto": "TCP",
                "slot": s,
                "backend_ip": ip,
                "backend_port": 80,
                "backend_id": s,
                "rev_nat": 2,
            }
            for s, ip in ((1, "10.244.1.182"), (2, "10.244.3.135"))
        ]
    )
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
            {  # the node's own connection to the API server: the same text on both sides
                "node": "w",
                "proto": "TCP",
                "direction": "OUT",
                "src_ip": "172.18.0.3",
                "src_port": 43918,
                "dst_ip": "172.18.0.2",
                "dst_port": 6443,
                "xlate": "SRC",
                "xlate_ip": "172.18.0.3",
                "xlate_port": 43918,
            },
        ]
    )
    fig = {"ct": lambda: ct_plot(ct), "lb": lambda: lb_sankey(lb), "nat": lambda: nat_sankey(nat)}[which]()
    labels = {
        "ct": ["10.244.1.71:42278", "TCP 10.244.1.182:80"],
        "lb": ["10.96.92.233:80/TCP", "10.244.3.135:80"],
        "nat": ["10.244.1.71:4000", "172.18.0.3:4000"],
    }[which]
    with figure_page(fig, tmp_path) as (page, seen):
        texts = [b["text"] for b in text_boxes(page)]
        assert all(label in texts for label in labels), texts
        assert overlapping(text_boxes(page)) == []
        _all_text_inside_the_figure(page)
        assert seen["errors"] == []
