"""The capture panel and the map explorer, driven from Python: set values, click, read."""

from __future__ import annotations

import pytest

from labkit import tables
from labkit.errors import LabError
from labkit.paths import lanes as order_lanes
from labkit.widgets.capture_panel import CapturePanel
from labkit.widgets.map_explorer import MapExplorer

from .lab_fixtures import running_lab


class FakeMaps:
    def __init__(self, store, node):
        self.store, self.node = store, node

    def ct(self):
        return tables.CT.frame(self.store["ct"])

    def metrics(self):
        return tables.METRICS.frame(
            [{"node": self.node, "reason": "Forwarded", "direction": "EGRESS", "packets": 3, "bytes": 180}]
        )

    def lb(self):
        return tables.LB.frame()

    def endpoints(self):
        raise LabError("no such map here")

    def flush(self, name):
        self.store["flushed"].append((self.node, name))
        self.store[name] = []


class FakeLab:
    """Just the surface the explorer uses; a real lab is exercised in the datapath tests."""

    def __init__(self):
        self.store = {
            "ct": [
                {
                    "node": "kind-worker",
                    "proto": "TCP",
                    "direction": "OUT",
                    "src_ip": "10.244.1.71",
                    "src_port": 4000,
                    "dst_ip": "10.244.1.182",
                    "dst_port": 80,
                }
            ],
            "flushed": [],
        }
        self.nodes = tables.NODES.frame([{"name": "kind-worker"}, {"name": "kind-worker2"}])

    def maps(self, node):
        return FakeMaps(self.store, node)


def test_map_explorer_refresh_plot_and_confirmed_flush():
    lab = FakeLab()
    ex = MapExplorer(lab)
    assert list(ex.node.options) == ["kind-worker", "kind-worker2"]
    ex.node.value = "kind-worker"
    ex.map.value = "ct"
    ex.refresh_button.click()
    assert len(ex.table) == 1 and ex.figure.data[0].name == "OUT"
    ex.flush_button.click()  # asks first, flushes nothing yet
    assert lab.store["flushed"] == [] and ex.confirm_button.layout.display == ""
    ex.cancel_button.click()
    assert lab.store["flushed"] == [] and ex.confirm_button.layout.display == "none"
    ex.flush_button.click()
    ex.confirm_button.click()
    assert lab.store["flushed"] == [("kind-worker", "ct")] and len(ex.table) == 0
    ex.map.value = "metrics"
    assert list(ex.figure.data[0].x) == ["Forwarded"]
    ex.map.value = "endpoints"  # a failing read is one line in the panel
    assert "no such map here" in ex.status.value
    ex.map.value = "lb"
    ex.flush_button.click()
    assert "cannot be flushed" in ex.status.value and lab.store["flushed"] == [("kind-worker", "ct")]


def test_lanes_follow_the_path():
    pods = tables.PODS.frame(
        [
            {"name": "client-pod", "node": "kind-worker", "lxc": "lxcaaa"},
            {"name": "web", "node": "kind-worker2", "lxc": "lxcbbb"},
        ]
    )
    got = order_lanes(
        [
            "web:eth0",
            "kind-worker2:lxcbbb",
            "kind-worker2:eth0",
            "kind-worker:eth0",
            "kind-worker:lxcaaa",
            "client-pod:eth0",
        ],
        "client-pod",
        pods,
    )
    assert got == [
        "client-pod:eth0",
        "kind-worker:lxcaaa",
        "kind-worker:eth0",
        "kind-worker2:eth0",
        "kind-worker2:lxcbbb",
        "web:eth0",
    ]


@pytest.mark.root
def test_capture_panel_on_a_real_lab():
    with running_lab("wid", datapath="kernel") as lab:
        panel = CapturePanel(lab, seconds=5)
        assert panel.source.value == "client-pod"
        pods = lab.pods.set_index("name")
        other = pods[(pods.app == "whoami") & (pods.node == "kind-worker2")]
        panel.command.value = f"curl -s http://{other.ip.iloc[0]}"
        client = pods.loc["client-pod"]
        panel.points.value = ("client-pod:eth0", f"kind-worker:{client.lxc}", "kind-worker:eth0", "kind-worker2:eth0")
        panel.run_button.click()
        assert "exit 0" in panel.status.value, panel.status.value
        pk = panel.packets
        assert set(pk.point) == set(panel.points.value)
        syn = pk[(pk.tcp_flags == "[S]") & (pk.dst_port == 80)]  # the curl's (the nodes talk to the API server too)
        assert len(syn) == 4  # the SYN crossed all four interfaces (kernel routing)
        assert [panel.tabs.get_title(i).rsplit(" (", 1)[0] for i in range(4)] == list(panel.points.value)
        assert panel.tabs.get_title(0) == f"client-pod:eth0 ({(pk.point == 'client-pod:eth0').sum()})"
        assert isinstance(panel.figure.data, tuple) and len(panel.figure.data) > 0
        panel.command.value = ""
        panel.run_button.click()
        assert "type a command" in panel.status.value


@pytest.mark.root
def test_map_explorer_on_a_real_datapath():
    with running_lab("wmx") as lab:
        pods = lab.pods.set_index("name")
        web = pods[(pods.app == "whoami") & (pods.node == "kind-worker")].ip.iloc[0]
        assert lab.pod("client-pod").run(["curl", "-s", "--max-time", "5", f"http://{web}"]).returncode == 0
        ex = MapExplorer(lab)
        ex.node.value = "kind-worker"
        ex.map.value = "ct"
        assert {"OUT", "IN"} <= set(ex.table.direction) and web in set(ex.table.dst_ip)
        ex.flush_button.click()
        ex.confirm_button.click()
        assert len(ex.table) == 0 and len(lab.maps("kind-worker").ct()) == 0
        ex.map.value = "lb"
        assert set(ex.table.frontend_ip) == set(lab.services.cluster_ip)  # the control plane's and webpod
        assert ex.figure.data[0].type == "sankey"
        ex.map.value = "endpoints"
        assert set(pods[pods.node == "kind-worker"].ip) <= set(ex.table.ip)
