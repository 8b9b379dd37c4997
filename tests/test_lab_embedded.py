"""A real embedded lab (root): the blog's cluster with kernel routing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from labkit.errors import LabError

from .lab_fixtures import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab():
    with running_lab("it", datapath="kernel") as lab:
        yield lab


def _curl(lab, src: str, url: str) -> str:
    r = lab.pod(src).run(["curl", "-s", "--max-time", "5", url])
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_tables_describe_the_kernel(lab):
    nodes, pods = lab.nodes, lab.pods
    assert list(nodes.name) == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert len(pods[pods.namespace == "native"]) == 4 and set(pods.namespace) == {"native", "kube-system"}
    for p in pods.itertuples():
        link = json.loads(lab.node(p.node).sh(["ip", "-j", "link", "show", p.lxc]))[0]
        assert (link["ifindex"], link["address"]) == (p.lxc_ifindex, p.lxc_mac)
        eth0 = json.loads(lab.pod(p.name).sh(["ip", "-j", "addr", "show", "eth0"]))[0]
        assert eth0["address"] == p.pod_mac
        assert [a["local"] for a in eth0["addr_info"]] == [p.ip]
        routes = lab.pod(p.name).sh(["ip", "route"])
        router = nodes.set_index("name").loc[p.node, "router_ip"]
        assert f"default via {router} dev eth0" in routes
        assert f"{p.ip} dev {p.lxc} scope link" in lab.node(p.node).sh(["ip", "route"])


def test_nodes_have_native_routes(lab):
    routes = lab.node("kind-worker").sh(["ip", "route"])
    assert "10.244.0.0/24 via 172.18.0.2 dev eth0" in routes
    assert "10.244.2.0/24 via 172.18.0.4 dev eth0" in routes
    eth0 = json.loads(lab.node("kind-worker").sh(["ip", "-j", "addr", "show", "eth0"]))[0]
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"]] == [("172.18.0.3", 16)]
    assert eth0["address"] == "02:42:ac:12:00:03"
    assert "10.244.1.0/24" not in routes


def test_same_node_pod_to_pod(lab):
    pods = lab.pods.set_index("name")
    web = pods[(pods.app == "whoami") & (pods.node == "kind-worker")]
    out = _curl(lab, "client-pod", f"http://{web.ip.iloc[0]}")
    assert out.startswith(f"Hostname: {web.index[0]}\n")
    assert f"RemoteAddr: {pods.loc['client-pod', 'ip']}:" in out
    assert "GET / HTTP/1.1" in out


def test_client_reaches_both_webpods_and_across_nodes(lab):
    pods = lab.pods
    seen = set()
    for p in pods[pods.app == "whoami"].itertuples():
        out = _curl(lab, "client-pod", f"http://{p.ip}")
        seen.add(out.splitlines()[0])
    assert seen == {f"Hostname: {n}" for n in pods[pods.app == "whoami"].name}
    client_ip = pods.set_index("name").loc["client-pod", "ip"]
    r = lab.pod("curl-pod").run(["ping", "-c", "1", "-W", "2", client_ip])
    assert r.returncode == 0 and "1 received" in r.stdout


def test_names_resolve_in_pods(lab):
    svc = lab.services.set_index("name").loc["webpod"]
    for name in ("webpod", "webpod.native.svc.cluster.local"):
        assert lab.pod("client-pod").sh(["getent", "hosts", name]).split()[0] == svc.cluster_ip
    web_ip = svc.backends.split(",")[0].split(":")[0]
    assert (
        lab.pod("client-pod").sh(["getent", "hosts", web_ip]).split()[1]
        == f"{web_ip.replace('.', '-')}.webpod.native.svc.cluster.local"
    )


def test_workloads_run_in_their_pod_and_node_cgroup(lab):
    from labkit.embedded import processes, state
    from labkit.embedded.controlplane import CGROUP, CONTROL_PLANE_DAEMONS

    st = state.load(lab.backend.names)
    control = {d.name: d.pid for d in processes.daemons(lab.backend.names) if d.name in CONTROL_PLANE_DAEMONS}
    assert sorted(control) == sorted(CONTROL_PLANE_DAEMONS)
    for pid in control.values():  # the API server and CoreDNS stand-ins: a cgroup of their own
        assert f"/labkit/{lab.name}/{CGROUP}" in open(f"/proc/{pid}/cgroup").read()
    workloads = {d.name: d.pid for d in processes.daemons(lab.backend.names) if d.name.startswith("pod.")}
    pods = [p for p in st.plan.pods if p.app == "whoami"]
    assert sorted(workloads) == sorted(processes.pod_daemon_name(p) for p in pods)
    for pod in pods:
        pid = workloads[processes.pod_daemon_name(pod)]
        cg = open(f"/proc/{pid}/cgroup").read()
        assert f"/labkit/{lab.name}/{pod.node}" in cg
        ns_ino = __import__("os").stat(f"/proc/{pid}/ns/net").st_ino
        assert ns_ino == __import__("os").stat(f"/run/netns/{lab.backend.names.pod(pod.namespace, pod.name)}").st_ino


def test_exec_exit_code_passes_through_cli(lab):
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "exec", "--lab", lab.name, "client-pod", "--", "sh", "-c", "exit 7"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 7
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "status", "--lab", lab.name, "-o", "json"], capture_output=True, text=True
    )
    assert r.returncode == 0 and len(json.loads(r.stdout)["pods"]) == len(lab.pods)


def test_bad_apply_changes_nothing(lab, tmp_path):
    before = (lab.pods.copy(), subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: native}\n"
        "spec: {nodeName: kind-worker7, containers: [{name: c, image: nicolaka/netshoot}]}\n"
    )
    with pytest.raises(LabError, match="unknown node 'kind-worker7'"):
        lab.apply(bad)
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: y, namespace: native}\n"
        "spec: {containers: [{name: c, image: nginx}]}\n"
    )
    with pytest.raises(LabError, match="cannot run"):
        lab.apply(bad)
    assert lab.pods.equals(before[0])
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before[1]


def test_reapply_is_unchanged_and_new_pods_join(lab, tmp_path):
    assert all(line.endswith("unchanged") for line in lab.apply())
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: native, labels: {app: extra}}\n"
        "spec: {nodeName: kind-worker2, containers: [{name: c, image: nicolaka/netshoot}]}\n"
    )
    assert lab.apply(extra) == ["pod/extra created"]
    client_ip = lab.pods.set_index("name").loc["client-pod", "ip"]
    assert lab.pod("extra").run(["ping", "-c", "1", "-W", "2", client_ip]).returncode == 0
    with pytest.raises(LabError, match="unknown node or pod 'nope'"):
        lab.pod("nope")
