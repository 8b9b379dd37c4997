"""labkit trace without a kernel: the filter language, tracefs formats, the offsets read
from the verifier's rewrite, the namespace patch, naming and joining events, the
timeline, and the CLI's and the kind backend's one-line answers."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit import tables
from labkit.cli import main
from labkit.cli.trace import text
from labkit.embedded.ebpf import kstruct, skbfilter, tracefs, tracepath, tracer
from labkit.errors import LabError
from labkit.plots.trace import merge_lanes, timeline

FIXTURES = Path(__file__).parent / "fixtures" / "tracefs"
TCP, UDP, ICMP = 6, 17, 1


def pkt(proto=TCP, saddr="10.244.1.71", daddr="10.244.1.182", sport=41234, dport=80, ethertype=0x0800):
    return {
        "ethertype": ethertype,
        "proto": proto,
        "saddr": saddr,
        "daddr": daddr,
        "sport": sport,
        "dport": dport,
        "has_ports": proto in (TCP, UDP) and ethertype == 0x0800,
    }


# ------------------------------------------------------------------ the filter
@pytest.mark.parametrize(
    "expr, yes, no",
    [
        ("tcp and port 80", pkt(), pkt(proto=UDP, dport=53)),
        ("tcp and port 80", pkt(sport=80, dport=5000), pkt(dport=81)),
        ("udp dst port 53", pkt(proto=UDP, dport=53), pkt(proto=UDP, sport=53, dport=4000)),
        ("src host 10.244.1.71", pkt(), pkt(saddr="10.244.1.182", daddr="10.244.1.71")),
        ("host 10.244.1.71 and not icmp", pkt(), pkt(proto=ICMP)),
        ("net 10.244.3.0/24", pkt(daddr="10.244.3.135"), pkt()),
        ("dst 10.244.1.182", pkt(), pkt(daddr="10.244.1.183")),
        ("tcp portrange 8000-8080", pkt(dport=8080), pkt(dport=8081)),
        ("arp or (icmp and host 10.244.3.5)", pkt(ethertype=0x0806, proto=0), pkt(proto=ICMP)),
        ("src and dst net 10.244.0.0/16", pkt(), pkt(daddr="172.18.0.3")),
        ("! tcp || port 53", pkt(proto=UDP, dport=9), pkt()),
        ("ip", pkt(proto=ICMP), pkt(ethertype=0x0806)),
    ],
)
def test_the_filter_means_what_pcap_means(expr, yes, no):
    node = skbfilter.parse(expr)
    assert skbfilter.matches(node, yes) and not skbfilter.matches(node, no)


def test_and_binds_tighter_than_or_and_not_tightest():
    node = skbfilter.parse("udp or tcp and port 81")
    assert skbfilter.matches(node, pkt(proto=UDP, dport=1)) and not skbfilter.matches(node, pkt(dport=80))
    assert not skbfilter.matches(skbfilter.parse("not tcp and port 80"), pkt())


def test_no_filter_is_every_packet():
    assert skbfilter.parse("  ") is None and skbfilter.matches(None, pkt(ethertype=0x86DD))
    assert skbfilter.cflags(None) == [] and skbfilter.to_c(None) == "1"


def test_the_c_comes_from_the_tree_never_from_the_text():
    (flag,) = skbfilter.cflags(skbfilter.parse("tcp and host 10.244.1.71 and port 80"))
    assert flag.startswith("-DLKT_FILTER(p)=")
    assert "10.244.1.71" not in flag and "tcp" not in flag  # numbers, not words
    assert flag.count("(") == flag.count(")")
    assert "bpf_ntohs(p->sport) == 80" in flag and "p->proto == 6" in flag


@pytest.mark.parametrize(
    "expr, says",
    [
        ("tcp and prot 80", "unknown word 'prot'"),
        ("port 99999", "0-65535"),
        ("host 10.244.1", "not an IPv4 address"),
        ("(tcp", "missing ')'"),
        ("tcp and", "expected a primitive"),
        ("udp port 80 80", "unexpected '80'"),
        ("host 10.0.0.0/8", "write net 10.0.0.0/8"),
        ("tcp; rm -rf /", "unknown word 'tcp;'"),
    ],
)
def test_a_bad_filter_is_one_line_naming_the_problem(expr, says):
    with pytest.raises(LabError) as e:
        skbfilter.parse(expr)
    msg = str(e.value)
    assert says in msg and "\n" not in msg and "labkit trace knows" in msg and e.value.exit_code == 2


# ------------------------------------------------------------------ tracefs
def test_formats_parse_from_a_real_tracefs(monkeypatch):
    monkeypatch.setenv("LABKIT_TRACEFS", str(FIXTURES))
    f = tracefs.read_formats()
    assert set(f) == set(tracefs.NEEDED)
    rx = f["net:netif_receive_skb"]
    assert rx.id > 0 and rx.fields["skbaddr"].offset == 8 and rx.fields["name"].data_loc
    assert f["fib:fib_table_lookup"].fields["src"].size == 4
    reasons = f["skb:kfree_skb"].symbols("reason")
    assert reasons[3] == "NO_SOCKET" and "TC_INGRESS" in reasons.values()
    flags = tracefs.cflags(f)
    assert "-DOFF_netif_receive_skb_skbaddr=8" in flags and len(flags) == sum(map(len, tracefs.NEEDED.values()))


def test_a_kernel_without_a_tracepoint_is_one_line_naming_it(monkeypatch, tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "tfs")
    shutil.rmtree(tmp_path / "tfs" / "events" / "fib")
    monkeypatch.setenv("LABKIT_TRACEFS", str(tmp_path / "tfs"))
    with pytest.raises(LabError) as e:
        tracefs.read_formats()
    assert "no tracepoint fib:fib_table_lookup" in str(e.value) and "\n" not in str(e.value)


def test_a_tracepoint_without_a_field_is_one_line(monkeypatch, tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "tfs")
    fmt = tmp_path / "tfs" / "events" / "skb" / "kfree_skb" / "format"
    fmt.write_text("\n".join(x for x in fmt.read_text().splitlines() if "reason;" not in x))
    monkeypatch.setenv("LABKIT_TRACEFS", str(tmp_path / "tfs"))
    with pytest.raises(LabError, match="skb:kfree_skb has no field reason"):
        tracefs.read_formats()


# ------------------------------------------------------------------ kernel offsets, namespace patch
def insn(op, dst, src, off, imm=0):
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def test_offsets_come_from_the_verifiers_rewrite():
    # r2 = *(u64 *)(r1 + 16); if r2 == 0 goto +1; r2 = *(u32 *)(r2 + 224); exit
    xlated = insn(0x79, 2, 1, 16) + insn(0x15, 2, 0, 1) + insn(0x61, 2, 2, 224) + insn(0x95, 0, 0, 0)
    assert kstruct.from_xlated(xlated) == kstruct.Offsets(16, 224)
    assert kstruct.Offsets(16, 224).cflags() == ["-DSKB_DEV_OFF=16", "-DDEV_IFINDEX_OFF=224"]
    with pytest.raises(LabError, match="does not know this kernel"):
        kstruct.from_xlated(insn(0x61, 0, 1, 40) + insn(0x95, 0, 0, 0))


def test_the_namespace_number_is_patched_into_every_copy_of_the_placeholder():
    lo, hi = tracer.NETNS_PLACEHOLDER & 0xFFFFFFFF, tracer.NETNS_PLACEHOLDER >> 32
    ld = struct.pack("<BBhI", 0x18, 1, 0, lo) + struct.pack("<BBhI", 0, 0, 0, hi)
    code = ld + insn(0x7B, 10, 1, -8) + ld + insn(0x95, 0, 0, 0)
    out = tracer.patch_netns(code, 7)
    assert len(out) == len(code)
    for at in (0, 24):
        assert struct.unpack_from("<I", out, at + 4)[0] == 7 and struct.unpack_from("<I", out, at + 12)[0] == 0
    with pytest.raises(LabError, match="placeholder"):
        tracer.patch_netns(insn(0x95, 0, 0, 0), 1)


@pytest.mark.parametrize("seconds, events", [(0, 10), (-1, 10), (301, 10), (5, 0), (5, 2_000_000), ("5", 10)])
def test_bounds_are_checked(seconds, events):
    with pytest.raises(LabError):
        tracer.check_bounds(seconds, events)


def test_default_bounds():
    assert tracer.check_bounds(None, None) == (tracer.DEFAULT_SECONDS, tracer.DEFAULT_EVENTS)


# ------------------------------------------------------------------ events -> rows
CLIENT = tracepath.LabNetns("lk.x.pod.native.client-pod", "client-pod", "kind-worker", 1, {2: "eth0"})
NODE = tracepath.LabNetns(
    "lk.x.node.kind-worker",
    "kind-worker",
    "kind-worker",
    2,
    {2: "eth0", 6: "lxcaaaa"},
    {("lxcaaaa", "ingress"): "cil_from_container"},
)
SERVER = tracepath.LabNetns("lk.x.pod.native.web", "web", "kind-worker", 3, {2: "eth0"})
DEV = {"client": 0xFFFF1000, "lxc": 0xFFFF2000, "server": 0xFFFF3000}
IPS = ("10.244.1.71", "10.244.1.182")


def ev(kind, ts, dev=0, netns=0, ifindex=0, name=b"", packet=(1 << 32) | 5, skb=0xFFFF8888, **kw):
    e = np.zeros(1, dtype=tracepath.EVENT)[0]
    e["kind"], e["ts"], e["dev"], e["netns"], e["ifindex"], e["name"] = kind, ts, dev, netns, ifindex, name
    e["packet"], e["skb"], e["comm"] = packet, skb, b"curl"
    e["addr1"], e["addr2"] = (int.from_bytes(bytes(map(int, a.split("."))), "big") for a in IPS)
    e["ethertype"], e["proto"], e["sport"], e["dport"], e["tcp_flags"], e["seq"] = 0x0800, 6, 41234, 80, 2, 77
    for k, v in kw.items():
        e[k] = v
    return e


def syn_events() -> np.ndarray:
    """A SYN's way on the eBPF datapath, as the kernel reports it (addresses, numbers)."""
    return np.array(
        [
            ev(2, 1000, DEV["client"], 1, 2, len=74),
            ev(10, 2000, DEV["client"], name=b"eth0", len=74),
            ev(12, 3000, DEV["lxc"], name=b"lxcaaaa", len=60),
            ev(1, 4000, DEV["lxc"], 2, 6, len=74),
            ev(1, 5000, DEV["server"], 3, 2, len=74),
            ev(30, 6000, DEV["server"], name=b"eth0", arg2=254),
            ev(20, 7000, 0, arg=3, location=0),
            ev(2, 8000, DEV["server"], 3, 2, packet=(0 << 32) | 9, skb=0xFFFF9999, tcp_flags=0x12),
        ],
        dtype=tracepath.EVENT,
    )


