"""One call's packets, counted per interface the way the blog read its tcpdumps.

A capture on a node's eth0 also sees what the lab does on its own (the kubelet's and the
agent's API-server connections, DNS): a lesson that says "the node's eth0 sees nothing of
this call" counts the call's own packets, its TCP connection and the client's ARP, and
keeps the interfaces that saw none of them, with 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def connection(packets: pd.DataFrame, client_ip: str, dport: int | None = None) -> pd.DataFrame:
    """The TCP packets of the client's first connection in ``packets`` (both directions,
    every point), plus the ARP the client sent or got: matched by the client's port, so a
    packet still matches after NAT rewrote an address."""
    tcp = packets[packets.proto == "TCP"]
    syn = tcp[(tcp.tcp_flags == "[S]") & (tcp.src_ip == client_ip)]
    if dport is not None:
        syn = syn[syn.dst_port == dport]
    if syn.empty:
        return packets.iloc[0:0]
    sport, server_port = int(syn.src_port.iloc[0]), int(syn.dst_port.iloc[0])
    mine = ((tcp.src_port == sport) & (tcp.dst_port == server_port)) | (
        (tcp.dst_port == sport) & (tcp.src_port == server_port)
    )
    arp = packets[(packets.proto == "ARP") & ((packets.src_ip == client_ip) | (packets.dst_ip == client_ip))]
    return pd.concat([tcp[mine], arp]).sort_values("time", kind="stable")


def per_interface(packets: pd.DataFrame, roles: Mapping[str, str]) -> pd.DataFrame:
    """Packets per interface and direction, one row per role in path order, 0 included."""
    rows = []
    for role, point in roles.items():
        here = packets[packets.point == point]
        rows.append(
            {
                "interface": role,
                "capture point": point,
                "out": int((here.direction == "out").sum()),
                "in": int((here.direction == "in").sum()),
                "packets": len(here),
            }
        )
    return pd.DataFrame(rows).set_index("interface")


def seen_at(packets: pd.DataFrame, roles: Mapping[str, str], **match: object) -> set[str]:
    """Roles whose interface saw a packet matching ``match`` (column=value)."""
    pk = packets
    for col, val in match.items():
        pk = pk[pk[col] == val]
    points = set(pk.point)
    return {role for role, point in roles.items() if point in points}


def senders(packets: pd.DataFrame, point: str) -> set[str]:
    """Source addresses of the TCP packets seen at ``point``."""
    here = packets[(packets.point == point) & (packets.proto == "TCP")]
    return set(here.src_ip)
