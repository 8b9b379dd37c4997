"""What real Cilium 1.17 does with the blog's values, on a real lab of *another* cluster
(tests/data/cluster-other: cluster "lab", pods 10.32.0.0/16, services 10.112.0.0/16,
namespace "shop"), so nothing here holds only for the blog's names and addresses (root).
Each test names the Cilium behaviour it checks (docs/fidelity.md has the sources)."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers
from labkit.lab import Lab

from .dp_helpers import py
from .lab_fixtures import lab_name

pytestmark = pytest.mark.root
OTHER = Path(__file__).parent / "data" / "cluster-other"
CONNECT = r"""
import errno, socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""


@pytest.fixture(scope="module")
def lab():
    lab = Lab(EmbeddedBackend(lab_name("fid"), cluster_dir=OTHER))
    try:
        lab.up()
        lab.apply(OTHER / "manifests")
        yield lab
    finally:
        lab.down()
        assert leftovers(LabNames(lab.name)) == []


@pytest.fixture(scope="module")
def cast(lab):
    pods, svcs = lab.pods.set_index("name"), lab.services.set_index("name")
    api = pods[pods.app == "whoami"]
    return {
        "tester": pods.loc["tester"],
        "api": svcs.loc["api"],
        "nobody": svcs.loc["nobody"],
        "backends": set(api.ip),
        "node": "lab-worker",
        "nodes": lab.nodes.set_index("name"),
    }


def cli(lab, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", *args, "--lab", lab.name], capture_output=True, text=True, **kw
    )


# ------------------------------------------------------------------ 1. no invented drop
def test_a_clusterip_no_service_serves_is_world_traffic_masqueraded_and_unanswered(lab, cast):
    vip, node_ip = cast["api"].cluster_ip, cast["nodes"].loc["lab-worker", "internal_ip"]
    t0 = time.time()
    got = lab.run_captured(
        "tester", ["ping", "-c", "2", "-W", "1", "-e", "4321", vip], ["tester:eth0", f"{cast['node']}:eth0"]
    )
    assert got.result.returncode != 0  # nobody answers a ping to a ClusterIP
    pk = got.packets
    wire = pk[(pk.point == f"{cast['node']}:eth0") & (pk.proto == "ICMP")]
    assert len(wire) >= 2 and set(wire.src_ip) == {node_ip} and set(wire.dst_ip) == {vip}  # masqueraded, as world
    r = lab.pod("tester").run(["curl", "-s", "--max-time", "2", f"http://{vip}:81"])
    assert r.returncode == 28  # a port the service does not have: a timeout, not a refusal
    time.sleep(0.3)
    ev = lab.monitor(cast["node"], seconds=time.time() - t0 + 0.5)
    assert not (ev.type == "drop").any()  # Cilium 1.17 drops nothing here (no DROP_IS_CLUSTER_IP at pod egress)
    nat = lab.maps(cast["node"]).nat()
    icmp = nat[(nat.proto == "ICMP") & (nat.direction == "OUT") & (nat.dst_ip == vip)]
    # __snat_try_keep_port: an echo id below 32768 is remapped into 32768-65535
    assert len(icmp) == 1 and icmp.iloc[0].src_port == 4321 and 32768 <= icmp.iloc[0].xlate_port <= 65535


def test_a_service_without_backends_fails_connect_with_ehostunreach(lab, cast):
    out = lab.pod("tester").sh(py(CONNECT, cast["nobody"].cluster_ip, "80")).strip()
    assert out == errno.errorcode[errno.EHOSTUNREACH]


