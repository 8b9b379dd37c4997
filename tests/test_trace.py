"""labkit trace on real labs (root): what the kernel shows of the blog's paths, and that
the tracer is safe (nothing left attached, host traffic kept in the kernel, bounds)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit import tables
from labkit.capture import craft
from labkit.cli import main
from labkit.embedded.ebpf import bpfsys, skbfilter, tracefs, tracepath, tracer
from labkit.errors import LabError
from labkit.lesson.cast import cast
from labkit.netns import NetNS

from .lab_fixtures import running_lab

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab():
    with running_lab("trc") as lab:
        yield lab


@pytest.fixture(scope="module")
def klab():
    with running_lab("trk", datapath="kernel") as lab:
        yield lab


def call(lab, url: str, **kw):
    return lab.trace("client-pod", ["curl", "-s", "--max-time", "3", url], **kw)


def syn_of(df, client_ip: str):
    """The client's first SYN, event by event."""
    first = df[(df.tcp_flags == "[S]") & df.tuple.str.startswith(f"{client_ip}:")].packet.iloc[0]
    return df[df.packet == first]


def lanes(rows) -> list[str]:
    return list(dict.fromkeys(f"{n}:{i}" for n, i in zip(rows.netns, rows.interface)))


# ------------------------------------------------------------------ what it shows
def test_same_node_syn_skips_the_servers_lxc_and_the_nodes_routing(lab):
    c = cast(lab)
    df = call(lab, f"http://{c.web_same.ip}", points=["client-pod:eth0"], filter="tcp and port 80")
    tables.TRACE.check(df)
    syn = syn_of(df, c.client.ip)
    assert lanes(syn) == ["client-pod:eth0", f"{c.node}:{c.client.lxc}", f"{c.web_same['name']}:eth0"]
    hook = syn[(syn.event == "tc:ingress") & (syn.interface == c.client.lxc)].iloc[0]
    assert hook.hook == "cil_from_container" and "bpf_redirect_peer" in hook.verdict
    assert f"endpoint {int(c.web_same.endpoint_id)}" in hook.verdict
    assert {"net:net_dev_start_xmit", "net:netif_receive_skb"} <= set(syn.event)
    assert not ((syn.event == "fib:fib_table_lookup") & (syn.netns == c.node)).any()  # no routing decision
    assert c.web_same.lxc not in set(df[df.packet == syn.packet.iloc[0]].interface)  # nothing on the server's lxc
    assert syn.iloc[-1].free == "consumed" and syn.iloc[-1].netns == c.web_same["name"]


def test_kernel_routing_syn_passes_the_nodes_fib_and_both_lxcs(klab):
    c = cast(klab)
    syn = syn_of(call(klab, f"http://{c.web_same.ip}", filter="tcp and port 80"), c.client.ip)
    assert lanes(syn) == [
        "client-pod:eth0",
        f"{c.node}:{c.client.lxc}",
        f"{c.node}:{c.web_same.lxc}",
        f"{c.web_same['name']}:eth0",
    ]
    fib = syn[(syn.event == "fib:fib_table_lookup") & (syn.netns == c.node)]
    assert len(fib) and f"dev {c.web_same.lxc}" in fib.detail.iloc[0]
    assert set(syn.hook) == {""}  # no datapath program anywhere


def test_cross_node_fib_and_neighbour_on_the_sender_delivery_by_the_receivers_eth0(lab):
    c = cast(lab)
    lab.node(c.node).sh(["ip", "neigh", "flush", "dev", "eth0"])  # the next hop must be resolved again
    syn = syn_of(call(lab, f"http://{c.web_other.ip}", filter="tcp and port 80"), c.client.ip)
    other_ip = lab.nodes.set_index("name").loc[c.other_node, "internal_ip"]
    sent = syn[syn.netns == c.node]
    fib = sent[sent.event == "fib:fib_table_lookup"]
    assert len(fib) and f"via {other_ip}" in fib.detail.iloc[0] and "dev eth0" in fib.detail.iloc[0]
    neigh = sent[sent.event.str.startswith("neigh:")]
    assert len(neigh) and all(other_ip in d for d in neigh.detail)
    assert (
        fib.index[0] < neigh.index[0] < sent[(sent.interface == "eth0") & (sent.event == "net:net_dev_queue")].index[0]
    )
    recv = syn[(syn.netns == c.other_node) & (syn.interface == "eth0") & (syn.event == "tc:ingress")].iloc[0]
    assert recv.hook == "cil_from_netdev" and "bpf_redirect_peer" in recv.verdict
    path = lanes(syn)
    assert path.index(f"{c.node}:eth0") < path.index(f"{c.other_node}:eth0") < path.index(f"{c.web_other['name']}:eth0")
    assert f"{c.other_node}:{c.web_other.lxc}" not in path


