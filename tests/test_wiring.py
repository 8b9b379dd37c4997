"""The namespace wiring and name files, from the plan (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from labkit import plan as planning
from labkit import spec
from labkit.embedded import hosts, topology
from labkit.embedded.names import LabNames, check_lab
from labkit.errors import LabError


@pytest.fixture(scope="module")
def lab_plan():
    p, _ = planning.extend(planning.initial(spec.load_cluster()), spec.load_manifests([spec.CLUSTER_DIR / "manifests"]))
    return p


def test_node_commands_native_routing(lab_plan):
    names = LabNames("x")
    w = lab_plan.node("kind-worker")
    cmds = topology.node_commands(names, lab_plan, w)
    assert f"addr add {w.router_ip}/32 dev cilium_host scope link" in cmds
    assert "route add 10.244.0.0/24 via 172.18.0.2 dev eth0" in cmds  # autoDirectNodeRoutes
    assert "route add 10.244.2.0/24 via 172.18.0.4 dev eth0" in cmds
    assert not any("10.244.1.0/24" in c for c in cmds)  # not its own CIDR
    assert any(
        c.startswith("link add eth0 address 02:42:ac:12:00:03 type veth") and "netns lk.x.net" in c for c in cmds
    )


def test_pod_commands_like_cilium(lab_plan):
    names = LabNames("x")
    client = next(p for p in lab_plan.pods if p.name == "client-pod")
    node = lab_plan.node(client.node)
    lxc = topology.lxc_commands(names, client)
    assert lxc[0] == f"link add {client.lxc} type veth peer name eth0 netns lk.x.pod.native.client-pod"
    assert f"route add {client.ip}/32 dev {client.lxc}" in lxc  # endpointRoutes
    pod = topology.pod_commands(client, node)
    assert f"addr add {client.ip}/32 dev eth0" in pod
    assert pod[-2:] == [
        f"route add {node.router_ip} dev eth0 scope link",
        f"route add default via {node.router_ip} dev eth0",
    ]


def test_pods_resolve_through_kube_dns_with_search_domains(lab_plan):
    plan = planning.with_control_plane(lab_plan)
    client = next(p for p in plan.pods if p.name == "client-pod")
    resolv = hosts.pod_resolv(plan, client)
    assert resolv == (
        "search native.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    )
    assert hosts.pod_hosts(client).endswith(f"{client.ip}\tclient-pod\n")  # the kubelet's hosts file: no services
    z = hosts.zone(plan)
    web = plan.service("native", "webpod")
    assert z["a"]["webpod.native.svc.cluster.local."] == [web.cluster_ip]
    assert z["a"]["kubernetes.default.svc.cluster.local."] == ["10.96.0.1"]
    for b in plan.endpoints(web):
        dashed = b.ip.replace(".", "-")
        name = f"{dashed}.webpod.native.svc.cluster.local."
        assert z["a"][name] == [b.ip]
        assert name in z["ptr"][ipaddress.IPv4Address(b.ip).reverse_pointer + "."]
    assert z["upstream_a"]["kind-worker."] == plan.node("kind-worker").ip


@pytest.mark.parametrize("bad", ["", "a;b", "A", "x" * 21, "-a", "a b", "$(id)", "../x"])
def test_lab_names_are_checked(bad):
    with pytest.raises(LabError, match="lab name"):
        check_lab(bad)


def test_names_carry_the_lab():
    a, b = LabNames("a"), LabNames("a-b")
    assert a.node("kind-worker") == "lk.a.node.kind-worker"
    assert not a.owns_netns(b.node("kind-worker"))  # "a" must not claim "a-b"'s namespaces
