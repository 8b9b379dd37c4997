"""Placement and addressing: Kubernetes-like scheduling, deterministic IPs and ids."""

from __future__ import annotations

import ipaddress

import pytest

from labkit import plan as planning
from labkit import spec
from labkit.errors import LabError
from labkit.spec import Manifests, PodSpec


@pytest.fixture
def lab_plan():
    p, notes = planning.extend(
        planning.initial(spec.load_cluster()), spec.load_manifests([spec.CLUSTER_DIR / "manifests"])
    )
    return p


def test_nodes_get_kind_ips_and_pod_cidrs(lab_plan):
    got = [(n.name, n.ip, n.pod_cidr, n.mac) for n in lab_plan.nodes]
    assert got == [
        ("kind-control-plane", "172.18.0.2", "10.244.0.0/24", "02:42:ac:12:00:02"),
        ("kind-worker", "172.18.0.3", "10.244.1.0/24", "02:42:ac:12:00:03"),
        ("kind-worker2", "172.18.0.4", "10.244.2.0/24", "02:42:ac:12:00:04"),
    ]
    for n in lab_plan.nodes:
        assert ipaddress.IPv4Address(n.router_ip) in ipaddress.IPv4Network(n.pod_cidr)


def test_scheduling_like_the_blog(lab_plan):
    by_name = {p.name: p for p in lab_plan.pods}
    assert by_name["curl-pod"].node == "kind-control-plane"
    assert by_name["client-pod"].node == "kind-worker"
    web = [p for p in lab_plan.pods if p.owner == "webpod"]
    # the control plane's NoSchedule taint keeps replicas off it; they spread over the workers
    assert sorted(p.node for p in web) == ["kind-worker", "kind-worker2"]
    for p in lab_plan.pods:
        assert ipaddress.IPv4Address(p.ip) in ipaddress.IPv4Network(lab_plan.node(p.node).pod_cidr)
        assert p.lxc.startswith("lxc") and len(p.lxc) == 15 and int(p.lxc[3:], 16) >= 0
    assert len({p.ip for p in lab_plan.pods} | {n.router_ip for n in lab_plan.nodes}) == len(lab_plan.pods) + 3
    # one identity per label set: both webpods share it, other pods differ
    assert web[0].identity == web[1].identity != by_name["client-pod"].identity
    assert all(256 <= p.identity <= 65535 for p in lab_plan.pods)
    (svc,) = lab_plan.services
    assert ipaddress.IPv4Address(svc.cluster_ip) in ipaddress.IPv4Network("10.96.0.0/12")
    assert {p.name for p in lab_plan.backends(svc)} == {p.name for p in web}


def test_plan_is_deterministic_and_reapply_is_a_no_op(lab_plan):
    again, _ = planning.extend(
        planning.initial(spec.load_cluster()), spec.load_manifests([spec.CLUSTER_DIR / "manifests"])
    )
    assert again.to_dict() == lab_plan.to_dict()
    same, notes = planning.extend(lab_plan, spec.load_manifests([spec.CLUSTER_DIR / "manifests"]))
    assert same.to_dict() == lab_plan.to_dict()
    assert all(n.endswith("unchanged") for n in notes)


def _pod(name="p", **kw) -> PodSpec:
    base = dict(namespace="native", name=name, labels=(("app", "x"),), image="nicolaka/netshoot", app="idle")
    base.update(kw)
    return PodSpec(**base)


def test_unknown_node_and_changed_spec_are_errors(lab_plan):
    with pytest.raises(LabError, match="unknown node 'kind-worker9'"):
        planning.extend(lab_plan, Manifests(pods=[_pod(node_name="kind-worker9")]))
    with pytest.raises(LabError, match="already exists with a different spec"):
        planning.extend(lab_plan, Manifests(pods=[_pod("client-pod", node_name="kind-worker2")]))
    with pytest.raises(LabError, match="namespace 'nowhere' does not exist"):
        planning.extend(lab_plan, Manifests(pods=[_pod(namespace="nowhere")]))


def test_anti_affinity_that_matches_filters_nodes(lab_plan):
    term = spec.AntiAffinityTerm((("app", "client"),), ())
    p, _ = planning.extend(lab_plan, Manifests(pods=[_pod("q", anti_affinity=(term,))]))
    assert next(x for x in p.pods if x.name == "q").node == "kind-worker2"  # kind-worker has client-pod
    blocked = spec.AntiAffinityTerm((), (("app", "Exists", ()),))
    with pytest.raises(LabError, match="cannot be scheduled"):
        planning.extend(lab_plan, Manifests(pods=[_pod("r", anti_affinity=(blocked,))]))


def test_a_full_pod_cidr_is_a_clear_error(lab_plan):
    many = _pod("big", owner="big", replicas=600)
    with pytest.raises(LabError, match="no free address left in 10.244.[12].0/24"):
        planning.extend(lab_plan, Manifests(pods=[many]))