def test_a_packet_the_datapath_drops_ends_in_a_drop_with_its_reason(lab):
    # A source address that is not the endpoint's: Cilium's from-container drops it
    # ("Invalid source ip"), as lesson 05 shows.
    c = cast(lab)
    spoof = c.client.ip.rsplit(".", 1)[0] + ".250"
    pod = lab.pod("client-pod")
    pod.sh(["ip", "addr", "add", f"{spoof}/32", "dev", "eth0"])
    try:
        rows = lab.trace(
            "client-pod", ["ping", "-c", "1", "-W", "1", "-I", spoof, c.web_same.ip], filter=f"icmp and host {spoof}"
        )
    finally:
        pod.sh(["ip", "addr", "del", f"{spoof}/32", "dev", "eth0"])
    ping = rows[rows.tuple.str.startswith(spoof)]
    hook = ping[ping.hook == "cil_from_container"].iloc[0]
    assert hook.verdict == "drop" and hook.drop_reason == "Invalid source ip"
    end = ping.iloc[-1]
    assert (end.event, end.free, end.drop_reason, end.netns) == ("skb:kfree_skb", "dropped", "TC_INGRESS", c.node)
    assert c.web_same["name"] not in set(ping.netns)  # it never reached the server


def test_a_packet_the_stack_drops_shows_the_kernels_reason(lab):
    c = cast(lab)
    syn = syn_of(call(lab, f"http://{c.web_same.ip}:81", filter="tcp and port 81"), c.client.ip)
    end = syn.iloc[-1]
    assert (end.event, end.free, end.drop_reason) == ("skb:kfree_skb", "dropped", "NO_SOCKET")
    assert end.netns == c.web_same["name"]
    assert "tcp:tcp_send_reset" in set(syn.event)


def test_points_pick_the_flow_up_and_follow_its_replies_from_their_start(lab):
    c = cast(lab)
    df = call(lab, f"http://{c.web_same.ip}", points=["client-pod:eth0"], filter="tcp and dst port 80")
    reply = df[(df.tcp_flags == "[S.]")]
    assert len(reply), "the SYN-ACK belongs to the flow: followed although it does not match the filter"
    assert reply.iloc[0].netns == c.web_same["name"] and reply.iloc[0].event == "tc:egress"


def test_the_filter_keeps_other_traffic_out(lab):
    c = cast(lab)
    assert call(lab, f"http://{c.web_same.ip}", filter="udp").empty


def test_devices_named_by_pointer_agree_with_the_tracepoints_own_names(lab):
    """Proves SKB_DEV_OFF / DEV_IFINDEX_OFF: the device the kernel struct gives each event
    is the one the tracepoint names, and has the ifindex the tc hooks saw."""
    c = cast(lab)
    b = lab.backend
    opts = tracer.Options(skbfilter.parse("tcp and port 80"), (), 10.0, 10000)
    argv = ["curl", "-s", "--max-time", "3", f"http://{c.web_other.ip}"]
    session, spaces = tracer.run(b.names, b.plan(), opts, lambda: b.run("client-pod", argv))
    events = tracepath.decode(session.records)
    by_number = {ns.number: ns for ns in spaces}
    devs = {
        int(e["dev"]): (int(e["ifindex"]), by_number[int(e["netns"])].links[int(e["ifindex"])])
        for e in events
        if e["kind"] in (1, 2)
    }
    named = [e for e in events if e["kind"] in (10, 11, 12, 13)]
    assert len(named) > 20
    for e in named:
        ifindex, name = devs[int(e["dev"])]
        assert (int(e["ifindex"]), e["name"].split(b"\0")[0].decode()) == (ifindex, name)


# ------------------------------------------------------------------ safe and bounded
def _tcx_programs(lab) -> dict[tuple[str, str, str], list[int]]:
    b = lab.backend
    out = {}
    for ns in tracer.lab_namespaces(b.names, b.plan()):
        for idx, name in ns.links.items():
            for d, a in tracer.DIRECTIONS:
                out[(ns.label, name, d)] = NetNS(ns.netns).call(lambda i=idx, a=a: bpfsys.tcx_prog_ids(i, a))
    return out


def _gone(prog_ids: list[int]) -> bool:
    for pid in prog_ids:
        try:
            os.close(bpfsys.prog_fd_by_id(pid))
            return False
        except OSError as e:
            assert e.errno == errno.ENOENT
    return True