# ------------------------------------------------------------------ 2. socket LB evidence
def test_socket_lb_leaves_trace_sock_events_and_flows(lab, cast):
    vip = cast["api"].cluster_ip
    t0 = time.time()
    r = lab.pod("tester").run(["curl", "-s", "--max-time", "5", "http://api:8080"])
    assert r.returncode == 0 and r.stdout.startswith("Hostname: api-")
    time.sleep(0.5)
    lines = list(lab.backend.monitor_lines(cast["node"], seconds=time.time() - t0 + 0.5, verbose=True))
    pre = [ln for ln in lines if "[pre-xlate-fwd] cgroup_id: " in ln and f"dst [{vip}]:8080 tcp " in ln]
    post = [ln for ln in lines if "[post-xlate-fwd]" in ln and any(f"dst [{b}]:80 tcp" in ln for b in cast["backends"])]
    assert pre and post and pre[0].startswith("CPU ")
    assert not any("xlate" in ln for ln in lab.backend.monitor_lines(cast["node"], seconds=30))  # only with -v
    fl = lab.flows(cast["node"], seconds=time.time() - t0 + 0.5)
    sock = fl[fl.type.isin(["pre-xlate-fwd", "post-xlate-fwd"]) & (fl.src_pod == "shop/tester")]
    assert {"pre-xlate-fwd": "TRACED", "post-xlate-fwd": "TRANSLATED"}.items() <= set(zip(sock.type, sock.verdict))
    assert vip in set(sock[sock.type == "pre-xlate-fwd"].dst_ip)
    out = cli(lab, "observe", "--node", cast["node"], "--all").stdout
    assert "shop/tester (ID:" in out and "<> shop/api:8080 (world) pre-xlate-fwd TRACED (TCP)" in out


# ------------------------------------------------------------------ 3. the control plane
def test_control_plane_services_like_a_kind_cluster(lab, cast):
    cp = cast["nodes"].loc["lab-control-plane", "internal_ip"]
    svcs = lab.services
    k = svcs[svcs.name == "kubernetes"].iloc[0]
    assert (k.namespace, k.cluster_ip, k.port, k.backends) == ("default", "10.112.0.1", 443, f"{cp}:6443")
    dns = svcs[svcs.name == "kube-dns"]
    assert set(dns.cluster_ip) == {"10.112.0.10"} and set(zip(dns.port, dns.protocol)) >= {(53, "UDP"), (53, "TCP")}
    assert {"hubble-peer", "hubble-relay", "hubble-ui"} <= set(svcs.name)
    text = cli(lab, "service", "list", "--node", cast["node"]).stdout
    assert f"1 => {cp}:6443/TCP (active)" in text.splitlines()[1]
    ipc = lab.maps(cast["node"]).ipcache().set_index("prefix")
    assert ipc.loc[f"{cp}/32", "identity"] == 7  # kube-apiserver: the remote node running the API server
    assert ipc.loc[f"{cast['nodes'].loc['lab-worker', 'internal_ip']}/32", "identity"] == 1
    assert set(ipc["flags"]) == {"<none>"}


def test_host_traffic_to_the_api_server_is_tracked_by_bpf_masquerade(lab, cast):
    maps = lab.maps(cast["node"])
    maps.flush("nat")
    deadline = time.time() + 8
    while time.time() < deadline:
        nat = maps.nat()
        mine = nat[(nat.dst_port == 6443) | (nat.src_port == 6443)]
        if len(mine) >= 2:
            break
        time.sleep(0.5)
    assert len(mine) >= 2 and set(mine.needs_ct) == {1} and set(mine.direction) == {"OUT", "IN"}
    node_ip = cast["nodes"].loc["lab-worker", "internal_ip"]
    out = mine[mine.direction == "OUT"].iloc[0]
    assert out.src_ip == node_ip and out.xlate_ip == node_ip and out.xlate_port == out.src_port  # address kept
    text = maps.text("nat")
    assert f"TCP OUT {node_ip}:{out.src_port} -> " in text and "NeedsCT=1" in text
    ct = maps.ct()
    assert ((ct.src_ip == node_ip) & (ct.dst_port == 6443) & (ct.src_identity == 0)).any()  # CT of host traffic


# ------------------------------------------------------------------ 4. DNS
def test_names_resolve_through_kube_dns(lab, cast):
    t = lab.pod("tester")
    assert t.sh(["cat", "/etc/resolv.conf"]) == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.112.0.10\noptions ndots:5\n"
    )
    assert t.sh(["getent", "hosts", "api"]).split()[0] == cast["api"].cluster_ip
    assert t.sh(["dig", "+short", "kubernetes.default.svc.cluster.local"]).strip() == "10.112.0.1"
    b = sorted(cast["backends"])[0]
    assert t.sh(["dig", "+short", "-x", b]).strip() == f"{b.replace('.', '-')}.api.shop.svc.cluster.local."
    node = lab.node("lab-worker2").sh(["nslookup", "lab-control-plane"])
    assert cast["nodes"].loc["lab-control-plane", "internal_ip"] in node
    got = lab.run_captured("tester", ["curl", "-s", "--max-time", "5", "http://api:8080"], ["tester:eth0"])
    dns = got.packets[(got.packets.proto == "UDP") & (got.packets.dst_port == 53)]
    assert len(dns) >= 1 and "10.112.0.10" not in set(dns.dst_ip)  # socket LB: sendmsg went to a CoreDNS pod
    kube_dns = set(lab.pods[lab.pods.app == "coredns"].ip)
    assert set(dns.dst_ip) <= kube_dns


