"""The capture panel and the map explorer as a learner sees them: rendered by the Jupyter
widgets HTML manager in headless Chromium (as in an exported page), and checked by what is
drawn: full tab titles, every interface in view, readable times, only this lab and its
companions in the picker, a plain note where buttons need a live lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import paths, tables
from labkit.lesson import setup_plotting
from labkit.plots.render import plotly_js

from .browser import offline_page
from .conversations import same_node_http

pytestmark = pytest.mark.slow
EMBED_JS = Path(sys.prefix) / "share" / "labkit-js" / "embed.js"


class FakeMaps:
    def __init__(self, node):
        self.node = node

    def ct(self):
        n = 2 if self.node == "kind-worker" else 0
        return tables.CT.frame(
            [
                {
                    "node": self.node,
                    "proto": "TCP",
                    "direction": d,
                    "src_ip": "10.244.1.71",
                    "src_port": 42278,
                    "dst_ip": "10.244.1.182",
                    "dst_port": 80,
                    "flag_names": "RxClosing TxClosing SeenNonSyn",
                }
                for d in ("OUT", "IN")[:n]
            ]
        )

    def nat(self):
        return tables.NAT.frame()

    def lb(self):
        return tables.LB.frame()

    def endpoints(self):
        return tables.ENDPOINTS.frame([{"node": self.node, "ip": "10.244.1.71", "endpoint_id": 2543}])

    def ipcache(self):
        return tables.IPCACHE.frame([{"node": self.node, "prefix": "10.244.1.71/32", "identity": 30542}])

    def metrics(self):
        return tables.METRICS.frame([{"node": self.node, "reason": "Forwarded", "direction": "EGRESS", "packets": 9}])


class Run:
    def __init__(self):
        self.result = subprocess.CompletedProcess(["curl"], 0, "Hostname: webpod\n", "")
        self.packets = same_node_http()


class FakeLab:
    """The surface the panels use, on the blog's same-node capture (tests/conversations)."""

    name = "lessons1"

    class backend:
        name = "embedded"

    def __init__(self):
        self.nodes = tables.NODES.frame([{"name": n} for n in ("kind-control-plane", "kind-worker", "kind-worker2")])
        self.pods = tables.PODS.frame(
            [
                {
                    "namespace": "native",
                    "name": "client-pod",
                    "node": "kind-worker",
                    "ip": "10.244.1.71",
                    "lxc": "lxc93b551d233cf",
                    "app": "idle",
                },
                {
                    "namespace": "native",
                    "name": "webpod-697b545f57-tdbfg",
                    "node": "kind-worker",
                    "ip": "10.244.1.182",
                    "lxc": "lxc49626b6ed5ee",
                    "app": "whoami",
                },
                {
                    "namespace": "native",
                    "name": "webpod-697b545f57-x2k8q",
                    "node": "kind-worker2",
                    "ip": "10.244.3.135",
                    "lxc": "lxc0123456789ab",
                    "app": "whoami",
                },
                {
                    "namespace": "native",
                    "name": "curl-pod",
                    "node": "kind-control-plane",
                    "ip": "10.244.0.17",
                    "lxc": "lxcffeeddccbbaa",
                    "app": "idle",
                },
            ]
        )
        self.services = tables.SERVICES.frame(
            [{"namespace": "native", "name": "webpod", "cluster_ip": "10.96.92.233", "port": 80, "protocol": "TCP"}]
        )

    def companions(self):
        return ["lessons1-k"]

    def capture_choices(self):
        return paths.choices(self.nodes, self.pods)

    def run_captured(self, target, argv, points, seconds=10):
        return Run()

    def maps(self, node):
        return FakeMaps(node)


def _script_json(doc) -> str:
    return json.dumps(doc).replace("</", "<\\/")  # as nbconvert writes it: no </script> inside


def _page(tmp_path: Path, widget) -> Path:
    """A page the way an exported notebook carries widgets: state in the head, one view."""
    import ipywidgets.embed as embed

    data = embed.embed_data(views=[widget])
    page = tmp_path / "widgets.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<script src="{plotly_js().as_uri()}"></script><script src="{EMBED_JS.as_uri()}"></script>'
        '<script type="application/vnd.jupyter.widget-state+json">'
        f"{_script_json(data['manager_state'])}</script></head><body style='width:1000px'>"
        '<script type="application/vnd.jupyter.widget-view+json">'
        f"{_script_json(data['view_specs'][0])}</script></body></html>"
    )
    return page


