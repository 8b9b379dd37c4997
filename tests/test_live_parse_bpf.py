"""Parsers of `cilium-dbg bpf ... list` / `service list` on recorded outputs (see fixtures/live/README.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from labkit.errors import LabError
from labkit.live.parse_bpf import (
    ct_flag_names,
    parse_ct,
    parse_endpoints,
    parse_ipcache,
    parse_lb,
    parse_metrics,
    parse_nat,
    parse_service_list,
)
from labkit.tables import CT, ENDPOINTS, IPCACHE, LB, METRICS, NAT

FIX = Path(__file__).parent / "fixtures" / "live" / "cilium"


def text(name: str) -> str:
    return (FIX / name).read_text()


def rec(df: pd.DataFrame, **where) -> dict:
    m = df
    for k, v in where.items():
        m = m[m[k] == v]
    assert len(m) == 1, f"{where}: {len(m)} rows"
    return {k: (None if pd.isna(v) else v) for k, v in m.iloc[0].to_dict().items()}


# ------------------------------------------------------------------------------ endpoints


def test_endpoint_list_of_the_blog():
    df = parse_endpoints(text("endpoint-list.blog-1.17.6.txt"), "kind-worker")
    ENDPOINTS.check(df)
    assert list(df["ip"]) == ["10.244.1.113", "10.244.1.182", "172.17.0.4", "10.244.1.71"]
    web = rec(df, ip="10.244.1.182")
    assert web == dict(
        node="kind-worker",
        ip="10.244.1.182",
        endpoint_id=359,
        identity=32693,
        flags=0,
        ifindex=9,
        mac="1E:97:A3:67:C6:D1",
        node_mac="A6:25:B4:A1:25:0A",
        is_host=False,
    )
    client = rec(df, ip="10.244.1.71")
    assert (client["endpoint_id"], client["identity"], client["ifindex"], client["node_mac"]) == (
        2543,
        30542,
        11,
        "32:17:55:23:39:08",
    )
    host = rec(df, ip="10.244.1.113")
    assert host["is_host"] and host["flags"] == 1 and host["endpoint_id"] is None and host["mac"] is None


def test_endpoint_list_tabwriter_without_parent_ifindex():
    df = parse_endpoints(text("endpoint-list.kind-1.16.txt"), "kind-worker")
    ENDPOINTS.check(df)
    assert len(df) == 3
    assert rec(df, ip="10.244.3.168")["endpoint_id"] == 1371
    health = rec(df, ip="10.244.3.13")
    assert (health["identity"], health["ifindex"], health["mac"]) == (4, 6, "5A:8A:14:BA:49:09")
    assert rec(df, ip="172.18.0.2")["is_host"]


def test_endpoint_list_json_matches_text():
    t = parse_endpoints(text("endpoint-list.blog-1.17.6.txt"), "n").sort_values("ip", ignore_index=True)
    j = parse_endpoints(text("endpoint-list.json"), "n").sort_values("ip", ignore_index=True)
    ENDPOINTS.check(j)
    pd.testing.assert_frame_equal(t, j)


# ------------------------------------------------------------------------------------- CT


def test_ct_v117_same_node_both_directions():
    df = parse_ct(text("ct-list.v1.17.txt"), "kind-worker")
    CT.check(df)
    assert list(zip(df["proto"], df["direction"])) == [("TCP", "OUT"), ("TCP", "IN"), ("ICMP", "OUT"), ("ICMP", "IN")]
    out = rec(df, proto="TCP", direction="OUT")
    assert out == dict(
        node="kind-worker",
        proto="TCP",
        direction="OUT",
        src_ip="10.244.1.71",
        src_port=42278,
        dst_ip="10.244.1.182",
        dst_port=80,
        related=False,
        expires=16789,  # a closed connection: LastRxReport + CT_CLOSE_TIMEOUT (10 s)
        packets=0,
        bytes=0,
        rx_flags_seen=0x1B,
        tx_flags_seen=0x1B,
        flags=0x13,
        flag_names="RxClosing TxClosing SeenNonSyn",
        rev_nat=0,
        src_identity=30542,
        ifindex=0,
        backend_id=0,
    )
    assert (df["rev_nat"] == 0).all()  # the blog's observation: no reverse NAT
    icmp = rec(df, proto="ICMP", direction="OUT")
    assert icmp["src_port"] == 29339 and icmp["dst_port"] == 0  # the echo id in the source-port slot
    assert icmp["expires"] == 16791 + 60  # CT_CONNECTION_LIFETIME_NONTCP


def test_ct_v115_old_counters_are_summed():
    df = parse_ct(text("ct-list.v1.15.txt"), "n")
    CT.check(df)
    r = rec(df, direction="IN")
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) == ("192.168.139.13", 44808, "192.168.64.97", 4240)
    assert (r["packets"], r["bytes"]) == (10, 853)
    assert (r["flags"], r["flag_names"], r["src_identity"], r["backend_id"]) == (
        0x13,
        "RxClosing TxClosing SeenNonSyn",
        2,
        0,
    )
    assert r["expires"] == 3553147


def test_ct_v116_time_diff_and_tc_lb_entries():
    df = parse_ct(text("ct-list.v1.16-tclb-timediff.txt"), "n")
    CT.check(df)
    svc = rec(df, direction="SVC")
    assert (svc["dst_ip"], svc["dst_port"], svc["rev_nat"], svc["backend_id"], svc["expires"]) == (
        "10.96.12.34",
        80,
        7,
        12,
        16789,
    )
    out = rec(df, direction="OUT")
    assert (out["rev_nat"], out["packets"], out["bytes"], out["flag_names"], out["flags"]) == (
        7,
        3,
        212,
        "SeenNonSyn",
        0x10,
    )


def test_ct_v118_without_ifindex_with_natport():
    df = parse_ct(text("ct-list.v1.18.txt"), "n")
    CT.check(df)
    r = rec(df, direction="IN")
    assert (r["flags"], r["flag_names"]) == (0x413, "RxClosing TxClosing SeenNonSyn FromTunnel")
    assert (r["rx_flags_seen"], r["src_identity"], r["ifindex"]) == (0x1B, 6, 0)


def test_ct_json_raw_byte_order():
    df = parse_ct(text("ct-list.json"), "kind-worker")
    CT.check(df)
    out = rec(df, proto="TCP", direction="OUT")
    assert (out["src_ip"], out["src_port"], out["dst_ip"], out["dst_port"]) == (
        "10.244.1.71",
        42278,
        "10.244.1.182",
        80,
    )
    assert (out["rx_flags_seen"], out["tx_flags_seen"], out["expires"], out["src_identity"]) == (27, 27, 16789, 30542)
    svc = rec(df, direction="SVC")
    assert (svc["src_ip"], svc["src_port"], svc["dst_ip"], svc["dst_port"], svc["rev_nat"], svc["backend_id"]) == (
        "10.244.1.71",
        42278,
        "10.96.12.34",
        80,
        7,
        12,
    )
    icmp = rec(df, proto="ICMP")
    assert icmp["related"] and icmp["direction"] == "IN"
    assert icmp["flag_names"] == "RxClosing TxClosing SeenNonSyn FromTunnel"


def test_ct_json_and_text_agree_on_the_same_entries():
    t = parse_ct(text("ct-list.v1.17.txt"), "n")
    j = parse_ct(text("ct-list.json"), "n")
    cols = [
        "proto",
        "direction",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "rx_flags_seen",
        "tx_flags_seen",
        "rev_nat",
        "src_identity",
    ]
    tcp_t = t[t.proto == "TCP"][cols].reset_index(drop=True)
    tcp_j = j[(j.proto == "TCP") & (j.direction != "SVC")][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(tcp_t, tcp_j)


def test_ct_flag_names_unknown_bits():
    assert ct_flag_names(0x200 | 0x1) == "RxClosing Unknown=0x200"


def test_ct_skips_non_entries_and_empty_is_schema():
    df = parse_ct("Unable to open /sys/fs/bpf/tc/globals/cilium_ct6_global: no such file. Skipping.\n\n", "n")
    CT.check(df)
    assert df.empty


def test_bad_json_is_one_line_laberror():
    with pytest.raises(LabError) as e:
        parse_ct("[{not json", "n")
    assert "bpf ct list global" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------ NAT


def test_nat_real_kind():
    df = parse_nat(text("nat-list.kind.txt"), "kind-worker")
    NAT.check(df)
    out, back = rec(df, direction="OUT"), rec(df, direction="IN")
    assert out == dict(
        node="kind-worker",
        proto="TCP",
        direction="OUT",
        src_ip="172.18.0.3",
        src_port=34178,
        dst_ip="54.234.221.194",
        dst_port=443,
        xlate="SRC",
        xlate_ip="172.18.0.3",
        xlate_port=34178,
        created_ago_s=408,
        needs_ct=1,
    )
    assert (back["xlate"], back["src_ip"], back["dst_port"]) == ("DST", "54.234.221.194", 34178)


def test_nat_masquerade_and_unknown_clock():
    df = parse_nat(text("nat-list.derived-masq.txt"), "n")
    NAT.check(df)
    assert len(df) == 3
    m = df.iloc[0]
    assert (m.src_ip, m.xlate_ip, m.xlate_port, m.needs_ct) == ("10.244.1.71", "172.17.0.4", 42278, 0)
    assert pd.isna(df.iloc[2]["created_ago_s"]) and df.iloc[2]["dst_port"] == 6443


def test_nat_json():
    df = parse_nat(text("nat-list.json"), "n")
    NAT.check(df)
    out = rec(df, direction="OUT")
    assert (out["src_ip"], out["src_port"], out["dst_ip"], out["dst_port"]) == ("10.244.1.71", 42278, "1.1.1.1", 443)
    assert (out["xlate"], out["xlate_ip"], out["xlate_port"], out["created_ago_s"]) == (
        "SRC",
        "172.17.0.4",
        42278,
        None,
    )
    back = rec(df, direction="IN")
    assert (back["xlate"], back["xlate_ip"], back["dst_ip"]) == ("DST", "10.244.1.71", "172.17.0.4")


# ------------------------------------------------------------------------------------- LB


def test_lb_real_117():
    df = parse_lb(text("lb-list.real-1.17.txt"), "kind-worker")
    LB.check(df)
    assert len(df) == 5
    master = rec(df, frontend_ip="10.96.0.10", slot=0)
    assert master == dict(
        node="kind-worker",
        frontend_ip="10.96.0.10",
        frontend_port=53,
        proto="UDP",
        slot=0,
        backend_ip="0.0.0.0",
        backend_port=0,
        backend_id=None,
        rev_nat=3,
        flags="ClusterIP, non-routable",
    )
    b2 = rec(df, frontend_ip="10.96.0.10", slot=2)
    assert (b2["backend_ip"], b2["backend_port"], b2["rev_nat"], b2["flags"]) == ("10.244.0.191", 53, 3, "")
    relay = rec(df, frontend_ip="10.96.218.16")
    assert (relay["proto"], relay["backend_port"], relay["rev_nat"]) == ("TCP", 4245, 11)
    assert rec(df, frontend_ip="10.96.108.211")["proto"] == "ANY"


def test_lb_blog_service_and_json():
    df = parse_lb(text("lb-list.blog-derived.txt"), "n")
    web = df[df.frontend_ip == "10.96.92.233"].sort_values("slot")
    assert list(web["backend_ip"]) == ["0.0.0.0", "10.244.1.182", "10.244.3.135"]
    j = parse_lb(text("lb-list.json"), "n")
    LB.check(j)
    assert sorted(j["slot"]) == [0, 1, 2] and set(j["rev_nat"]) == {3}
    assert rec(j, slot=0)["flags"] == "ClusterIP, non-routable"


def test_service_list_text_and_json():
    df = parse_service_list(text("service-list.kind.txt"), "kind-worker")
    LB.check(df)
    dns = df[df.rev_nat == 15].sort_values("slot")
    assert list(dns["slot"]) == [0, 1, 2]
    assert list(dns["backend_ip"]) == ["0.0.0.0", "10.244.1.82", "10.244.1.102"]
    assert dns.iloc[0]["flags"] == "ClusterIP" and dns.iloc[0]["proto"] == "TCP"
    np_ = rec(df, rev_nat=2)
    assert (np_["frontend_ip"], np_["frontend_port"], np_["flags"]) == ("0.0.0.0", 30464, "NodePort")
    api = df[df.rev_nat == 1]
    assert list(api["backend_port"]) == [0, 6443]
    j = parse_service_list(text("service-list.json"), "kind-worker")
    LB.check(j)
    cols = ["frontend_ip", "frontend_port", "proto", "slot", "backend_ip", "backend_port", "rev_nat", "flags"]
    pd.testing.assert_frame_equal(j[cols], dns[cols].reset_index(drop=True))


# -------------------------------------------------------------------------------- ipcache


def test_ipcache_text_and_json():
    df = parse_ipcache(text("ipcache-list.txt"), "kind-worker")
    IPCACHE.check(df)
    assert len(df) == 7
    remote = rec(df, prefix="10.244.3.135/32")
    assert remote == dict(
        node="kind-worker",
        prefix="10.244.3.135/32",
        identity=32693,
        encrypt_key=0,
        tunnel_endpoint="172.17.0.2",
        flags="<none>",
    )
    assert rec(df, prefix="0.0.0.0/0")["identity"] == 2
    assert set(df["flags"]) == {"<none>"}  # Cilium 1.17 sets no ipcache flags
    assert rec(df, prefix="10.244.3.52/32")["tunnel_endpoint"] == "172.17.0.2"  # a remote router IP
    assert rec(df, prefix="172.17.0.3/32")["identity"] == 7  # the API server's node
    j = parse_ipcache(text("ipcache-list.json"), "kind-worker")
    IPCACHE.check(j)
    assert rec(j, prefix="10.244.1.71/32")["identity"] == 30542


# -------------------------------------------------------------------------------- metrics


def test_metrics_text_sums_per_reason_and_direction():
    df = parse_metrics(text("metrics-list.txt"), "kind-worker")
    METRICS.check(df)
    assert rec(df, reason="Success", direction="EGRESS") == dict(
        node="kind-worker", reason="Success", direction="EGRESS", packets=1582, bytes=215974
    )
    assert rec(df, reason="Interface")["direction"] == "INGRESS"
    assert rec(df, reason="Invalid source ip")["packets"] == 1
    assert len(df) == 4


def test_metrics_json():
    df = parse_metrics(text("metrics-list.json"), "n")
    METRICS.check(df)
    assert rec(df, reason="Success")["packets"] == 1560
    assert rec(df, reason="Invalid source ip")["direction"] == "EGRESS"
    METRICS.check(parse_metrics("", "n"))
