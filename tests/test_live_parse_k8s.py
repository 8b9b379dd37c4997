"""kubectl JSON and `ip -o link` -> NODES, PODS, SERVICES."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from labkit.live.parse_bpf import parse_endpoints
from labkit.live.parse_k8s import app_of, parse_ip_link, parse_nodes, parse_pods, parse_services
from labkit.tables import NODES, PODS, SERVICES

FIX = Path(__file__).parent / "fixtures" / "live"


def j(name: str) -> dict:
    return json.loads((FIX / "k8s" / name).read_text())


def test_nodes_with_router_ip():
    df = parse_nodes(j("nodes.json"), j("ciliumnodes.json"))
    NODES.check(df)
    assert df.to_dict("records")[1] == dict(
        name="kind-worker", role="worker", internal_ip="172.17.0.4", pod_cidr="10.244.1.0/24", router_ip="10.244.1.113"
    )
    assert df.iloc[0]["role"] == "control-plane"
    no_cilium = parse_nodes(j("nodes.json"))
    NODES.check(no_cilium)
    assert no_cilium["router_ip"].isna().all()


def test_ip_link():
    links = parse_ip_link((FIX / "node" / "ip-link.kind-worker.txt").read_text())
    assert [link["name"] for link in links] == [
        "lo",
        "eth0",
        "cilium_net",
        "cilium_host",
        "lxc49626b6ed5ee",
        "lxc93b551d233cf",
    ]
    assert links[4] == dict(ifindex=9, name="lxc49626b6ed5ee", mac="a6:25:b4:a1:25:0a")


def test_pods_joined_with_endpoints_and_links():
    eps = parse_endpoints((FIX / "cilium" / "endpoint-list.blog-1.17.6.txt").read_text(), "kind-worker")
    links = {"kind-worker": parse_ip_link((FIX / "node" / "ip-link.kind-worker.txt").read_text())}
    df = parse_pods(j("pods.json"), eps, links)
    PODS.check(df)
    assert list(df["name"]) == ["curl-pod", "client-pod", "webpod-697b545f57-tdbfg", "webpod-697b545f57-8nx2m"]
    client = df[df.name == "client-pod"].iloc[0].to_dict()
    assert client == dict(
        namespace="native",
        name="client-pod",
        node="kind-worker",
        ip="10.244.1.71",
        image="nicolaka/netshoot",
        app="idle",
        lxc="lxc93b551d233cf",
        lxc_ifindex=11,
        pod_mac="DA:15:43:39:36:5E",
        lxc_mac="32:17:55:23:39:08",
        endpoint_id=2543,
        identity=30542,
        labels="app=client",
    )
    web = df[df.name == "webpod-697b545f57-tdbfg"].iloc[0]
    assert (web.app, web.lxc, web.endpoint_id, web.labels) == (
        "whoami",
        "lxc49626b6ed5ee",
        359,
        "app=webpod,pod-template-hash=697b545f57",
    )
    other = df[df.name == "curl-pod"].iloc[0]  # its node's map was not given
    assert pd.isna(other.lxc) and pd.isna(other.endpoint_id)
    system = parse_pods(j("pods.json"), namespaces=["kube-system"])
    assert list(system["name"]) == ["coredns-674b8bbfcf-7kq2x"]  # host-network cilium pods left out


def test_services_with_ready_backends():
    df = parse_services(j("services.json"), j("endpointslices.json"))
    SERVICES.check(df)
    assert list(df["name"]) == ["kubernetes", "webpod"]  # system namespace and headless left out
    web = df[df.name == "webpod"].iloc[0].to_dict()
    assert web == dict(
        namespace="native",
        name="webpod",
        type="ClusterIP",
        cluster_ip="10.96.92.233",
        port=80,
        target_port=80,
        protocol="TCP",
        backends="10.244.1.182:80,10.244.3.135:80",
    )
    assert df.iloc[0]["backends"] == "172.17.0.3:6443" and df.iloc[0]["target_port"] == 6443
    dns = parse_services(j("services.json"), j("endpointslices.json"), namespaces=["kube-system"])
    assert list(dns["protocol"]) == ["UDP", "TCP"] and (dns["backends"] == "").all()


def test_app_of_images():
    assert app_of("traefik/whoami") == "whoami"
    assert app_of("docker.io/nicolaka/netshoot:v0.13@sha256:abc") == "idle"
    assert app_of("registry.k8s.io/coredns/coredns:v1.12.0") == ""