def formats(monkeypatch) -> dict:
    monkeypatch.setenv("LABKIT_TRACEFS", str(FIXTURES))
    return tracefs.read_formats()


def test_events_are_named_by_the_labs_namespaces_and_interfaces(monkeypatch):
    mark = tracepath.Mark("kind-worker", 0.5, (6, 0, 77, 0, 2), "redirect to endpoint 9 (bpf_redirect_peer)", "")
    rows = tracepath.rows(syn_events(), [CLIENT, NODE, SERVER], formats(monkeypatch), 0, [mark], lambda a: "tcp_v4_rcv")
    df = tables.TRACE.frame(rows)
    tables.TRACE.check(df)
    where = list(zip(df.netns, df.interface))
    assert where[:6] == [
        ("client-pod", "eth0"),
        ("client-pod", "eth0"),
        ("kind-worker", "lxcaaaa"),  # the name alone would not tell which eth0 / namespace
        ("kind-worker", "lxcaaaa"),
        ("web", "eth0"),
        ("web", "eth0"),
    ]
    assert where[6] == ("web", "eth0")  # a free without a device: where the packet was last
    assert list(df.packet) == [1] * 7 + [2]  # numbered in the order packets appear
    assert set(df.tuple[:7]) == {"10.244.1.71:41234->10.244.1.182:80(tcp)"} and df.tcp_flags[7] == "[S.]"
    hook = df.iloc[3]
    assert (hook.event, hook.hook, hook.verdict) == ("tc:ingress", "cil_from_container", mark.verdict)
    assert df.iloc[4].hook == "" and df.iloc[4].verdict == ""  # no datapath program in the pod
    free = df.iloc[6]
    assert (free.free, free.drop_reason, free.detail) == ("dropped", "NO_SOCKET", "by tcp_v4_rcv")
    assert "table main" in df.iloc[5].detail and pd.isna(df.iloc[5].length)


