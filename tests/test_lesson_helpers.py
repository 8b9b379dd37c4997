"""The lesson helpers a notebook leans on: checks that never spoil, claims that fail
loudly, the blog's names mapped to a lab's."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.display import HTML

from labkit import lesson, tables
from labkit.lesson import blogmap, checks


def shown(monkeypatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(checks, "display", lambda obj: out.append(obj.data))
    return out


def test_a_check_without_prediction_reveals_nothing(monkeypatch):
    monkeypatch.delenv("LABKIT_EXPORT", raising=False)
    out = shown(monkeypatch)
    lesson.check("the next hop", None, "172.18.0.4")
    assert "no prediction yet" in out[0] and "172.18.0.4" not in out[0]
    lesson.check("the next hop", "172.18.0.4 ", "172.18.0.4")
    assert "✅" in out[1]
    lesson.check("the next hop", "172.18.0.9", "172.18.0.4", hint="look at the routes")
    assert "❌" in out[2] and "look at the routes" in out[2] and "172.18.0.4" not in out[2]
    lesson.check("points", {"Client ETH0", "client lxc"}, ["client lxc", "client eth0"])
    assert "✅" in out[3]  # sets of names, case and order do not matter


def test_a_static_page_shows_what_the_lab_showed(monkeypatch):
    monkeypatch.setenv("LABKIT_EXPORT", "1")
    out = shown(monkeypatch)
    lesson.check("the next hop", None, "172.18.0.4")
    assert "the lab showed" in out[0] and "172.18.0.4" in out[0]
    table = pd.DataFrame({"a": [1]})
    assert lesson.reveal(table, after=None) is table


def test_reveal_waits_for_the_prediction(monkeypatch):
    monkeypatch.delenv("LABKIT_EXPORT", raising=False)
    table = pd.DataFrame({"a": [1]})
    hidden = lesson.reveal(table, after=None, what="The counts")
    assert isinstance(hidden, HTML) and "The counts gives the answer away" in hidden.data
    assert lesson.reveal(table, after={"client lxc"}) is table
    assert lesson.reveal(table, after=False) is table  # False is a prediction too


def test_recap_lists_claims_and_fails_on_one_not_shown(monkeypatch):
    from labkit.lesson import claims

    seen = []
    monkeypatch.setattr(claims, "display", lambda obj: seen.append(obj.data))
    ok = [lesson.claim("the node's eth0 sees nothing", True, "0 packets")]
    lesson.recap(ok, ["bpf_redirect_peer skips the lxc"])
    assert "✅ the node&#x27;s eth0 sees nothing" in seen[0] and "Take-aways" in seen[0]
    with pytest.raises(lesson.ClaimNotShown, match="the ARP is answered by the lxc"):
        lesson.recap(ok + [lesson.claim("the ARP is answered by the lxc", False, "no ARP captured")])
    assert "❌" in seen[1]


class FakeLab:
    def __init__(self):
        self.pods = tables.PODS.frame(
            [
                {
                    "namespace": "native",
                    "name": "client-pod",
                    "node": "kind-worker",
                    "ip": "10.244.1.7",
                    "lxc": "lxc0123456789ab",
                    "endpoint_id": 25,
                    "identity": 4242,
                    "app": "idle",
                    "lxc_ifindex": 6,
                    "pod_mac": "0a:00:00:00:00:01",
                    "lxc_mac": "0a:00:00:00:00:02",
                },
                {
                    "namespace": "native",
                    "name": "curl-pod",
                    "node": "kind-control-plane",
                    "ip": "10.244.0.9",
                    "app": "idle",
                },
                {
                    "namespace": "native",
                    "name": "webpod-a",
                    "node": "kind-worker",
                    "ip": "10.244.1.8",
                    "lxc": "lxcaaaaaaaaaaaa",
                    "endpoint_id": 359,
                    "identity": 30542,
                    "app": "whoami",
                },
                {
                    "namespace": "native",
                    "name": "webpod-b",
                    "node": "kind-worker2",
                    "ip": "10.244.2.9",
                    "lxc": "lxcbbbbbbbbbbbb",
                    "endpoint_id": 77,
                    "app": "whoami",
                },
            ]
        )
        self.services = tables.SERVICES.frame(
            [
                {
                    "namespace": "native",
                    "name": "webpod",
                    "cluster_ip": "10.96.0.50",
                    "port": 80,
                    "backends": "10.244.1.8:80,10.244.2.9:80",
                }
            ]
        )
        self.nodes = tables.NODES.frame(
            [
                {"name": n, "internal_ip": f"172.18.0.{i + 2}", "router_ip": f"10.244.{i}.1"}
                for i, n in enumerate(("kind-control-plane", "kind-worker", "kind-worker2"))
            ]
        )


def test_the_blogs_names_map_to_the_labs():
    lab = FakeLab()
    names = lesson.blog_names(lab)
    assert names.loc["client-pod's IP", "in this lab"] == "10.244.1.7"
    assert names.loc["the webpod's endpoint id", "in this lab"] == "359"
    line = "cilium monitor --to 359 --from 2543; tcpdump -i lxc93b551d233cf; curl http://10.244.1.182:80"
    assert lesson.translate(lab, line) == (
        "cilium monitor --to 359 --from 25; tcpdump -i lxc0123456789ab; curl http://10.244.1.8:80"
    )
    # a short number is replaced only as a whole word, never inside an address or a port
    assert lesson.translate(lab, "seq 2543 10.244.1.25430 ifindex=11 port 11211") == (
        "seq 25 10.244.1.25430 ifindex=6 port 11211"
    )
    assert blogmap.translate(lab, "kind-worker 172.17.0.4:0 (localhost)") == "kind-worker 172.18.0.3:0 (localhost)"
