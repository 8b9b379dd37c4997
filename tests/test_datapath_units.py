"""The eBPF datapath's pure parts (no root): source inlining, Cilium text. (C layouts against
layouts.py: test_bpf_layouts.py; programs on packets: test_bpf_prog_run.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from labkit import tables
from labkit.cilium import text as fmt
from labkit.cilium.monitor import connection_summary, dissect
from labkit.embedded.ebpf import source
from labkit.live import parse_bpf

FIX = Path(__file__).parent / "fixtures" / "live" / "cilium"


def test_every_program_source_inlines_its_headers_once_with_line_markers():
    for name in ("bpf_lxc.c", "bpf_host.c", "bpf_sock.c"):
        text = source.program_text(name)
        assert '#include "' not in text
        assert text.count("#define LK_MAPS_H") == 1
        assert f'#line 1 "{name}"' in text and '#line 1 "lib/common.h"' in text


def test_endpoint_list_prints_like_the_blog():
    rows = [
        dict(
            node="kind-worker",
            ip="10.244.1.182",
            endpoint_id=359,
            identity=32693,
            flags=0,
            ifindex=9,
            mac="1E:97:A3:67:C6:D1",
            node_mac="A6:25:B4:A1:25:0A",
            is_host=False,
        ),
        dict(node="kind-worker", ip="10.244.1.113", flags=1, is_host=True),
    ]
    df = tables.ENDPOINTS.frame(rows)
    text = fmt.endpoint_list(df)
    blog = (FIX / "endpoint-list.blog-1.17.6.txt").read_text()
    want = [ln for ln in blog.splitlines() if ln.startswith("10.244.1.182")][0]
    got = [ln for ln in text.splitlines() if ln.startswith("10.244.1.182")][0]
    assert got.split() == want.split()
    assert '"id=359   sec_id=32693 flags=0x0000 ifindex=9   mac=' in fmt.endpoint_list(df, "json")
    assert parse_bpf.parse_endpoints(text, "kind-worker").equals(df)


def test_ct_text_roundtrips_through_the_live_parser():
    text = (FIX / "ct-list.v1.17.txt").read_text()
    df = parse_bpf.parse_ct(text, "kind-worker")
    out = fmt.ct_list(df)
    assert parse_bpf.parse_ct(out, "kind-worker").equals(df)
    assert out.splitlines()[0].endswith("BackendID=0 ") and out.splitlines()[0].startswith(
        "TCP OUT 10.244.1.71:42278 -> 10.244.1.182:80 expires=16789 Packets=0 Bytes=0 RxFlagsSeen=0x1b "
    )
    assert parse_bpf.parse_ct(fmt.ct_list(df, "json"), "kind-worker").equals(df)


def test_nat_lb_ipcache_service_text_parse_back():
    nat = parse_bpf.parse_nat((FIX / "nat-list.derived-masq.txt").read_text(), "n")
    assert parse_bpf.parse_nat(fmt.nat_list(nat.iloc[:2]), "n").equals(nat.iloc[:2].reset_index(drop=True))
    lb = parse_bpf.parse_lb((FIX / "lb-list.blog-derived.txt").read_text(), "n")
    text = fmt.lb_list(lb, {})
    assert re.search(
        r"^10\.96\.92\.233:80/TCP \(0\)   +0\.0\.0\.0:0 \(7\) \(0\) \[ClusterIP, non-routable\] +$", text, re.M
    )
    assert parse_bpf.parse_lb(text, "n").equals(lb)
    ipc = parse_bpf.parse_ipcache((FIX / "ipcache-list.txt").read_text(), "n")
    assert parse_bpf.parse_ipcache(fmt.ipcache_list(ipc), "n").equals(ipc)
    svc = fmt.service_list(lb)
    assert re.search(r"^7\s+10\.96\.92\.233:80/TCP\s+ClusterIP\s+1 => 10\.244\.1\.182:80/TCP \(active\)", svc, re.M)


def test_metrics_text_has_cilium_columns():
    raw = pd.DataFrame(
        [
            {"reason": "Success", "direction": "INGRESS", "packets": 3, "bytes": 180, "line": 63, "file": "bpf_lxc.c"},
            {
                "reason": "Interface",
                "direction": "INGRESS",
                "packets": 12,
                "bytes": 900,
                "line": 33,
                "file": "bpf_host.c",
            },
            {"reason": "Success", "direction": "EGRESS", "packets": 10, "bytes": 800, "line": 54, "file": "bpf_lxc.c"},
        ]
    )
    text = fmt.metrics_list(raw)
    lines = text.splitlines()
    assert lines[0].split() == ["REASON", "DIRECTION", "PACKETS", "BYTES", "LINE", "FILE"]
    # bpf_metrics_list.go sorts rows as strings, column by column
    assert [ln.split()[:2] for ln in lines[1:]] == [
        ["Interface", "INGRESS"],
        ["Success", "EGRESS"],
        ["Success", "INGRESS"],
    ]
    assert not lines[-1].endswith(" ")  # the last column is not padded
    assert len(parse_bpf.parse_metrics(text, "n")) == 3


def test_connection_summary_like_cilium():
    import socket
    import struct

    eth = bytes(6) + bytes(6) + b"\x08\x00"
    ip = (
        bytes([0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0])
        + socket.inet_aton("10.244.1.71")
        + socket.inet_aton("10.244.1.182")
    )
    tcp = struct.pack(">HHIIBB", 42278, 80, 1, 0, 0xA0, 0x12) + bytes(6)
    assert connection_summary(dissect(eth + ip + tcp)) == "10.244.1.71:42278 -> 10.244.1.182:80 tcp SYN, ACK"