def test_nothing_stays_attached_after_a_trace_and_tracefs_stays_unmounted(lab):
    before = _tcx_programs(lab)
    mounts = open("/proc/self/mounts").read()
    b = lab.backend
    opts = tracer.Options(None, (), 5.0, 1000)
    session, _ = tracer.run(b.names, b.plan(), opts, lambda: b.run("client-pod", ["true"]))
    assert session.prog_ids and _gone(session.prog_ids)
    assert _tcx_programs(lab) == before
    assert open("/proc/self/mounts").read().count("tracefs") == mounts.count("tracefs")


CHILD = r"""
import sys, time
from labkit.lab import connect
from labkit.embedded.ebpf import tracer, tracefs
b = connect(sys.argv[1]).backend
formats = tracefs.read_formats()
spaces = tracer.lab_namespaces(b.names, b.plan())
s = tracer.Session(spaces, tracer.templates(None, formats), formats, tracer.Options(None))
s.__enter__()
print(" ".join(map(str, s.prog_ids)), flush=True)
time.sleep(60)
"""


def test_nothing_stays_attached_after_the_tracer_is_killed(lab):
    before = _tcx_programs(lab)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, lab.name], stdout=subprocess.PIPE, text=True, env=env)
    try:
        ids = [int(x) for x in child.stdout.readline().split()]
        assert ids and not _gone(ids[:1])  # attached while it runs
        assert _tcx_programs(lab) != before
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 10
    while not _gone(ids) and time.monotonic() < deadline:
        time.sleep(0.1)  # the kernel frees programs after the fds' last reference goes
    assert _gone(ids) and _tcx_programs(lab) == before


def test_host_traffic_never_leaves_the_kernel(lab):
    """Everything is traced ("" filter): the host's own loopback traffic runs meanwhile,
    and what comes out of the ring buffer is all the lab's: no filtering in Python."""
    c = cast(lab)
    b = lab.backend
    stop = threading.Event()

    def host_traffic() -> None:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        while not stop.is_set():
            cli = socket.create_connection(srv.getsockname())
            conn, _ = srv.accept()
            cli.sendall(b"x" * 100)
            conn.recv(100)
            cli.close()
            conn.close()

    t = threading.Thread(target=host_traffic, daemon=True)
    t.start()
    try:
        opts = tracer.Options(None, (), 10.0, 100000)
        argv = ["curl", "-s", "--max-time", "3", f"http://{c.web_other.ip}"]
        session, spaces = tracer.run(b.names, b.plan(), opts, lambda: b.run("client-pod", argv))
    finally:
        stop.set()
        t.join()
    events = tracepath.decode(session.records)
    assert len(events) == session.counters["emitted"] > 0 and session.counters["lost"] == 0
    df = tables.TRACE.frame(tracepath.rows(events, spaces, session.formats, session.clock_offset_ns))
    labels = {ns.label for ns in spaces}
    assert set(df.netns) <= labels and "" not in set(df.netns)
    assert "lo" not in set(df.interface)


def test_the_event_bound_holds_in_the_kernel(lab):
    c = cast(lab)
    b = lab.backend
    opts = tracer.Options(None, (), 10.0, 5)
    session, _ = tracer.run(
        b.names, b.plan(), opts, lambda: b.run("client-pod", ["curl", "-s", f"http://{c.web_same.ip}"])
    )
    assert len(session.records) == 5 and session.counters["over"] > 0


def test_a_kernel_without_a_needed_tracepoint_is_one_line(lab, monkeypatch, tmp_path, capsys):
    import shutil

    shutil.copytree(REPO / "tests" / "fixtures" / "tracefs", tmp_path / "tfs")
    shutil.rmtree(tmp_path / "tfs" / "events" / "neigh" / "neigh_create")
    monkeypatch.setenv("LABKIT_TRACEFS", str(tmp_path / "tfs"))
    tracefs._formats.cache_clear()
    try:
        code = main(["trace", "--lab", lab.name, "-p", "client-pod:eth0", "--", "true"])
    finally:
        tracefs._formats.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no tracepoint neigh:neigh_create" in err[0]


def test_cli_prints_the_path_and_passes_the_exit_code_through(lab, capsys):
    c = cast(lab)
    code = main(
        [
            "trace",
            "--lab",
            lab.name,
            "-p",
            "client-pod:eth0",
            "-f",
            "tcp and port 81",
            "--",
            "curl",
            "-s",
            f"http://{c.web_same.ip}:81",
        ]
    )
    out = capsys.readouterr().out
    assert code == 7  # curl: connection refused
    assert "tc:ingress" in out and "cil_from_container" in out and "reason NO_SOCKET" in out
    assert main(["trace", "--lab", lab.name, "-o", "json", "-p", "client-pod:eth0", "--", "true"]) == 0


