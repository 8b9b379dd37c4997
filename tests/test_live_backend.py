"""KindBackend against fake docker/kubectl answering with recorded outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from labkit.backend import CapturePoint
from labkit.errors import LabError
from labkit.live import KindBackend
from labkit.tables import CT, ENDPOINTS, EVENTS, FLOWS, IPCACHE, LB, METRICS, NAT, NODES, PODS, SERVICES

CTX = ["kubectl", "--context", "kind-kind"]
AGENT = CTX + ["exec", "-n", "kube-system", "cilium-9rj7d", "-c", "cilium-agent", "--"]


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    f = Fakes(monkeypatch, tmp_path)
    f.clusters("kind")
    return f


@pytest.fixture
def be(fakes):
    return KindBackend(lab="kind", use_k8s_client=False)


def test_protocol_surface(be):
    assert (be.name, be.lab) == ("kind", "kind")
    for m in (
        "up",
        "down",
        "is_up",
        "apply",
        "nodes",
        "pods",
        "services",
        "argv",
        "run",
        "capture_points",
        "maps",
        "monitor",
        "flows",
    ):
        assert callable(getattr(be, m))
    assert be.is_up()


def test_tables_have_exactly_the_shared_schemas(be):
    NODES.check(be.nodes())
    PODS.check(be.pods())
    SERVICES.check(be.services())
    m = be.maps("kind-worker")
    ENDPOINTS.check(m.endpoints())
    CT.check(m.ct())
    NAT.check(m.nat())
    LB.check(m.lb())
    IPCACHE.check(m.ipcache())
    METRICS.check(m.metrics())
    EVENTS.check(be.monitor("kind-worker", to=359, duration=0.1))
    FLOWS.check(be.flows())


def test_nodes_and_pods_with_lxc(be, fakes):
    nodes = be.nodes()
    assert list(nodes["router_ip"]) == ["10.244.0.217", "10.244.1.113", "10.244.3.52"]
    pods = be.pods().set_index("name")
    assert pods.loc["client-pod", "lxc"] == "lxc93b551d233cf"
    assert pods.loc["webpod-697b545f57-tdbfg", "endpoint_id"] == 359
    assert pods.loc["webpod-697b545f57-8nx2m", "lxc"] == "lxc1b2c3d4e5f60"
    assert pods.loc["curl-pod", "lxc_ifindex"] == 13
    assert AGENT + ["cilium-dbg", "bpf", "endpoint", "list"] in fakes.calls()
    assert ["docker", "exec", "-i", "kind-worker", "ip", "-o", "link"] in fakes.calls()
    assert CTX + ["get", "pods", "-n", "kube-system", "-l", "k8s-app=cilium", "-o", "json"] in fakes.calls()


def test_services(be):
    s = be.services().set_index("name")
    assert s.loc["webpod", "cluster_ip"] == "10.96.92.233"
    assert s.loc["webpod", "backends"] == "10.244.1.182:80,10.244.3.135:80"


def test_argv_node_and_pod(be):
    assert be.argv("kind-worker", ["ip", "-o", "link"]) == ["docker", "exec", "-i", "kind-worker", "ip", "-o", "link"]
    assert be.argv("client-pod", ["curl", "-s", "http://webpod"]) == CTX + [
        "exec",
        "-i",
        "-n",
        "native",
        "client-pod",
        "--",
        "curl",
        "-s",
        "http://webpod",
    ]
    assert be.argv("native/curl-pod", ["true"])[-3:] == ["curl-pod", "--", "true"]
    with pytest.raises(LabError) as e:
        be.argv("nope", ["true"])
    assert e.value.exit_code == 2 and "unknown node or pod 'nope'" in str(e.value)
    with pytest.raises(LabError):
        be.argv("kind-worker", "ip link")  # shell strings are refused


def test_run(be, fakes):
    r = be.run("client-pod", ["curl", "-s", "http://10.244.1.182"])
    assert r.returncode == 0 and "ran curl -s http://10.244.1.182 in client-pod" in r.stdout


def test_capture_points(be):
    pts = be.capture_points(["kind-worker:lxc*", "client-pod:eth0", "kind-worker:eth0", "client-pod:e*"])
    assert pts[0] == CapturePoint(
        point="kind-worker:lxc49626b6ed5ee",
        node="kind-worker",
        pod="webpod-697b545f57-tdbfg",
        interface="lxc49626b6ed5ee",
        exec_prefix=("docker", "exec", "-i", "kind-worker"),
    )
    assert (pts[1].point, pts[1].pod) == ("kind-worker:lxc93b551d233cf", "client-pod")
    assert pts[2] == CapturePoint(
        point="client-pod:eth0",
        node="kind-worker",
        pod="client-pod",
        interface="eth0",
        exec_prefix=tuple(CTX + ["exec", "-i", "-n", "native", "client-pod", "--"]),
    )
    assert (pts[3].point, pts[3].pod) == ("kind-worker:eth0", "")
    assert pts[4].point == "client-pod:eth0"
    with pytest.raises(LabError) as e:
        be.capture_points(["kind-worker:vxlan*"])
    assert e.value.exit_code == 2 and "no interface matches" in str(e.value)
    with pytest.raises(LabError):
        be.capture_points(["kind-worker"])


def test_maps_exact_commands_and_values(be, fakes):
    m = be.maps("kind-worker")
    ct = m.ct()
    assert len(ct) == 4 and (ct["rev_nat"] == 0).all()
    assert fakes.calls()[-1] == AGENT + ["cilium-dbg", "bpf", "ct", "list", "global"]
    assert m.nat()["dst_port"].tolist() == [443, 34178]
    assert m.lb().query("frontend_ip == '10.96.92.233'")["slot"].tolist() == [0, 2, 1]
    assert m.ipcache().query("prefix == '10.244.3.135/32'")["tunnel_endpoint"].item() == "172.17.0.2"
    assert m.metrics()["packets"].sum() == 774 + 1 + 1522 + 22 + 38 + 58
    assert m.text("ct", output="json").lstrip().startswith("[")
    assert fakes.calls()[-1] == AGENT + ["cilium-dbg", "bpf", "ct", "list", "global", "-o", "json"]


def test_flush(be, fakes):
    m = be.maps("kind-worker")
    m.flush("ct")
    assert fakes.calls()[-1] == AGENT + ["cilium-dbg", "bpf", "ct", "flush", "global"]
    m.flush("nat")
    assert fakes.calls()[-1] == AGENT + ["cilium-dbg", "bpf", "nat", "flush"]
    with pytest.raises(LabError) as e:
        m.flush("lb")
    assert e.value.exit_code == 2
    with pytest.raises(LabError):
        be.maps("kind-worker9")


def test_monitor(be, fakes):
    ran = []
    be.monitor_startup = 0.01
    ev = be.monitor("kind-worker", to=359, duration=2, during=lambda: ran.append(1))
    assert ran == [1]
    assert len(ev) == 5 and set(ev["dst_id"]) == {359}
    assert (ev["ifindex"] == 9).all()  # from the node's `ip -o link`
    mon = [c for c in fakes.calls() if "monitor" in c][0]
    assert mon == AGENT + ["timeout", "2", "cilium-dbg", "monitor", "--to", "359"]
    be.monitor("kind-worker", from_=2543, duration=0.5)
    assert [c for c in fakes.calls() if "monitor" in c][-1][-4:] == ["cilium-dbg", "monitor", "--from", "2543"]
    with pytest.raises(LabError, match="cannot look back"):
        be.monitor("kind-worker", seconds=30)


def test_flows_from_every_node(be, fakes):
    fl = be.flows()
    assert len(fl) == 8 and fl["time"].is_monotonic_increasing
    hubble = [c for c in fakes.calls() if "hubble" in c]
    assert len(hubble) == 3
    assert hubble[1] == AGENT + ["hubble", "observe", "-o", "json", "--last", "1000"]
    be.flows("kind-worker", seconds=60)
    assert fakes.calls()[-1][-2:] == ["--since", "60s"]


def test_k8s_client_falls_back_to_kubectl(fakes):
    be = KindBackend(lab="kind")  # KUBECONFIG points nowhere
    assert list(be.nodes()["name"]) == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert CTX + ["get", "nodes", "-o", "json"] in fakes.calls()
    with pytest.raises(LabError):
        KindBackend(lab="kind", use_k8s_client=True).nodes()


def test_up_down_through_the_backend(be, fakes):
    be.down()
    assert not be.is_up()
    assert ["kind", "delete", "cluster", "--name", "kind"] in fakes.calls()


def test_lab_facade_return_values(be, fakes):
    fakes.clusters()
    be.log = lambda s: None
    assert be.up() == "lab kind is up: kind cluster kind with Cilium 1.17.6 (kubectl context kind-kind)"
    assert be.apply(["cluster/manifests"]) == ["ok"]  # what the fake kubectl apply prints
    assert be.down() == "lab kind is down: kind cluster kind deleted"


def test_routes_through_run(be, fakes):
    r = be.run("kind-worker", ["ip", "-j", "-4", "route", "show"])
    assert r.returncode == 0
    assert fakes.calls()[-1] == ["docker", "exec", "-i", "kind-worker", "ip", "-j", "-4", "route", "show"]
