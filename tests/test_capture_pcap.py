"""pcap/pcapng files: ours read back by real tcpdump (same lines), tcpdump's read by us."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from labkit.capture import Frames, packets_table, read_packets, read_pcap, write_pcap, write_pcapng
from labkit.capture import craft as c
from labkit.capture.frames import DIR_IN, DIR_OUT, DIR_UNKNOWN
from labkit.capture.lines import format_lines
from labkit.errors import LabError

A_MAC, B_MAC = "0a:58:0a:f4:01:47", "be:8f:11:22:33:44"
A, B = "10.244.1.71", "10.244.1.182"
T0 = 1_700_000_000_000_000_000


def _tcpdump() -> str:
    path = shutil.which("tcpdump")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have tcpdump (apt-get install tcpdump)")
        pytest.skip("needs tcpdump")
    return path


def conversation() -> list[bytes]:
    def tcp(src, dst, sp, dp, ident, **kw):
        smac, dmac = (A_MAC, B_MAC) if src == A else (B_MAC, A_MAC)
        return c.ip_frame(smac, dmac, c.ipv4(src, dst, 6, c.tcp(src, dst, sp, dp, **kw), ident=ident))

    return [
        c.arp(1, A_MAC, A, "00:00:00:00:00:00", B),
        c.arp(2, B_MAC, B, A_MAC, A),
        tcp(A, B, 42278, 80, 100, flags="S", seq=11, options=c.syn_options(ts_val=5)),
        tcp(B, A, 80, 42278, 0, flags="SA", seq=77, ack=12, options=c.syn_options(ts_val=9, ts_ecr=5)),
        tcp(A, B, 42278, 80, 101, flags="A", seq=12, ack=78, options=c.ts_options(6, 9)),
        tcp(
            A,
            B,
            42278,
            80,
            102,
            flags="PA",
            seq=12,
            ack=78,
            options=c.ts_options(6, 9),
            payload=b"GET / HTTP/1.1\r\nHost: web\r\nUser-Agent: curl/8\r\n\r\n",
        ),
        tcp(
            B,
            A,
            80,
            42278,
            1,
            flags="PA",
            seq=78,
            ack=61,
            options=c.ts_options(10, 6),
            payload=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
        ),
        tcp(B, A, 80, 42278, 2, flags="PA", seq=120, ack=61, payload=b"\x00\x01binary"),
        tcp(A, B, 42278, 80, 103, flags="FA", seq=61, ack=128, options=c.ts_options(7, 10)),
        tcp(A, B, 42278, 80, 104, flags="RA", seq=62, ack=128),
        tcp(A, B, 5000, 6000, 105, flags="A", seq=1, ack=2, options=b"\x01\x01\x05\x0a" + bytes(range(8))),
        c.ip_frame(A_MAC, B_MAC, c.ipv4(A, B, 17, c.udp(A, B, 40000, 9999, b"hello"), ident=3)),
        c.ip_frame(A_MAC, B_MAC, c.ipv4(A, B, 1, c.icmp_echo(7, 1, bytes(56)), ident=4)),
        c.ip_frame(B_MAC, A_MAC, c.ipv4(B, A, 1, c.icmp_echo(7, 1, bytes(56), reply=True), ident=5)),
    ]


def frames_of(data: list[bytes], points=("a:eth0",), snap: int | None = None) -> Frames:
    n = len(data)
    cut = [d[:snap] if snap else d for d in data]
    return Frames.pack(
        cut,
        [T0 + 123_456_789 * i + 999 for i in range(n)],
        [len(d) for d in data],
        [i % len(points) for i in range(n)],
        [DIR_OUT, DIR_IN, DIR_UNKNOWN] * (n // 3) + [DIR_OUT] * (n % 3),
        list(points),
    )


def tcpdump_lines(path) -> list[str]:
    r = subprocess.run([_tcpdump(), "-nS", "-r", str(path)], capture_output=True, text=True, check=True)
    return r.stdout.splitlines()


@pytest.mark.parametrize("writer", [write_pcap, write_pcapng])
def test_tcpdump_reads_our_files_and_prints_our_lines(tmp_path, writer):
    frames = frames_of(conversation())
    path = writer(tmp_path / "cap", frames)
    ours = format_lines(frames.time_ns, packets_table(frames)["summary"])
    assert tcpdump_lines(path) == ours
    assert "ARP, Request who-has 10.244.1.182 tell 10.244.1.71, length 28" in ours[0]
    assert ours[5].endswith("length 49: HTTP: GET / HTTP/1.1")


@pytest.mark.parametrize("writer", [write_pcap, write_pcapng])
def test_round_trip(tmp_path, writer):
    frames = frames_of(conversation(), points=("a:eth0", "b:eth0"))
    back = read_pcap(writer(tmp_path / "f", frames))
    assert [back.frame(i) for i in range(len(back))] == [frames.frame(i) for i in range(len(frames))]
    assert back.time_ns.tolist() == frames.time_ns.tolist()
    assert back.origlen.tolist() == frames.origlen.tolist()
    if writer is write_pcapng:  # pcapng keeps the point names and directions
        assert back.points == ["a:eth0", "b:eth0"]
        assert back.point.tolist() == frames.point.tolist()
        assert back.direction.tolist() == frames.direction.tolist()
    else:
        assert back.points == ["f"] and set(back.point.tolist()) == {0}


@pytest.mark.parametrize("snap", [40, 50, 55, 56, 58, 60, 64, 70, 80, 90])
def test_snaplen_keeps_wire_length_and_tcpdump_text(tmp_path, snap):
    frames = frames_of(conversation(), snap=snap)
    df = read_packets(write_pcap(tmp_path / "snap.pcap", frames))
    assert df["length"].tolist() == [len(d) for d in conversation()]
    assert tcpdump_lines(tmp_path / "snap.pcap") == format_lines(frames.time_ns, df["summary"])


def test_we_read_what_tcpdump_writes(tmp_path):
    ours = write_pcap(tmp_path / "ours.pcap", frames_of(conversation()))
    theirs = tmp_path / "theirs.pcap"
    subprocess.run([_tcpdump(), "-r", str(ours), "-w", str(theirs)], capture_output=True, check=True)
    assert struct.unpack("<I", theirs.read_bytes()[:4])[0] == 0xA1B2C3D4  # microsecond pcap
    a, b = read_packets(ours), read_packets(theirs, point="ours")
    cols = [
        "point",
        "src_mac",
        "proto",
        "src_ip",
        "dst_ip",
        "src_port",
        "dst_port",
        "tcp_flags",
        "seq",
        "ack",
        "ip_id",
        "length",
        "summary",
    ]
    assert a[cols].equals(b[cols])
    assert np.allclose(a["time"], b["time"], atol=1e-6)


def test_big_endian_microsecond_pcap(tmp_path):
    data = conversation()[:3]
    blob = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, d in enumerate(data):
        blob += struct.pack(">IIII", 1_700_000_000 + i, 250_000, len(d), len(d)) + d
    (tmp_path / "be.pcap").write_bytes(blob)
    df = read_packets(tmp_path / "be.pcap")
    assert df["time"].tolist() == [1_700_000_000.25, 1_700_000_001.25, 1_700_000_002.25]
    assert df["summary"][2].startswith("IP 10.244.1.71.42278 > 10.244.1.182.80: Flags [S], seq 11,")
    assert df["point"].unique().tolist() == ["be"]


def test_truncated_last_record_is_dropped(tmp_path):
    path = write_pcap(tmp_path / "cut.pcap", frames_of(conversation()))
    path.write_bytes(path.read_bytes()[:-5])
    assert len(read_pcap(path)) == len(conversation()) - 1


def test_bad_files_raise_one_line(tmp_path):
    (tmp_path / "junk.pcap").write_bytes(b"not a capture file at all, sorry")
    with pytest.raises(LabError, match="not a pcap or pcapng file"):
        read_pcap(tmp_path / "junk.pcap")
    with pytest.raises(LabError, match="cannot read capture file"):
        read_pcap(tmp_path / "missing.pcap")
    sll = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113)
    (tmp_path / "sll.pcap").write_bytes(sll)
    with pytest.raises(LabError, match="not Ethernet") as e:
        read_pcap(tmp_path / "sll.pcap")
    assert "\n" not in str(e.value)
