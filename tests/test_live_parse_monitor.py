"""Parsers of `cilium-dbg monitor` (text, -j) and `hubble observe -o json`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from labkit.live.parse_monitor import identity_number, parse_flows, parse_monitor
from labkit.tables import EVENTS, FLOWS

FIX = Path(__file__).parent / "fixtures" / "live" / "cilium"
T0 = datetime(2025, 8, 2, 8, 4, 38, tzinfo=timezone.utc)


def text(name: str) -> str:
    return (FIX / name).read_text()


def test_monitor_blog_to_359():
    df = parse_monitor(text("monitor.blog-to-359.txt"), "kind-worker", time=T0, ifindexes={"lxc49626b6ed5ee": 9})
    EVENTS.check(df)
    assert len(df) == 5  # banner, logrus line skipped
    first = df.iloc[0].to_dict()
    assert first["time"] == pd.Timestamp(T0)
    for k, v in dict(
        node="kind-worker",
        type="trace",
        observation_point="to-endpoint",
        source=0,
        dst_id=359,
        flow=0x2B611E1D,
        src_identity=30542,
        dst_identity=32693,
        state="new",
        ifindex=9,
        ifname="lxc49626b6ed5ee",
        orig_ip="10.244.1.71",
        proto="TCP",
        src_ip="10.244.1.71",
        src_port=42278,
        dst_ip="10.244.1.182",
        dst_port=80,
        tcp_flags="SYN",
        drop_reason="",
    ).items():
        assert first[k] == v, k
    assert first["line"].startswith("-> endpoint 359 flow 0x2b611e1d , identity 30542->32693 state new")
    assert list(df["state"]) == ["new"] + ["established"] * 4
    assert list(df["tcp_flags"]) == ["SYN", "ACK", "ACK", "ACK, FIN", "ACK"]


def test_monitor_blog_from_2543_replies():
    df = parse_monitor(text("monitor.blog-from-2543.txt"), "kind-worker")
    EVENTS.check(df)
    assert len(df) == 3
    assert set(df["state"]) == {"reply"} and set(df["dst_id"]) == {2543}
    assert df.iloc[0]["flow"] == 0x7783164 and df.iloc[0]["tcp_flags"] == "SYN, ACK"
    assert df.iloc[0]["ifindex"] == 0  # no link table given
    assert (df["src_port"] == 80).all() and (df["dst_port"] == 45532).all()


def test_monitor_real_misc_reserved_identities_stack_overlay_drop():
    df = parse_monitor(text("monitor.real-misc.txt"), "n", ifnames={29: "lxcabc"})
    EVENTS.check(df)
    assert list(df["observation_point"]) == ["to-endpoint", "to-stack", "to-overlay", ""]
    assert df.iloc[0]["src_identity"] == 1 and df.iloc[1]["dst_identity"] == 1  # "host"
    assert df.iloc[1]["ifname"] == "0" and df.iloc[1]["orig_ip"] == "0.0.0.0"
    assert df.iloc[1]["tcp_flags"] == "SYN, ACK"
    drop = df.iloc[3].to_dict()
    assert (drop["type"], drop["drop_reason"], drop["ifindex"], drop["ifname"], drop["dst_identity"]) == (
        "drop",
        "Policy denied",
        29,
        "lxcabc",
        2,
    )
    assert (drop["flow"], drop["src_identity"], drop["dst_ip"], drop["dst_port"]) == (
        0xFDDD76F6,
        48447,
        "93.184.215.14",
        80,
    )


def test_monitor_json_lines():
    df = parse_monitor(text("monitor.derived-j.jsonl"), "kind-worker", ifindexes={"lxc49626b6ed5ee": 9})
    EVENTS.check(df)
    assert list(df["type"]) == ["trace", "trace", "drop"]
    a = df.iloc[0]
    assert (a.observation_point, a.dst_id, a.source, a.flow, a.ifindex, a.tcp_flags) == (
        "to-endpoint",
        359,
        359,
        0x2B611E1D,
        9,
        "SYN",
    )
    assert (a.src_ip, a.src_port, a.dst_ip, a.dst_port, a.proto) == ("10.244.1.71", 42278, "10.244.1.182", 80, "TCP")
    assert df.iloc[1]["tcp_flags"] == "SYN, ACK" and df.iloc[1]["state"] == "reply"
    assert df.iloc[2]["drop_reason"] == "Policy denied" and df.iloc[2]["dst_identity"] == 2


def test_identity_names():
    assert identity_number("world") == 2 and identity_number("reserved:health") == 4
    assert identity_number("remote-node") == 6 and identity_number("32693") == 32693


def test_hubble_flows():
    df = parse_flows(text("hubble-observe.jsonl"))
    FLOWS.check(df)
    assert len(df) == 8  # lost_events line skipped
    syn = df.iloc[0].to_dict()
    assert syn["time"] == pd.Timestamp("2025-08-02T07:00:54.904025113Z")
    for k, v in dict(
        node="kind-worker",
        verdict="FORWARDED",
        drop_reason="",
        proto="TCP",
        src_ip="10.244.1.71",
        src_xlated="",
        src_port=55240,
        dst_ip="10.244.1.182",
        dst_port=80,
        tcp_flags="SYN",
        src_pod="native/client-pod",
        dst_pod="native/webpod-697b545f57-tdbfg",
        src_identity=30542,
        dst_identity=32693,
        traffic_direction="EGRESS",  # orig-ip is set on to-endpoint traces (threefour's isSNATed)
        observation_point="TO_ENDPOINT",
        type="to-endpoint",
        trace_reason="NEW",
        is_reply=False,
        ifname="lxc49626b6ed5ee",
        summary="TCP Flags: SYN",
    ).items():
        assert syn[k] == v, k
    assert df.iloc[1]["tcp_flags"] == "SYN, ACK" and df.iloc[1]["is_reply"] == True  # noqa: E712
    assert df.iloc[2]["tcp_flags"] == "ACK, PSH"
    assert df.iloc[3]["src_xlated"] == "10.96.92.233"
    icmp = df.iloc[4]
    assert icmp["proto"] == "ICMPv4" and pd.isna(icmp["src_port"]) and icmp["tcp_flags"] == ""
    spoofed = df.iloc[5]
    assert (spoofed["verdict"], spoofed["type"], spoofed["drop_reason"]) == (
        "DROPPED",
        "Invalid source ip",
        "Invalid source ip",
    )
    assert pd.isna(spoofed["is_reply"]) and spoofed["traffic_direction"] == "INGRESS"
    sock = df.iloc[6]
    assert (sock["type"], sock["verdict"], sock["dst_ip"], sock["dst_port"]) == (
        "pre-xlate-fwd",
        "TRACED",
        "10.96.92.233",
        80,
    )
    assert df.iloc[4]["time"] == pd.Timestamp("2025-08-02T07:00:56Z")  # protojson: no fraction at all
    drop = df.iloc[7]  # hubble's own printer test line
    assert (drop["verdict"], drop["node"], drop["src_identity"], drop["src_pod"]) == ("DROPPED", "k8s1", 4, "")
    assert drop["is_reply"] == False and drop["traffic_direction"] == "TRAFFIC_DIRECTION_UNKNOWN"  # noqa: E712


def test_hubble_empty():
    df = parse_flows("")
    FLOWS.check(df)
    assert len(df) == 0
