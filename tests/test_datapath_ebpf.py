"""The eBPF datapath on a real lab (root), with the blog's helm values (socket LB on):
each test is one observation of the blog (or of real Cilium where the blog is silent)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import tables
from labkit.errors import LabError

from .dp_helpers import ARP_PROBE, HTTP_MANY, PEERNAME, UDP_ECHO, py
from .lab_fixtures import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab():
    with running_lab("dpe") as lab:  # datapath ebpf is the default
        yield lab


@pytest.fixture(scope="module")
def pods(lab):
    p = lab.pods.set_index("name")
    web = p[p.app == "whoami"]
    return {
        "client": p.loc["client-pod"],
        "web_same": web[web.node == "kind-worker"].iloc[0],
        "web_same_name": web[web.node == "kind-worker"].index[0],
        "web_remote": web[web.node == "kind-worker2"].iloc[0],
        "web_remote_name": web[web.node == "kind-worker2"].index[0],
        "all": p,
    }


def curl(lab, url: str, src: str = "client-pod") -> str:
    r = lab.pod(src).run(["curl", "-s", "--max-time", "5", url])
    assert r.returncode == 0, (url, r.stderr)
    return r.stdout


def tcp80(df, *ips):
    d = df[(df.proto == "TCP") & ((df.src_port == 80) | (df.dst_port == 80))]
    if ips:
        d = d[d.src_ip.isin(ips) | d.dst_ip.isin(ips)]
    return d


# ------------------------------------------------------------------ a. ARP responder
def test_arp_for_router_ip_is_answered_with_the_lxc_mac(lab, pods):
    c = pods["client"]
    router = lab.nodes.set_index("name").loc["kind-worker", "router_ip"]
    lab.pod("client-pod").sh(["ip", "neigh", "flush", "dev", "eth0"])
    lab.pod("client-pod").sh(["ping", "-c", "1", "-W", "2", router])
    neigh = json.loads(lab.pod("client-pod").sh(["ip", "-j", "neigh", "show", router]))
    assert neigh and neigh[0]["lladdr"] == c.lxc_mac
    # An address nobody owns: the kernel would stay silent, the datapath still answers
    # (cilium's arp_respond answers every request with the lxc MAC).
    r = lab.pod("client-pod").run(py(ARP_PROBE, "eth0", c.ip, "10.244.1.254"))
    assert r.returncode == 0 and r.stdout.strip() == c.lxc_mac


# ------------------------------------------------------------------ b. redirect_peer, one-sided lxc
def test_same_node_delivery_with_redirect_peer(lab, pods):
    c, w = pods["client"], pods["web_same"]
    points = [f"kind-worker:{c.lxc}", f"kind-worker:{w.lxc}", "client-pod:eth0", "kind-worker:eth0"]
    got = lab.run_captured("client-pod", ["curl", "-s", "--max-time", "5", f"http://{w.ip}"], points)
    assert got.result.returncode == 0 and got.result.stdout.startswith(f"Hostname: {pods['web_same_name']}")
    pk = tcp80(got.packets, c.ip, w.ip)
    at = {p: pk[pk.point == p] for p in points}
    client_lxc, web_lxc = at[points[0]], at[points[1]]
    assert len(client_lxc) >= 5 and set(client_lxc.src_ip) == {c.ip}  # only client -> server
    assert len(web_lxc) >= 4 and set(web_lxc.src_ip) == {w.ip}  # only server -> client
    assert set(at["client-pod:eth0"].src_ip) == {c.ip, w.ip}  # both directions
    assert at["kind-worker:eth0"].empty  # none on the node's eth0


# ------------------------------------------------------------------ c. endpoint map
def test_endpoint_map_matches_the_interfaces(lab, pods):
    ep = lab.maps("kind-worker").endpoints()
    tables.ENDPOINTS.check(ep)
    nodes = lab.nodes.set_index("name")
    hosts = set(ep[ep.is_host].ip)
    assert hosts == {nodes.loc["kind-worker", "router_ip"], nodes.loc["kind-worker", "internal_ip"]}
    rows = ep[~ep.is_host].set_index("ip")
    mine = pods["all"][pods["all"].node == "kind-worker"]
    assert set(rows.index) == set(mine.ip)
    for name, p in mine.iterrows():
        r = rows.loc[p.ip]
        link = json.loads(lab.node("kind-worker").sh(["ip", "-j", "link", "show", p.lxc]))[0]
        eth0 = json.loads(lab.pod(name).sh(["ip", "-j", "link", "show", "eth0"]))[0]
        assert r.ifindex == link["ifindex"]
        assert r.node_mac.lower() == link["address"] and r.mac.lower() == eth0["address"]
        assert (r.endpoint_id, r.identity) == (p.endpoint_id, p.identity)


# ------------------------------------------------------------------ d. socket LB
def test_socket_lb_clusterip_never_on_the_wire(lab, pods):
    svc = lab.services.set_index("name").loc["webpod"]
    c = pods["client"]
    points = ["client-pod:eth0", "kind-worker:*", "kind-worker2:eth0"]
    for url in ("http://webpod", f"http://{svc.cluster_ip}"):
        got = lab.run_captured("client-pod", ["curl", "-s", "--max-time", "5", url], points)
        assert got.result.returncode == 0 and got.result.stdout.startswith("Hostname: webpod-")
        pk = got.packets
        assert len(tcp80(pk, c.ip)) > 0
        assert svc.cluster_ip not in set(pk.src_ip) | set(pk.dst_ip)
        syn = tcp80(pk[pk.point == "client-pod:eth0"], c.ip)
        assert set(syn.iloc[:1].dst_ip) <= {pods["web_same"].ip, pods["web_remote"].ip}


def test_socket_lb_getpeername_shows_the_clusterip(lab):
    svc = lab.services.set_index("name").loc["webpod"]
    out = lab.pod("client-pod").sh(py(PEERNAME, svc.cluster_ip, "80"))
    assert out.strip() == f"{svc.cluster_ip}:80"


def test_socket_lb_uses_both_backends(lab, pods):
    svc = lab.services.set_index("name").loc["webpod"]
    out = lab.pod("client-pod").sh(py(HTTP_MANY, f"http://{svc.cluster_ip}", "30"))
    seen = {line.split(" ", 1)[1] for line in out.splitlines()}
    assert seen == {f"Hostname: {pods['web_same_name']}", f"Hostname: {pods['web_remote_name']}"}


def test_socket_lb_ct_both_directions_revnat_zero_no_nat(lab, pods):
    svc = lab.services.set_index("name").loc["webpod"]
    c, w = pods["client"], pods["web_same"]
    for node in ("kind-worker", "kind-worker2"):
        lab.maps(node).flush("ct")
    lab.maps("kind-worker").flush("nat")
    for _ in range(6):  # until the same-node backend was chosen
        curl(lab, f"http://{svc.cluster_ip}")
        ct = lab.maps("kind-worker").ct()
        if ((ct.direction == "IN") & (ct.dst_ip == w.ip)).any():
            break
    tables.CT.check(ct)
    conv = ct[(ct.src_ip == c.ip) & (ct.dst_ip == w.ip) & (ct.dst_port == 80)]
    assert {"OUT", "IN"} <= set(conv.direction)
    assert (conv.rev_nat == 0).all()
    assert not (ct.direction == "SVC").any() and svc.cluster_ip not in set(ct.dst_ip)
    nat = lab.maps("kind-worker").nat()
    assert not (nat.src_ip.isin([c.ip, svc.cluster_ip]) | nat.dst_ip.isin([w.ip, svc.cluster_ip])).any()


def test_socket_lb_udp_service(lab):
    lab.apply(str(Path(__file__).parent / "data" / "webpod-udp.yaml"))
    svc = lab.services.set_index("name").loc["webpod-udp"]
    out = lab.pod("client-pod").sh(py(UDP_ECHO, svc.cluster_ip, "5353"))
    addr, first = out.splitlines()[:2]
    assert addr == f"{svc.cluster_ip}:5353"  # recvmsg shows the ClusterIP back
    assert first.startswith("Hostname: webpod-")


# ------------------------------------------------------------------ f. cross-node and masquerade
def test_cross_node_keeps_the_pod_ip(lab, pods):
    c, r = pods["client"], pods["web_remote"]
    got = lab.run_captured(
        "client-pod",
        ["curl", "-s", "--max-time", "5", f"http://{r.ip}"],
        ["kind-worker:eth0", "kind-worker2:eth0", f"kind-worker2:{r.lxc}"],
    )
    assert got.result.stdout.startswith(f"Hostname: {pods['web_remote_name']}")
    assert f"RemoteAddr: {c.ip}:" in got.result.stdout
    pk = tcp80(got.packets)
    at2 = pk[pk.point == "kind-worker2:eth0"]
    assert len(at2) > 0 and set(at2.src_ip) == {c.ip, r.ip}  # no masquerade inside the native CIDR
    lxc = pk[pk.point == f"kind-worker2:{r.lxc}"]
    assert set(lxc.src_ip) == {r.ip}  # delivered by redirect_peer


def test_outside_the_native_cidr_is_masqueraded(lab, pods):
    c = pods["client"]
    node_ip = lab.nodes.set_index("name").loc["kind-worker", "internal_ip"]
    lab.maps("kind-worker").flush("nat")
    got = lab.run_captured("client-pod", ["curl", "-s", "--max-time", "5", "http://172.18.0.100"], ["kind-worker:eth0"])
    assert got.result.returncode == 0 and f"RemoteAddr: {node_ip}:" in got.result.stdout
    pk = tcp80(got.packets)
    assert c.ip not in set(pk.src_ip) and node_ip in set(pk.src_ip)
    nat = lab.maps("kind-worker").nat()
    tables.NAT.check(nat)
    out = nat[(nat.direction == "OUT") & (nat.src_ip == c.ip) & (nat.dst_ip == "172.18.0.100")]
    inn = nat[(nat.direction == "IN") & (nat.src_ip == "172.18.0.100") & (nat.xlate_ip == c.ip)]
    assert len(out) == 1 and out.iloc[0].xlate_ip == node_ip and out.iloc[0].xlate == "SRC"
    assert len(inn) == 1 and inn.iloc[0].dst_ip == node_ip and inn.iloc[0].xlate == "DST"


# ------------------------------------------------------------------ g. monitor and flows
def test_monitor_lines_and_flows_show_both_directions(lab, pods):
    c, w = pods["client"], pods["web_same"]
    t0 = time.time()
    curl(lab, f"http://{w.ip}")
    time.sleep(0.5)
    ev = lab.monitor("kind-worker", seconds=time.time() - t0 + 0.5)
    tables.EVENTS.check(ev)
    to_web = ev[(ev.observation_point == "to-endpoint") & (ev.dst_id == w.endpoint_id)]
    to_client = ev[(ev.observation_point == "to-endpoint") & (ev.dst_id == c.endpoint_id)]
    syn = to_web[to_web.tcp_flags == "SYN"].iloc[0]
    assert syn.line == (
        f"-> endpoint {w.endpoint_id} flow {syn.flow:#x} , identity {c.identity}->{w.identity} "
        f"state new ifindex {w.lxc} orig-ip {c.ip}: {c.ip}:{syn.src_port} -> {w.ip}:80 tcp SYN"
    )
    assert "SYN, ACK" in set(to_client.tcp_flags) and set(to_client.state) >= {"reply"}
    assert "established" in set(to_web.state)
    only_to = lab.monitor("kind-worker", to=w.endpoint_id, during=lambda: curl(lab, f"http://{w.ip}"))
    assert set(only_to.dst_id) == {w.endpoint_id} and "SYN" in set(only_to.tcp_flags)
    fl = lab.flows("kind-worker", seconds=time.time() - t0 + 0.5)
    tables.FLOWS.check(fl)
    fl = fl[fl.observation_point == "TO_ENDPOINT"]
    web_key = f"native/{pods['web_same_name']}"
    fwd = fl[(fl.src_pod == "native/client-pod") & (fl.dst_pod == web_key)]
    rev = fl[(fl.src_pod == web_key) & (fl.dst_pod == "native/client-pod")]
    # pkg/hubble/parser/threefour decodeTrafficDirection: a to-endpoint trace carries orig-ip
    # ("isSNATed"), so Hubble calls both directions EGRESS; is_reply tells them apart
    assert (fwd.traffic_direction == "EGRESS").all() and not fwd.is_reply.any()
    assert (rev.traffic_direction == "EGRESS").all() and rev.is_reply.all()
    assert "TCP Flags: SYN" in set(fwd.summary) and "TCP Flags: SYN, ACK" in set(rev.summary)


def test_cli_monitor_from_and_observe_json(lab, pods):
    c, w = pods["client"], pods["web_same"]
    curl(lab, f"http://{w.ip}")
    time.sleep(0.5)
    base = [sys.executable, "-m", "labkit.cli"]
    r = subprocess.run(
        [*base, "monitor", "--lab", lab.name, "--node", "kind-worker", "--from", str(c.endpoint_id), "--last", "5"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "Listening for events" in r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(
        f"-> endpoint {c.endpoint_id} " in ln or "-> network" in ln or "-> stack" in ln for ln in lines
    )
    r = subprocess.run(
        [*base, "observe", "--lab", lab.name, "--node", "kind-worker", "-o", "json", "--last", "5"],
        capture_output=True,
        text=True,
    )
    docs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert docs and all(d["node_name"] == "kind-worker" and "flow" in d for d in docs)


def test_cli_monitor_follows_new_events(lab, pods):
    w = pods["web_same"]
    mon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labkit.cli",
            "monitor",
            "--lab",
            lab.name,
            "--node",
            "kind-worker",
            "--to",
            str(w.endpoint_id),
            "--seconds",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # the CLI follows from when it has started (imports take a while on a loaded machine)
    curl(lab, f"http://{w.ip}")
    out, err = mon.communicate(timeout=20)
    assert "Press Ctrl-C to quit" in err
    assert f"-> endpoint {w.endpoint_id} flow 0x" in out and "state new" in out and "tcp SYN" in out


# ------------------------------------------------------------------ h/i. metrics and drops
def test_metrics_count_every_hook_as_cilium(lab, pods):
    """_update_trace_metrics(): to-endpoint INGRESS Success, to-network EGRESS Success,
    from-network INGRESS Interface; local delivery an EGRESS Success of its own."""
    before = lab.maps("kind-worker").metrics()
    curl(lab, f"http://{pods['web_remote'].ip}")
    after = lab.maps("kind-worker").metrics()
    tables.METRICS.check(after)

    def count(df, reason, direction):
        m = df[(df.reason == reason) & (df.direction == direction)]
        return int(m.packets.sum())

    for reason, direction in (("Success", "EGRESS"), ("Success", "INGRESS"), ("Interface", "INGRESS")):
        assert count(after, reason, direction) > count(before, reason, direction), (reason, direction)
    assert "Forwarded" not in set(after.reason)


def test_spoofed_source_is_dropped_as_invalid_source_ip(lab, pods):
    w = pods["web_same"]
    pod = lab.pod("client-pod")
    pod.sh(["ip", "addr", "add", "10.244.1.250/32", "dev", "eth0"])
    try:
        t0 = time.time()
        r = pod.run(["ping", "-c", "1", "-W", "1", "-I", "10.244.1.250", w.ip])
        assert r.returncode != 0
        time.sleep(0.3)
        ev = lab.monitor("kind-worker", seconds=time.time() - t0 + 0.5)
        drops = ev[(ev.type == "drop") & (ev.src_ip == "10.244.1.250")]
        assert set(drops.drop_reason) == {"Invalid source ip"}
        m = lab.maps("kind-worker").metrics()
        assert ((m.reason == "Invalid source ip") & (m.direction == "EGRESS") & (m.packets > 0)).any()
    finally:
        pod.sh(["ip", "addr", "del", "10.244.1.250/32", "dev", "eth0"])


# ------------------------------------------------------------------ CLI, shells, errors
def test_cli_prints_like_cilium_and_parses_back(lab, pods):
    from labkit.live import parse_bpf

    base = [sys.executable, "-m", "labkit.cli"]
    curl(lab, f"http://{pods['web_same'].ip}")

    def run(*args):
        r = subprocess.run([*base, *args, "--lab", lab.name, "--node", "kind-worker"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ep_text = run("bpf", "endpoint", "list")
    assert ep_text.startswith("IP ADDRESS") and "(localhost)" in ep_text
    assert len(parse_bpf.parse_endpoints(ep_text, "kind-worker")) == len(lab.maps("kind-worker").endpoints())
    ct = parse_bpf.parse_ct(run("bpf", "ct", "list", "global"), "kind-worker")
    assert len(ct) >= 2 and set(ct.direction) <= {"IN", "OUT", "SVC"}
    ctj = parse_bpf.parse_ct(run("bpf", "ct", "list", "global", "-o", "json"), "kind-worker")
    assert sorted(ctj.src_port) == sorted(ct.src_port)
    lb = parse_bpf.parse_lb(run("bpf", "lb", "list"), "kind-worker")
    assert set(lb.slot) == {0, 1, 2}
    assert "ClusterIP" in run("service", "list")
    assert "identity=" in run("bpf", "ipcache", "list")
    assert run("bpf", "metrics", "list").startswith("REASON")


def test_node_shell_runs_the_blogs_cilium_commands(lab, pods):
    c = pods["client"]
    script = f"cilium bpf endpoint list\ncilium monitor --from {c.endpoint_id} --last 60 | head -3\nexit\n"
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "shell", "kind-worker", "--lab", lab.name],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "IP ADDRESS" in r.stdout and f"{c.ip}:0" in r.stdout, r.stderr[-500:]


def test_unknown_node_or_endpoint_is_one_clear_line(lab):
    base = [sys.executable, "-m", "labkit.cli"]
    for args in (["bpf", "ct", "list", "global", "--node", "nope"], ["monitor", "--to", "4095999", "--last", "1"]):
        r = subprocess.run([*base, *args, "--lab", lab.name], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("labkit: error: ")
    with pytest.raises(LabError):
        lab.maps("kind-worker9")


# ------------------------------------------------------------------ attachment
def test_programs_are_attached_with_tcx_links(lab, pods):
    """tcx (kernel >= 6.6), as Cilium attaches there: pinned links, no clsact qdisc."""
    pins = lab.backend.names.bpffs / "kind-worker"
    links = sorted(p.name for p in pins.iterdir() if p.name.startswith("link_"))
    lxcs = sorted(pods["all"][pods["all"].node == "kind-worker"].lxc)
    assert links == sorted(["link_eth0_egress", "link_eth0_ingress"] + [f"link_{x}_ingress" for x in lxcs])
    qdiscs = lab.node("kind-worker").sh(["tc", "qdisc", "show", "dev", lxcs[0]])
    assert "clsact" not in qdiscs