# ------------------------------------------------------------------ the filter in the kernel
def _test_run(fd: int, frame: bytes) -> None:
    run = bpfsys.prog_test_run(fd, frame)
    assert struct.unpack("=i", struct.pack("=I", run.retval))[0] == -1  # TCX_NEXT: never decides
    assert run.data == frame  # and never touches the packet


FRAMES = {
    "tcp 71:41234 -> 182:80": (6, "10.244.1.71", "10.244.1.182", 41234, 80),
    "tcp 182:80 -> 71:41234": (6, "10.244.1.182", "10.244.1.71", 80, 41234),
    "udp 71:5353 -> 3.5:53": (17, "10.244.1.71", "10.244.3.5", 5353, 53),
    "icmp 71 -> 3.5": (1, "10.244.1.71", "10.244.3.5", 0, 0),
    "tcp 172.18.0.3:8080 -> 172.18.0.4:22": (6, "172.18.0.3", "172.18.0.4", 8080, 22),
}


def _frame(proto, src, dst, sport, dport, ident) -> bytes:
    """A frame; ``ident`` (the IP id) makes each a different packet to the tracer."""
    l4 = {6: lambda: craft.tcp(src, dst, sport, dport, seq=7, flags="S"), 17: lambda: craft.udp(src, dst, sport, dport)}
    payload = l4.get(proto, lambda: craft.icmp_echo(9, 1))()
    return craft.ip_frame("02:00:00:00:00:01", "02:00:00:00:00:02", craft.ipv4(src, dst, proto, payload, ident=ident))


@pytest.mark.parametrize(
    "expr",
    [
        "tcp and port 80",
        "udp dst port 53",
        "host 10.244.1.71 and not icmp",
        "net 10.244.3.0/24",
        "tcp portrange 8000-8080 or icmp",
    ],
)
def test_the_kernels_filter_agrees_with_the_reference(expr):
    """The compiled filter, run with BPF_PROG_TEST_RUN on crafted frames, picks up exactly
    the packets skbfilter.matches says."""
    node = skbfilter.parse(expr)
    tmpl = tracer.templates(node, tracefs.read_formats())["trace_tc.c"]
    maps = {
        n: bpfsys.map_create(m["type"], m["key_size"], m["value_size"], m["max_entries"], m["flags"], n)
        for n, m in tmpl.maps.items()
    }
    try:
        bpfsys.update(maps["lkt_config"], struct.pack("=I", 0), tracer.CONFIG.pack(0, 0, 1000, 0, 0, 0))
        p = tmpl.progs["lkt_tc_ingress"]
        insns = bytearray(p["insns"])
        for idx, name in p["relocs"]:
            struct.pack_into("<i", insns, idx * 8 + 4, maps[name])
        fd = bpfsys.prog_load(tracer.patch_netns(bytes(insns), 1), bpfsys.PROG_SCHED_CLS, "lkt_test")
        try:
            for ident, (label, (proto, src, dst, sport, dport)) in enumerate(FRAMES.items(), start=1):
                before = tracer.CONFIG.unpack(
                    bpfsys.lookup(maps["lkt_config"], struct.pack("=I", 0), tracer.CONFIG.size)
                )[3]
                _test_run(fd, _frame(proto, src, dst, sport, dport, ident))
                after = tracer.CONFIG.unpack(
                    bpfsys.lookup(maps["lkt_config"], struct.pack("=I", 0), tracer.CONFIG.size)
                )[3]
                want = skbfilter.matches(
                    node,
                    {
                        "ethertype": 0x0800,
                        "proto": proto,
                        "saddr": src,
                        "daddr": dst,
                        "sport": sport,
                        "dport": dport,
                        "has_ports": proto in (6, 17),
                    },
                )
                assert (after - before == 1) == want, (expr, label)
        finally:
            os.close(fd)
    finally:
        for fd in maps.values():
            os.close(fd)


def test_bad_input_changes_nothing(lab):
    before = _tcx_programs(lab)
    for kw in ({"filter": "tcp and prot 80"}, {"seconds": 0}, {"points": ["nosuch-pod:eth0"]}):
        with pytest.raises(LabError):
            lab.trace("client-pod", ["true"], **kw)
    assert _tcx_programs(lab) == before