def test_a_datapath_mark_joins_only_its_own_packet_and_node(monkeypatch):
    other_node = tracepath.Mark("kind-worker2", 0.5, (6, 0, 77, 0, 2), "drop", "Is a ClusterIP")
    other_packet = tracepath.Mark("kind-worker", 0.5, (6, 0, 78, 0, 2), "drop", "Is a ClusterIP")
    before = tracepath.Mark("kind-worker", -1.0, (6, 0, 77, 0, 2), "drop", "Is a ClusterIP")
    df = tables.TRACE.frame(
        tracepath.rows(
            syn_events(), [CLIENT, NODE, SERVER], formats(monkeypatch), 0, [other_node, other_packet, before]
        )
    )
    assert set(df.verdict) == {""}


def test_frame_key_matches_what_the_hook_records():
    from labkit.capture import craft

    seg = craft.tcp("10.244.1.71", "10.244.1.182", 41234, 80, seq=77, ack=5, flags="S")
    frame = craft.ip_frame(
        "02:00:00:00:00:01", "02:00:00:00:00:02", craft.ipv4("10.244.1.71", "10.244.1.182", 6, seg, ident=4242)
    )
    assert tracepath.frame_key(frame) == (6, 4242, 77, 5, 0x02)
    assert tracepath.frame_key(b"\0" * 12 + b"\x08\x06" + b"\0" * 28) is None


