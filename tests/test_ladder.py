"""The ladder diagram: lanes, one arrow per packet across the points that saw it, x marks."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from labkit.capture import Frames, packets_table
from labkit.capture import craft as c
from labkit.plots.ladder import ladder, packet_ids

CM, LM, WM = "0a:00:00:00:00:01", "0a:00:00:00:00:02", "0a:00:00:00:00:03"
CLIENT, WEB, VIP = "10.244.1.71", "10.244.1.182", "10.96.92.233"
LANES = ["client-pod:eth0", "kind-worker:lxcC", "kind-worker:lxcW", "webpod:eth0", "kind-worker:eth0"]


def tcp(src, dst, sp, dp, ident, flags, seq, ack=0):
    return c.ip_frame(CM, LM, c.ipv4(src, dst, 6, c.tcp(src, dst, sp, dp, flags=flags, seq=seq, ack=ack), ident=ident))


def blog_step1() -> pd.DataFrame:
    """Same-node pod to pod: each lxc sees only its own pod's packets (redirect_peer)."""
    syn = tcp(CLIENT, WEB, 42278, 80, 11, "S", 100)
    synack = tcp(WEB, CLIENT, 80, 42278, 0, "SA", 900, 101)
    ack = tcp(CLIENT, WEB, 42278, 80, 12, "A", 101, 901)
    arp = c.arp(1, CM, CLIENT, "00:00:00:00:00:00", "10.244.1.113")
    rows = [  # (frame, lane index)
        (arp, 0),
        (arp, 1),
        (syn, 0),
        (syn, 1),
        (syn, 3),
        (synack, 3),
        (synack, 2),
        (synack, 0),
        (ack, 0),
        (ack, 1),
        (ack, 3),
    ]
    t = 1_700_000_000_000_000_000
    f = Frames.pack(
        [r[0] for r in rows],
        [t + i * 1000 for i in range(len(rows))],
        [len(r[0]) for r in rows],
        [r[1] for r in rows],
        [1] * len(rows),
        LANES,
    )
    return packets_table(f)


def arrows(fig: go.Figure) -> list[list[tuple[int, float]]]:
    """Polylines of the packet traces (x, y runs split at None)."""
    out = []
    for tr in fig.data:
        if tr.meta["role"] != "arrows":
            continue
        run = []
        for x, y in zip(tr.x, tr.y):
            if x is None:
                out.append(run)
                run = []
            else:
                run.append((x, y))
    return out


def test_lanes_arrows_and_missing_marks():
    fig = ladder(blog_step1(), LANES)
    assert fig.layout.meta["lanes"] == LANES
    lines = arrows(fig)
    assert len(lines) == 4  # ARP, SYN, SYN-ACK, ACK
    assert [[x for x, _ in line] for line in lines] == [[0, 1], [0, 1, 3], [3, 2, 0], [0, 1, 3]]
    for line in lines:  # time goes down along every arrow
        ys = [y for _, y in line]
        assert ys == sorted(ys)
    skipped = next(tr for tr in fig.data if tr.meta["role"] == "skipped")
    # only lanes on the path, between the first and last sighting: SYN and ACK skip the
    # server's lxc, the SYN-ACK the client's; the node's eth0 is on no path (no crosses)
    assert sorted(zip(skipped.x, [int(y) for y in skipped.y])) == [(1, 2), (2, 1), (2, 3)]
    assert fig.layout.meta["packets"] == 4 and fig.layout.meta["skipped"] == 3
    assert list(fig.layout.yaxis.ticktext) == ["ARP request", "SYN", "SYN-ACK", "ACK"]
    firsts = [(x, y) for tr in fig.data if tr.meta["role"] == "first" for x, y in zip(tr.x, tr.y)]
    assert sorted(firsts) == [(0, 0), (0, 1), (0, 3), (3, 2)]  # every packet has a marker where first seen
    hover = [h for tr in fig.data if tr.name == "TCP" for h in tr.hovertext if h]
    assert any("Flags [S.]" in h and "webpod:eth0" in h for h in hover)


def test_default_lanes_follow_first_appearance_and_filtering():
    df = blog_step1()
    fig = ladder(df)
    assert fig.layout.meta["lanes"] == ["client-pod:eth0", "kind-worker:lxcC", "webpod:eth0", "kind-worker:lxcW"]
    assert [a.text for a in fig.layout.annotations][0] == "client-pod<br>eth0"  # two lines: never over the title
    fig = ladder(df, ["webpod:eth0", "client-pod:eth0"])  # a subset, reversed
    assert [[x for x, _ in line] for line in arrows(fig)] == [[1], [1, 0], [0, 1], [1, 0]]


def test_identity_survives_nat_and_repeats():
    """A packet DNATed between points is still one packet; two equal packets stay two."""
    before = tcp(CLIENT, VIP, 42278, 80, 55, "S", 7)
    after = tcp(CLIENT, WEB, 42278, 80, 55, "S", 7)
    rows = [(before, 0), (after, 1), (before, 0), (after, 1)]
    f = Frames.pack(
        [r[0] for r in rows], [10, 20, 30, 40], [len(r[0]) for r in rows], [r[1] for r in rows], [1] * 4, ["a", "b"]
    )
    df = packets_table(f)
    assert packet_ids(df).tolist() == [0, 0, 1, 1]
    assert len(arrows(ladder(df))) == 2


def test_empty_frame():
    fig = ladder(packets_table(Frames.empty()), ["a", "b"])
    assert fig.layout.meta["lanes"] == ["a", "b"] and arrows(fig) == []
