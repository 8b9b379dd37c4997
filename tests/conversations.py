"""Captures of the blog's conversations, crafted packet by packet (no lab needed): what
the eBPF datapath shows on each interface, for plot and widget tests."""

from __future__ import annotations

import pandas as pd

from labkit.capture import Frames, packets_table
from labkit.capture import craft as c

CLIENT, WEB, ROUTER, NODE, API = "10.244.1.71", "10.244.1.182", "10.244.1.113", "172.18.0.3", "172.18.0.2"
CM, CL, WM, WL = "da:15:43:39:36:5e", "32:17:55:23:39:08", "1e:97:a3:67:c6:d1", "a6:25:b4:a1:25:0a"
SAME_NODE = [
    "client-pod:eth0",
    "kind-worker:lxc93b551d233cf",
    "kind-worker:eth0",
    "kind-worker:lxc49626b6ed5ee",
    "webpod-697b545f57-tdbfg:eth0",
]
CLIENT_SIDE = (0, 1, 4)  # client eth0 out, client lxc in, then straight into the server's eth0
SERVER_SIDE = (4, 3, 0)  # server eth0 out, server lxc in, then straight into the client's eth0


def _tcp(src, dst, sp, dp, ident, flags, seq, ack, payload=b""):
    seg = c.tcp(src, dst, sp, dp, flags=flags, seq=seq, ack=ack, payload=payload)
    return c.ip_frame(CM, CL, c.ipv4(src, dst, 6, seg, ident=ident))


def same_node_http() -> pd.DataFrame:
    """curl http://<webpod on the same node>: ARP for the router at the client's lxc, the
    TCP conversation through bpf_redirect_peer, and one unrelated packet on the node's eth0."""
    get = b"GET / HTTP/1.1\r\nHost: 10.244.1.182\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhi!\n"
    cs, ss = 1000, 9000
    conversation = [
        (c.arp(1, CM, CLIENT, "00:00:00:00:00:00", ROUTER), (0, 1)),
        (c.arp(2, CL, ROUTER, CM, CLIENT, eth_dst=CM), (1, 0)),
        (_tcp(CLIENT, WEB, 42278, 80, 1, "S", cs, 0), CLIENT_SIDE),
        (_tcp(WEB, CLIENT, 80, 42278, 0, "SA", ss, cs + 1), SERVER_SIDE),
        (_tcp(CLIENT, WEB, 42278, 80, 2, "A", cs + 1, ss + 1), CLIENT_SIDE),
        (_tcp(CLIENT, WEB, 42278, 80, 3, "PA", cs + 1, ss + 1, get), CLIENT_SIDE),
        (_tcp(WEB, CLIENT, 80, 42278, 7, "A", ss + 1, cs + 1 + len(get)), SERVER_SIDE),
        (_tcp(WEB, CLIENT, 80, 42278, 8, "PA", ss + 1, cs + 1 + len(get), ok), SERVER_SIDE),
        (_tcp(CLIENT, WEB, 42278, 80, 4, "A", cs + 1 + len(get), ss + 1 + len(ok)), CLIENT_SIDE),
        (_tcp(CLIENT, WEB, 42278, 80, 5, "FA", cs + 1 + len(get), ss + 1 + len(ok)), CLIENT_SIDE),
        (_tcp(WEB, CLIENT, 80, 42278, 9, "FA", ss + 1 + len(ok), cs + 2 + len(get)), SERVER_SIDE),
        (_tcp(CLIENT, WEB, 42278, 80, 6, "A", cs + 2 + len(get), ss + 2 + len(ok)), CLIENT_SIDE),
        (_tcp(NODE, API, 51000, 6443, 77, "A", 5, 6), (2,)),  # the kubelet's keepalive: not this conversation
    ]
    rows = [(frame, lane) for frame, lanes in conversation for lane in lanes]
    t = 1_700_000_000_000_000_000
    f = Frames.pack(
        [r[0] for r in rows],
        [t + i * 20_000 for i in range(len(rows))],
        [len(r[0]) for r in rows],
        [r[1] for r in rows],
        [1] * len(rows),
        SAME_NODE,
    )
    return packets_table(f)