# ------------------------------------------------------------------ views
def test_the_timeline_keeps_the_lanes_asked_for_and_marks_the_missed_ones(monkeypatch):
    df = tables.TRACE.frame(tracepath.rows(syn_events(), [CLIENT, NODE, SERVER], formats(monkeypatch), 0))
    lanes = ["client-pod:eth0", "kind-worker:lxcaaaa", "kind-worker:eth0", "kind-worker:lxcbbbb", "web:eth0"]
    fig = timeline(df, packets=[1], lanes=lanes)
    assert fig.layout.meta["lanes"] == lanes and fig.layout.meta["packets"] == [1]
    assert fig.layout.meta["empty"] == ["kind-worker:eth0", "kind-worker:lxcbbbb"]
    path = fig.data[0]
    assert list(path.y) == [0, 0, 1, 1, 4, 4, 4]  # the SYN's lanes, in time order
    assert "cil_from_container" in path.text and "route" in path.text


def test_lanes_only_the_packets_reached_go_after_the_lane_before_them():
    seen = ["a:eth0", "n1:eth0", "kind-network:v1", "kind-network:v2", "n2:eth0"]
    assert merge_lanes(["a:eth0", "n1:eth0", "n2:eth0", "n2:lxc"], seen) == [
        "a:eth0",
        "n1:eth0",
        "kind-network:v1",
        "kind-network:v2",
        "n2:eth0",
        "n2:lxc",
    ]


def test_the_cli_text_is_one_line_per_event(monkeypatch):
    df = tables.TRACE.frame(tracepath.rows(syn_events(), [CLIENT, NODE, SERVER], formats(monkeypatch), 0))
    lines = text(df).splitlines()
    assert lines[0].split()[:4] == ["TIME(MS)", "PACKET", "SKB", "CPU"] and len(lines) == 1 + len(df)
    assert "net:netif_rx" in lines[3] and "kind-worker" in lines[3]
    assert text(df.iloc[0:0]).startswith("no packet matched")


# ------------------------------------------------------------------ one-line answers
def test_the_kind_backend_says_what_to_run_there(monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
    from fakes import Fakes

    from labkit.live.backend import KindBackend

    Fakes(monkeypatch, tmp_path).clusters("kind")
    be = KindBackend(lab="kind", use_k8s_client=False)
    assert not be.capabilities.trace
    with pytest.raises(LabError) as e:
        be.trace(["client-pod:eth0"], filter="tcp and port 80")
    assert "pwru" in str(e.value) and "'tcp and port 80'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["trace", "--lab", "nosuchlab7", "--filter", "tcp and prot 80"], "unknown word 'prot'"),
        (["trace", "--lab", "nosuchlab7", "--seconds", "-1"], "--seconds"),
        (["trace", "--lab", "nosuchlab7", "--", "curl", "x"], "--in POD"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
