"""How fast a pcap becomes the packet table: labkit vs scapy vs dpkt, same file, same run.

    .venv/bin/python benchmarks/pcap_to_table.py [--packets 1000000] [--scapy-packets 100000]

Writes a synthetic but realistic capture (TCP conversations with Linux options and HTTP on
port 80, UDP, ARP) to a temporary directory, then turns it into a table with each tool.
scapy and dpkt extract the same fields into a DataFrame (time, MACs, proto, IPs, ports, TCP
flags, seq, ack, IP id, length); labkit also builds the tcpdump-like summary of every packet,
which the others do not, so its figure is an upper bound. scapy is slow: it reads a prefix of
the file (``--scapy-packets``) and its time is scaled linearly to the full file (said so in
the output). Needs the ``dev`` extra (scapy, dpkt).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit.capture import Frames, read_packets, write_pcap
from labkit.capture import craft as c

FIELDS = [
    "time",
    "src_mac",
    "dst_mac",
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
]


def synthetic(n: int, seed: int = 7) -> list[bytes]:
    """~70% TCP (handshake, data both ways, FIN), ~25% UDP, ~5% ARP, from 250 hosts."""
    rnd = random.Random(seed)
    hosts = [f"10.244.{i // 250}.{i % 250 + 1}" for i in range(250)]
    macs = [f"0a:58:0a:f4:{i // 250:02x}:{i % 250 + 1:02x}" for i in range(250)]
    out: list[bytes] = []
    ts = 1000
    while len(out) < n:
        r = rnd.random()
        a, b = rnd.sample(range(250), 2)
        if r < 0.22:
            out.append(c.arp(1, macs[a], hosts[a], "00:00:00:00:00:00", hosts[b]))
            out.append(c.arp(2, macs[b], hosts[b], macs[a], hosts[a]))
        elif r < 0.71:
            for _ in range(rnd.randint(1, 8)):
                data = rnd.randbytes(rnd.choice((32, 64, 200, 512, 1200)))
                out.append(
                    c.ip_frame(
                        macs[a],
                        macs[b],
                        c.ipv4(
                            hosts[a],
                            hosts[b],
                            17,
                            c.udp(hosts[a], hosts[b], rnd.randint(32768, 60999), rnd.choice((5000, 7000, 9999)), data),
                            ident=rnd.randrange(65536),
                        ),
                    )
                )
        else:
            ca, sa = hosts[a], hosts[b]
            sp, dp = rnd.randint(32768, 60999), rnd.choice((80, 80, 443, 8443, 9000))
            cs, ss = rnd.randrange(2**32), rnd.randrange(2**32)
            cid, sid = rnd.randrange(65536), rnd.randrange(65536)

            def seg(client: bool, flags: str, payload: bytes = b"", syn: bool = False) -> None:
                nonlocal cs, ss, cid, sid, ts
                ts += 1
                src, dst = (ca, sa) if client else (sa, ca)
                sport, dport = (sp, dp) if client else (dp, sp)
                seq, ack = (cs, ss) if client else (ss, cs)
                opts = c.syn_options(ts_val=ts) if syn else c.ts_options(ts, ts - 1)
                ident = cid if client else sid
                out.append(
                    c.ip_frame(
                        macs[a] if client else macs[b],
                        macs[b] if client else macs[a],
                        c.ipv4(
                            src,
                            dst,
                            6,
                            c.tcp(
                                src,
                                dst,
                                sport,
                                dport,
                                flags=flags,
                                seq=seq,
                                ack=ack if "A" in flags else 0,
                                options=opts,
                                payload=payload,
                            ),
                            ident=ident,
                        ),
                    )
                )
                step = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
                if client:
                    cs, cid = (cs + step) % 2**32, (cid + 1) % 65536
                else:
                    ss, sid = (ss + step) % 2**32, (sid + 1) % 65536

            seg(True, "S", syn=True)
            seg(False, "SA", syn=True)
            seg(True, "A")
            seg(True, "PA", b"GET /%d HTTP/1.1\r\nHost: webpod\r\nUser-Agent: curl/8.7\r\n\r\n" % rnd.randrange(999))
            seg(False, "A")
            for _ in range(rnd.randint(1, 12)):
                seg(
                    False,
                    "PA" if rnd.random() < 0.3 else "A",
                    b"HTTP/1.1 200 OK\r\n\r\n" + bytes(rnd.choice((100, 600, 1400))),
                )
                seg(True, "A")
            seg(True, "FA")
            seg(False, "FA")
            seg(True, "A")
    return out[:n]


def labkit_table(path: Path) -> pd.DataFrame:
    return read_packets(path)


def dpkt_table(path: Path) -> pd.DataFrame:
    import dpkt

    cols: dict[str, list] = {k: [] for k in FIELDS}
    with open(path, "rb") as fh:
        for ts, raw in dpkt.pcap.UniversalReader(fh):
            eth = dpkt.ethernet.Ethernet(raw)
            row = dict.fromkeys(FIELDS)
            row.update(time=float(ts), src_mac=eth.src.hex(":"), dst_mac=eth.dst.hex(":"), length=len(raw))
            l3 = eth.data
            if isinstance(l3, dpkt.arp.ARP):
                row.update(proto="ARP", src_ip=dpkt.utils.inet_to_str(l3.spa), dst_ip=dpkt.utils.inet_to_str(l3.tpa))
            elif isinstance(l3, dpkt.ip.IP):
                row.update(src_ip=dpkt.utils.inet_to_str(l3.src), dst_ip=dpkt.utils.inet_to_str(l3.dst), ip_id=l3.id)
                l4 = l3.data
                if isinstance(l4, dpkt.tcp.TCP):
                    row.update(
                        proto="TCP", src_port=l4.sport, dst_port=l4.dport, tcp_flags=l4.flags, seq=l4.seq, ack=l4.ack
                    )
                elif isinstance(l4, dpkt.udp.UDP):
                    row.update(proto="UDP", src_port=l4.sport, dst_port=l4.dport)
                else:
                    row.update(proto=str(l3.p))
            for k in FIELDS:
                cols[k].append(row[k])
    return pd.DataFrame(cols)


def scapy_table(path: Path, count: int) -> pd.DataFrame:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import rdpcap

    cols: dict[str, list] = {k: [] for k in FIELDS}
    for p in rdpcap(str(path), count=count):
        row = dict.fromkeys(FIELDS)
        row.update(time=float(p.time), length=len(p))
        if Ether in p:
            row.update(src_mac=p[Ether].src, dst_mac=p[Ether].dst)
        if ARP in p:
            row.update(proto="ARP", src_ip=p[ARP].psrc, dst_ip=p[ARP].pdst)
        elif IP in p:
            ip = p[IP]
            row.update(src_ip=ip.src, dst_ip=ip.dst, ip_id=ip.id, proto=str(ip.proto))
            if TCP in p:
                t = p[TCP]
                row.update(
                    proto="TCP", src_port=t.sport, dst_port=t.dport, tcp_flags=str(t.flags), seq=t.seq, ack=t.ack
                )
            elif UDP in p:
                row.update(proto="UDP", src_port=p[UDP].sport, dst_port=p[UDP].dport)
        for k in FIELDS:
            cols[k].append(row[k])
    return pd.DataFrame(cols)


def timed(fn, *args) -> tuple[float, pd.DataFrame]:
    t = time.perf_counter()
    df = fn(*args)
    return time.perf_counter() - t, df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--scapy-packets", type=int, default=100_000, help="prefix scapy reads (time scaled)")
    args = ap.parse_args()
    n, ns = args.packets, min(args.scapy_packets, args.packets)
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        t = time.perf_counter()
        frames = synthetic(n)
        path = write_pcap(
            Path(tmp) / "bench.pcap",
            Frames.pack(
                frames,
                1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 20_000,
                [len(f) for f in frames],
                np.zeros(n),
                np.zeros(n),
                ["bench"],
            ),
        )
        prefix = write_pcap(
            Path(tmp) / "prefix.pcap",
            Frames.pack(
                frames[:ns],
                1_700_000_000_000_000_000 + np.arange(ns, dtype=np.int64) * 20_000,
                [len(f) for f in frames[:ns]],
                np.zeros(ns),
                np.zeros(ns),
                ["bench"],
            ),
        )
        del frames
        size = path.stat().st_size
        print(f"synthetic pcap: {n:,} packets, {size / 1e6:.1f} MB, written in {time.perf_counter() - t:.1f} s")

        t_lab, df = timed(labkit_table, path)
        counts = df["proto"].value_counts().to_dict()
        print(f"mix: {', '.join(f'{k} {v:,}' for k, v in counts.items())}")
        t_lab_prefix, _ = timed(labkit_table, prefix)
        t_dpkt, dfd = timed(dpkt_table, path)
        t_scapy_prefix, dfs = timed(scapy_table, prefix, ns)
        assert len(df) == len(dfd) == n and len(dfs) == ns
        assert (df["seq"].fillna(0).to_numpy() == dfd["seq"].fillna(0).to_numpy()).all()
        assert df["src_ip"].tolist()[:ns] == dfs["src_ip"].fillna("").tolist()
        t_scapy = t_scapy_prefix * n / ns

        def rate(sec: float, k: int) -> str:
            return f"{sec:8.2f} s  ({k / sec / 1e3:8.1f} k packets/s)"

        print(f"labkit  {n:>9,} packets: {rate(t_lab, n)}  (read + decode + tcpdump summaries)")
        print(f"dpkt    {n:>9,} packets: {rate(t_dpkt, n)}  (fields only)")
        print(
            f"scapy   {ns:>9,} packets: {rate(t_scapy_prefix, ns)}  (fields only; labkit on the same "
            f"prefix: {t_lab_prefix:.2f} s)"
        )
        scaled = " (scaled from the prefix)" if ns < n else ""
        print(f"scapy   {n:>9,} packets: {t_scapy:8.2f} s{scaled}")
        print(
            f"ratios: labkit is {t_scapy / t_lab:.0f}x faster than scapy{scaled}, "
            f"{t_scapy_prefix / t_lab_prefix:.0f}x on the same prefix, {t_dpkt / t_lab:.1f}x faster than dpkt "
            f"(target: >=10x scapy: {'met' if t_scapy / t_lab >= 10 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
