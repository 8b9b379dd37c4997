"""The capture engine for real: two namespaces of our own joined by a veth pair.

Everything lives in namespaces named lktest-cap-<pid>-*, addressed 10.99.0.0/24, and is
deleted in the fixture's finally, also when a test fails. Nothing touches the host's root
namespace beyond creating and deleting these namespaces.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

from labkit.backend import CapturePoint
from labkit.capture import Capture, read_packets
from labkit.capture.bounds import RECORD_BYTES
from labkit.errors import LabError
from labkit.netns import call_in as call_in_netns
from labkit.tables import PACKETS

pytestmark = pytest.mark.root
A_IP, B_IP = "10.99.0.1", "10.99.0.2"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=30)


@pytest.fixture
def pair():
    """Two fresh namespaces a, b with veth0 (10.99.0.1) <-> veth1 (10.99.0.2), IPv6 off."""
    prefix = f"lktest-cap-{os.getpid()}-"
    a, b = prefix + "a", prefix + "b"
    made = []
    try:
        for ns in (a, b):
            _ip("netns", "add", ns)
            made.append(ns)
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
                check=True,
                capture_output=True,
            )
        _ip("-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b)
        _ip("-n", a, "addr", "add", f"{A_IP}/24", "dev", "veth0")
        _ip("-n", b, "addr", "add", f"{B_IP}/24", "dev", "veth1")
        _ip("-n", a, "link", "set", "veth0", "up")
        _ip("-n", b, "link", "set", "veth1", "up")
        points = [
            CapturePoint(f"{a}:veth0", a, "", "veth0", f"/run/netns/{a}"),
            CapturePoint(f"{b}:veth1", b, "", "veth1", f"/run/netns/{b}"),
        ]
        yield a, b, points
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        assert not [n for n in os.listdir("/run/netns") if n.startswith(prefix)]


def ping(ns: str, count: int = 1) -> None:
    r = subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", B_IP],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def tcp_exchange(a: str, b: str, port: int = 8080) -> None:
    """A TCP request/response: server socket in b, client socket in a (both ours, in-process)."""
    server = call_in_netns(f"/run/netns/{b}", lambda: socket.create_server((B_IP, port)))
    got = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nhi")

    t = threading.Thread(target=serve)
    t.start()
    try:
        client = call_in_netns(f"/run/netns/{a}", lambda: socket.create_connection((B_IP, port), timeout=5))
        with client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        t.join(5)
        server.close()
    assert got == [b"GET / HTTP/1.1\r\n\r\n"]


def settle(cap: Capture, rows: int, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while len(cap.packets) < rows and time.monotonic() < end:
        time.sleep(0.02)


def test_first_packet_and_directions(pair):
    a, b, points = pair
    with Capture(points) as cap:  # armed on entry: the very first ARP must be there
        ping(a)
        settle(cap, 8)
    df = cap.packets
    PACKETS.check(df)
    first = df.iloc[0]
    assert first.point == points[0].point and first.direction == "out"
    assert first.summary == f"ARP, Request who-has {B_IP} tell {A_IP}, length 28"
    seen = {(r.point, r.direction, r.summary.split(",")[0]) for r in df.itertuples()}
    assert (points[1].point, "in", "ARP") in seen
    req = df[df.summary.str.contains("ICMP echo request")]
    rep = df[df.summary.str.contains("ICMP echo reply")]
    assert dict(zip(req.point, req.direction)) == {points[0].point: "out", points[1].point: "in"}
    assert dict(zip(rep.point, rep.direction)) == {points[1].point: "out", points[0].point: "in"}
    assert (df["time"].diff().dropna() >= 0).all()  # sorted by kernel time
    assert not cap.running and cap.errors == []


def test_tcp_exchange_seen_at_both_ends(pair, tmp_path):
    a, b, points = pair
    ping(a)  # ARP resolved before: the SYN is the first packet
    with Capture(points) as cap:
        tcp_exchange(a, b)
        settle(cap, 2 * 10)
    df = cap.packets
    tcp = df[df.proto == "TCP"]
    assert df.iloc[0].tcp_flags == "[S]" and df.iloc[0].point == points[0].point
    for point, out_flags in ((points[0].point, "[S]"), (points[1].point, "[S.]")):
        mine = tcp[tcp.point == point]
        assert mine[mine.tcp_flags == out_flags].direction.tolist() == ["out"]
    syn = tcp[tcp.tcp_flags == "[S]"]
    assert syn.point.tolist() == [points[0].point, points[1].point]
    assert syn.ip_id.nunique() == 1 and syn.seq.nunique() == 1  # the same packet, twice
    assert syn.iloc[0].summary.startswith(f"IP {A_IP}.") and f"> {B_IP}.8080: Flags [S], seq " in syn.iloc[0].summary
    assert tcp.summary.str.contains(r"HTTP: GET / HTTP/1.1$").sum() == 2
    assert tcp.summary.str.contains(r"HTTP: HTTP/1.1 200 OK$").sum() == 2
    assert set(tcp.dst_port.dropna()) | set(tcp.src_port.dropna()) >= {8080}
    # saved files: tcpdump prints exactly our lines, and they read back to the same table
    paths = cap.save(tmp_path)
    for point, path in zip(points, paths):
        r = subprocess.run(["tcpdump", "-nS", "-r", str(path)], capture_output=True, text=True, check=True)
        assert r.stdout.splitlines() == cap.lines(point.point)
        back = read_packets(path)
        assert back.direction.tolist() == df[df.point == point.point].direction.tolist()
    assert len(cap.lines()) == len(df) and " Out IP " in cap.lines()[0]


def test_count_bound(pair):
    a, b, points = pair
    cap = Capture(points, count=3).start()
    try:
        ping(a, count=3)
        assert cap.wait(5), "the count bound did not stop the capture"
        assert not cap.running
    finally:
        cap.stop()
    assert len(cap.packets) == 3


def test_seconds_bound(pair):
    a, b, points = pair
    t0 = time.monotonic()
    with Capture(points, seconds=0.5) as cap:
        assert cap.wait(5)
    assert 0.45 <= time.monotonic() - t0 < 3
    assert len(cap.packets) == 0


def test_bytes_bound(pair):
    a, b, points = pair
    limit = 3 * (98 + RECORD_BYTES) + 10  # room for three ICMP echo frames, not four
    with Capture(points, max_bytes=limit) as cap:
        ping(a, count=3)
        assert cap.wait(5)
    df = cap.packets
    assert len(df) == 3 and cap.stopped_by == "max_bytes"
    assert df.length.sum() + len(df) * RECORD_BYTES <= limit


def test_snaplen(pair):
    a, b, points = pair
    with Capture(points, snaplen=40) as cap:
        ping(a)
        settle(cap, 8)
    df = cap.packets
    assert (df[df.proto == "ICMP"].length == 98).all()
    assert cap.frames.caplen.max() == 40


def test_bad_points_leave_nothing_open(pair):
    a, b, points = pair
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    bad_iface = CapturePoint(f"{a}:nope0", a, "", "nope0", f"/run/netns/{a}")
    with pytest.raises(LabError, match="no interface 'nope0'") as e:
        Capture([points[0], bad_iface]).start()
    assert "\n" not in str(e.value)
    missing = CapturePoint("ghost:eth0", "ghost", "", "eth0", "/run/netns/lktest-cap-does-not-exist")
    with pytest.raises(LabError, match="network namespace .* is missing"), Capture([points[1], missing]):
        pass
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads
    with pytest.raises(LabError, match="repeat"):
        Capture([points[0], points[0]])
    for bad, message in (
        ({"count": 0}, "count must be between 1"),
        ({"count": "5"}, "count must be a whole number"),
        ({"count": True}, "count must be a whole number"),
        ({"seconds": float("nan")}, "seconds must be a number of seconds > 0"),
        ({"seconds": float("inf")}, "seconds must be"),
        ({"seconds": -1}, "seconds must be"),
        ({"seconds": 1e300}, "at most 86400"),
        ({"seconds": "1"}, "seconds must be a number"),
        ({"max_bytes": -5}, "max_bytes must be between"),
        ({"max_bytes": 2.5}, "max_bytes must be a whole number"),
        ({"snaplen": 10**9}, "snaplen must be between"),
    ):
        with pytest.raises(LabError, match=message) as e:
            Capture(points, **bad)
        assert "\n" not in str(e.value)
    assert len(os.listdir("/proc/self/fd")) == fds


def test_interface_deleted_while_capturing(pair):
    a, b, points = pair
    with Capture(points) as cap:
        ping(a)
        _ip("-n", a, "link", "delete", "veth0")
        time.sleep(0.3)
    assert len(cap.packets) >= 4  # what was captured before is kept
    assert sorted(cap.errors) == [f"{points[0].point}: Network is down", f"{points[1].point}: Network is down"]


@pytest.mark.root
def test_points_reached_through_a_command_stream_tcpdump():
    """Live-backend points (exec_prefix, no netns): tcpdump runs there and streams pcap back.
    Here the command is `ip netns exec` into an embedded lab, so it runs for real."""
    from labkit.backend import CapturePoint

    from .lab_fixtures import running_lab

    with running_lab("rtap", datapath="kernel") as lab:
        local = lab.backend.capture_points(["client-pod:eth0"])[0]
        ns = local.netns.rsplit("/", 1)[1]
        remote = CapturePoint("client-pod:eth0", local.node, local.pod, "eth0", "", ("ip", "netns", "exec", ns))
        target = lab.pods.set_index("name").loc["curl-pod", "ip"]
        with Capture([remote], seconds=10) as cap:
            assert lab.pod("client-pod").run(["ping", "-c", "2", "-i", "0.2", "-W", "2", target]).returncode == 0
            time.sleep(0.3)
        pk = cap.packets
        echo = pk[pk.proto == "ICMP"]
        assert list(echo.direction) == ["out", "in", "out", "in"]
        assert "ICMP echo request" in echo.summary.iloc[0] and "ICMP echo reply" in echo.summary.iloc[1]
        with Capture([remote], count=1) as cap:
            lab.pod("client-pod").run(["ping", "-c", "3", "-i", "0.2", "-W", "2", target])
            assert cap.wait(5)
        assert len(cap.packets) == 1