# ------------------------------------------------------------------ 5. counters and views
def test_metrics_name_reasons_as_cilium(lab, cast):
    lab.pod("tester").sh(["curl", "-s", "--max-time", "5", "-o", "/dev/null", "http://api:8080"])
    m = lab.maps(cast["node"]).metrics()
    assert {"Success", "Interface"} <= set(m.reason) and "Forwarded" not in set(m.reason)
    text = lab.maps(cast["node"]).text("metrics").splitlines()
    rows = [ln.split()[:2] for ln in text[1:]]
    assert rows == sorted(rows)


def test_hubble_json_fields_as_hubble_sets_them(lab, cast):
    pods = lab.pods.set_index("name")
    same = pods[(pods.app == "whoami") & (pods.node == cast["node"])]
    t0 = time.time()
    lab.pod("tester").sh(["curl", "-s", "--max-time", "5", "-o", "/dev/null", f"http://{same.iloc[0].ip}"])
    time.sleep(0.4)
    docs = [
        json.loads(x)
        for x in lab.backend.observe_lines(cast["node"], last=None, seconds=time.time() - t0 + 1, output="json")
    ]
    to_ep = [d["flow"] for d in docs if d["flow"].get("trace_observation_point") == "TO_ENDPOINT"]
    assert to_ep and all(f["traffic_direction"] == "EGRESS" for f in to_ep)  # orig-ip set: EGRESS (threefour)
    assert all(len(f["uuid"]) == 36 for f in to_ep)
    for f in to_ep:  # protojson: 0, 3, 6 or 9 fraction digits, never a needless "000"
        frac = f["time"].removesuffix("Z").partition(".")[2]
        assert len(frac) in (0, 3, 6, 9) and not (len(frac) > 3 and frac.endswith("000"))


# ------------------------------------------------------------------ 6. the node shell
def test_node_shell_speaks_cilium_and_hubble(lab, cast):
    script = (
        "hostname\ncilium status | head -1\ncilium version\ncilium endpoint list | head -2\n"
        "cilium identity list | head -2\ncilium service list | head -2\ncilium nope\nhubble observe --last 1\nexit\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "shell", cast["node"], "--lab", lab.name],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = r.stdout
    assert out.splitlines()[0] == cast["node"]
    assert "KVStore:                 Disabled" in out and "Client: 1.17.6 " in out
    assert "ENDPOINT   POLICY (ingress)   POLICY (egress)   IDENTITY" in out and "ID      LABELS" in out
    assert "ID   Frontend" in out
    assert 'Error: unknown command "nope" for "cilium"' in r.stderr
    assert lab.pod("tester").sh(["hostname"]).strip() == "tester"


@contextlib.contextmanager
def _spoofed(pod, ip: str):
    pod.sh(["ip", "addr", "add", f"{ip}/32", "dev", "eth0"])
    try:
        yield
    finally:
        pod.sh(["ip", "addr", "del", f"{ip}/32", "dev", "eth0"])


def test_a_real_drop_is_a_hubble_drop_flow(lab, cast):
    tester = lab.pod("tester")
    spoof = cast["tester"].ip.rsplit(".", 1)[0] + ".250"
    t0 = time.time()
    with _spoofed(tester, spoof):
        tester.run(["ping", "-c", "1", "-W", "1", "-I", spoof, sorted(cast["backends"])[0]])
    time.sleep(0.3)
    fl = lab.flows(cast["node"], seconds=time.time() - t0 + 0.5)
    drops = fl[fl.verdict == "DROPPED"]
    assert len(drops) and set(drops.type) == {"Invalid source ip"} and set(drops.drop_reason) == {"Invalid source ip"}
    line = next(x for x in cli(lab, "observe", "--node", cast["node"], "--all").stdout.splitlines() if "DROPPED" in x)
    assert " <> " in line and "Invalid source ip DROPPED (ICMPv4 EchoRequest)" in line