TABS_JS = """
() => Array.from(document.querySelectorAll('.lk-tabs .lm-TabBar-tab')).map((t) => {
  const label = t.querySelector('.lm-TabBar-tabLabel');
  return {text: label.textContent, full: label.scrollWidth <= label.clientWidth + 1};
})
"""


@pytest.fixture
def static_mode(monkeypatch):
    monkeypatch.setenv("LABKIT_EXPORT", "1")
    setup_plotting()


def test_capture_panel_as_a_page_shows_its_recorded_capture(tmp_path, static_mode):
    from labkit.widgets.capture_panel import CapturePanel

    panel = CapturePanel(FakeLab())
    assert panel.run_button.disabled and "need a live lab" in panel.note.value
    with offline_page() as (page, seen):
        page.goto(_page(tmp_path, panel.widget).as_uri())
        page.wait_for_selector(".lk-tabs .lm-TabBar-tab", timeout=30000)
        tabs = page.evaluate(TABS_JS)
        lanes = paths.lanes(list(panel.points.value), "client-pod", FakeLab().pods)
        assert [t["text"].rsplit(" (", 1)[0] for t in tabs] == lanes
        assert all(t["full"] for t in tabs), tabs  # no title cut off
        select = page.locator("select[multiple]")
        n_options = select.locator("option").count()
        assert n_options == len(FakeLab().capture_choices()) and int(select.get_attribute("size")) == n_options
        assert page.get_by_text("Shift-click to pick several").count() == 1
        picker = page.locator("select").first.locator("option").all_inner_texts()
        assert picker == ["lessons1", "lessons1-k"]  # this lab and its companions, nobody else's
        first_time = page.locator(".lk-scroll td").first.inner_text()
        assert len(first_time) == 15 and first_time[2] == ":" and first_time[8] == "."  # HH:MM:SS.uuuuuu
        assert page.get_by_text("need a live lab").count() == 1
        assert page.locator("button", has_text="Run").is_disabled()
        page.wait_for_selector(".plotly-graph-div .main-svg", timeout=30000)  # the ladder of the recording
        assert seen["errors"] == [] and seen["blocked"] == []


def test_map_explorer_as_a_page_shows_every_map_of_the_busy_node(tmp_path, static_mode):
    from labkit.widgets.map_explorer import MAPS, MapExplorer

    ex = MapExplorer(FakeLab())
    assert ex.node.value == "kind-worker"  # the node with conntrack entries, not the first one
    with offline_page() as (page, seen):
        page.goto(_page(tmp_path, ex.widget).as_uri())
        page.wait_for_selector("h4.lk-map", timeout=30000)
        heads = page.locator("h4.lk-map").all_inner_texts()
        assert [h.split(" (")[0] for h in heads] == list(MAPS) and heads[0] == "ct (2 entries)"
        page.wait_for_function(
            f"document.querySelectorAll('.lk-recorded .js-plotly-plot .main-svg').length >= {len(MAPS) - 2}",
            timeout=30000,
        )  # every plot drawn in view (ct, nat, lb, metrics)
        assert page.get_by_text("need a live lab").count() == 1
        assert page.locator("button", has_text="Refresh").is_disabled()
        assert page.locator("button.mod-warning", has_text="Flush").is_disabled()
        assert seen["errors"] == [] and seen["blocked"] == []


def test_map_explorer_live_opens_on_data_and_shows_tables_once(monkeypatch):
    monkeypatch.delenv("LABKIT_EXPORT", raising=False)
    setup_plotting()
    from labkit.widgets.map_explorer import MapExplorer

    ex = MapExplorer(FakeLab())
    assert ex.node.value == "kind-worker" and len(ex.table) == 2 and ex.figure is not None  # opened with data
    assert "2 entries" in ex.status.value
    ex.map.value = "ipcache"
    assert ex.figure is None and len(ex.out_table.outputs) == 1  # the table once, no table-as-figure
