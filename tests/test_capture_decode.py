"""The decoder and summaries on hand-built frames: exact fields, tcpdump -nS text."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.backend import CapturePoint
from labkit.capture import Frames, packets_table
from labkit.capture import craft as c
from labkit.capture.frames import DIR_IN, DIR_OUT
from labkit.tables import PACKETS

CLIENT_MAC, LXC_MAC = "0a:58:0a:f4:01:47", "be:8f:11:22:33:44"
CLIENT, SERVER, ROUTER = "10.244.1.71", "10.244.1.182", "10.244.1.113"
T0 = 1_700_000_000_123_456_789


def table(frames: list[bytes], directions=None, point="client-pod:eth0", meta=None):
    n = len(frames)
    f = Frames.pack(
        frames,
        [T0 + i * 1000 for i in range(n)],
        [len(x) for x in frames],
        [0] * n,
        directions or [DIR_OUT] * n,
        [point],
    )
    return packets_table(f, meta)


def tcp_frame(src, dst, sport, dport, ident=1, **kw):
    return c.ip_frame(CLIENT_MAC, LXC_MAC, c.ipv4(src, dst, 6, c.tcp(src, dst, sport, dport, **kw), ident=ident))


def test_tcp_handshake_fields_and_summaries():
    frames = [
        tcp_frame(
            CLIENT,
            SERVER,
            42278,
            80,
            ident=0x1234,
            flags="S",
            seq=123,
            win=64240,
            options=c.syn_options(ts_val=1000, ts_ecr=0),
        ),
        tcp_frame(
            SERVER,
            CLIENT,
            80,
            42278,
            ident=0,
            flags="SA",
            seq=4_000_000_000,
            ack=124,
            win=65160,
            options=c.syn_options(ts_val=2000, ts_ecr=1000),
        ),
        tcp_frame(
            CLIENT,
            SERVER,
            42278,
            80,
            ident=0x1235,
            flags="A",
            seq=124,
            ack=4_000_000_001,
            win=502,
            options=c.ts_options(1001, 2000),
        ),
        tcp_frame(
            CLIENT,
            SERVER,
            42278,
            80,
            ident=0x1236,
            flags="PA",
            seq=124,
            ack=4_000_000_001,
            win=502,
            options=c.ts_options(1002, 2000),
            payload=b"GET / HTTP/1.1\r\nHost: 10.244.1.182\r\n\r\n",
        ),
        tcp_frame(
            SERVER,
            CLIENT,
            80,
            42278,
            ident=7,
            flags="PA",
            seq=4_294_967_290,
            ack=162,
            win=509,
            payload=b"HTTP/1.1 200 OK\r\n\r\n",
        ),
        tcp_frame(CLIENT, SERVER, 42278, 80, ident=0x1237, flags="FA", seq=162, ack=9, win=502),
        tcp_frame(CLIENT, SERVER, 42278, 80, ident=0x1238, flags="R", seq=163, win=0),
        tcp_frame(CLIENT, SERVER, 42278, 80, ident=0x1239, flags="RA", seq=0, ack=9, win=0),
    ]
    df = table(frames)
    PACKETS.check(df)
    assert df["summary"].tolist() == [
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [S], seq 123, win 64240, "
        "options [mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7], length 0",
        "IP 10.244.1.182.80 > 10.244.1.71.42278: Flags [S.], seq 4000000000, ack 124, win 65160, "
        "options [mss 1460,sackOK,TS val 2000 ecr 1000,nop,wscale 7], length 0",
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [.], ack 4000000001, win 502, "
        "options [nop,nop,TS val 1001 ecr 2000], length 0",
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [P.], seq 124:162, ack 4000000001, win 502, "
        "options [nop,nop,TS val 1002 ecr 2000], length 38: HTTP: GET / HTTP/1.1",
        # seq wraps around 2**32 like tcpdump's unsigned arithmetic
        "IP 10.244.1.182.80 > 10.244.1.71.42278: Flags [P.], seq 4294967290:13, ack 162, win 509, "
        "length 19: HTTP: HTTP/1.1 200 OK",
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [F.], seq 162, ack 9, win 502, length 0",
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [R], seq 163, win 0, length 0",
        "IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [R.], seq 0, ack 9, win 0, length 0",
    ]
    assert df["tcp_flags"].tolist() == ["[S]", "[S.]", "[.]", "[P.]", "[P.]", "[F.]", "[R]", "[R.]"]
    assert df["seq"].tolist() == [123, 4_000_000_000, 124, 124, 4_294_967_290, 162, 163, 0]
    assert df["ack"].tolist() == [0, 124, 4_000_000_001, 4_000_000_001, 162, 9, 0, 9]
    assert df["ip_id"].tolist() == [0x1234, 0, 0x1235, 0x1236, 7, 0x1237, 0x1238, 0x1239]
    row = df.iloc[0]
    assert (row.proto, row.src_ip, row.dst_ip, row.src_port, row.dst_port) == ("TCP", CLIENT, SERVER, 42278, 80)
    assert (row.src_mac, row.dst_mac, row.length) == (CLIENT_MAC, LXC_MAC, 74)
    assert row.time == pytest.approx(T0 / 1e9)
    assert df["direction"].unique().tolist() == ["out"]


def test_arp_request_reply():
    frames = [
        c.arp(1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", ROUTER),
        c.arp(2, LXC_MAC, ROUTER, CLIENT_MAC, CLIENT),
        c.arp(1, CLIENT_MAC, CLIENT, "ff:ff:ff:ff:ff:ff", ROUTER) + bytes(18),  # padded to 60
    ]
    df = table(frames, directions=[DIR_OUT, DIR_IN, DIR_OUT])
    assert df["summary"].tolist() == [
        "ARP, Request who-has 10.244.1.113 tell 10.244.1.71, length 28",
        "ARP, Reply 10.244.1.113 is-at be:8f:11:22:33:44, length 28",
        "ARP, Request who-has 10.244.1.113 (ff:ff:ff:ff:ff:ff) tell 10.244.1.71, length 46",
    ]
    assert df["proto"].tolist() == ["ARP"] * 3
    assert df["src_ip"].tolist() == [CLIENT, ROUTER, CLIENT]
    assert df["dst_ip"].tolist() == [ROUTER, CLIENT, ROUTER]
    assert df["dst_mac"].tolist() == ["ff:ff:ff:ff:ff:ff", CLIENT_MAC, "ff:ff:ff:ff:ff:ff"]
    assert df["direction"].tolist() == ["out", "in", "out"]
    assert df["src_port"].isna().all() and df["seq"].isna().all() and df["ip_id"].isna().all()
    assert df["tcp_flags"].tolist() == ["", "", ""]


def test_udp_icmp_and_others():
    inner = c.ipv4(CLIENT, SERVER, 17, c.udp(CLIENT, SERVER, 40000, 9999, b"hi"))
    frames = [
        c.ip_frame(
            CLIENT_MAC, LXC_MAC, c.ipv4(CLIENT, SERVER, 17, c.udp(CLIENT, SERVER, 40000, 9999, b"hello"), ident=3)
        ),
        c.ip_frame(CLIENT_MAC, LXC_MAC, c.ipv4(CLIENT, SERVER, 1, c.icmp_echo(5, 1, bytes(56)), ident=4)),
        c.ip_frame(LXC_MAC, CLIENT_MAC, c.ipv4(SERVER, CLIENT, 1, c.icmp_echo(5, 1, bytes(56), reply=True), ident=5)),
        c.ip_frame(LXC_MAC, CLIENT_MAC, c.ipv4(SERVER, CLIENT, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + inner[:28])),
        c.ether(LXC_MAC, CLIENT_MAC, 0x86DD, bytes(40)),
        c.ip_frame(CLIENT_MAC, LXC_MAC, c.ipv4(CLIENT, SERVER, 17, bytes(16), frag_offset=1480)),
        tcp_frame(CLIENT, SERVER, 1, 2, flags="S")[: 14 + 20 + 10],  # TCP header cut short
    ]
    df = table(frames)
    assert df["summary"].tolist() == [
        "IP 10.244.1.71.40000 > 10.244.1.182.9999: UDP, length 5",
        "IP 10.244.1.71 > 10.244.1.182: ICMP echo request, id 5, seq 1, length 64",
        "IP 10.244.1.182 > 10.244.1.71: ICMP echo reply, id 5, seq 1, length 64",
        "IP 10.244.1.182 > 10.244.1.71: ICMP 10.244.1.182 udp port 9999 unreachable, length 36",
        "ethertype 0x86dd, length 54",
        "IP 10.244.1.71 > 10.244.1.182: ip-proto-17",
        "IP 10.244.1.71.1 > 10.244.1.182.2:  [|tcp]",
    ]
    assert df["proto"].tolist() == ["UDP", "ICMP", "ICMP", "ICMP", "0x86dd", "UDP", "TCP"]
    assert df["src_port"].tolist()[0] == 40000 and df["dst_port"].tolist()[0] == 9999
    assert df["src_port"].isna().tolist() == [False, True, True, True, True, True, True]
    assert df["src_ip"].tolist()[4] == ""
    assert df["length"].tolist() == [len(f) for f in frames]


def test_point_metadata_and_empty():
    point = CapturePoint("kind-worker:lxc1a2b3c4d5e6f", "kind-worker", "client-pod", "lxc1a2b3c4d5e6f", "/run/netns/x")
    df = table(
        [c.arp(1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", ROUTER)], point=point.point, meta={point.point: point}
    )
    assert df.loc[0, ["point", "node", "pod", "interface"]].tolist() == [
        "kind-worker:lxc1a2b3c4d5e6f",
        "kind-worker",
        "client-pod",
        "lxc1a2b3c4d5e6f",
    ]
    empty = packets_table(Frames.empty(["a:eth0"]))
    PACKETS.check(empty)
    assert len(empty) == 0


def test_decoder_is_vectorised_over_many_frames():
    """10k mixed frames decode to the same summaries as decoding each frame alone."""
    rng = np.random.default_rng(1)
    frames = []
    for i in range(10_000):
        kind = i % 3
        if kind == 0:
            frames.append(
                tcp_frame(
                    CLIENT,
                    SERVER,
                    int(rng.integers(1024, 65535)),
                    80,
                    ident=i & 0xFFFF,
                    flags="PA",
                    seq=int(rng.integers(0, 2**32)),
                    ack=1,
                    payload=b"x" * (i % 50),
                    options=c.ts_options(i, i + 1),
                )
            )
        elif kind == 1:
            frames.append(
                c.ip_frame(
                    CLIENT_MAC, LXC_MAC, c.ipv4(CLIENT, SERVER, 17, c.udp(CLIENT, SERVER, 5000, 6000, bytes(i % 30)))
                )
            )
        else:
            frames.append(c.arp(1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", f"10.244.1.{i % 250}"))
    many = table(frames)["summary"].tolist()
    for i in (0, 1, 2, 4999, 9998, 9999):
        assert table([frames[i]])["summary"].tolist() == [many[i]]
