"""The order of capture points along a packet's path, from the lab's tables.

One home for "which interfaces does a pod-to-pod packet cross, in which order", used by
the lessons (the blog's five tcpdumps), the capture panel (its choices and lanes) and
``Lab.capture_choices``: client pod eth0, client lxc, client node eth0, [server node eth0],
server lxc, server pod eth0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def same_node(client: Mapping[str, Any], server: Mapping[str, Any]) -> list[str]:
    """Client eth0, client lxc, node eth0, server lxc, server eth0 (rows of PODS)."""
    return [
        f"{client['name']}:eth0",
        f"{client['node']}:{client['lxc']}",
        f"{client['node']}:eth0",
        f"{server['node']}:{server['lxc']}",
        f"{server['name']}:eth0",
    ]


def cross_node(client: Mapping[str, Any], server: Mapping[str, Any]) -> list[str]:
    """Client eth0, client lxc, both nodes' eth0, server lxc, server eth0."""
    return [
        f"{client['name']}:eth0",
        f"{client['node']}:{client['lxc']}",
        f"{client['node']}:eth0",
        f"{server['node']}:eth0",
        f"{server['node']}:{server['lxc']}",
        f"{server['name']}:eth0",
    ]


def choices(nodes: pd.DataFrame, pods: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, point) for every interface worth capturing on: each pod's eth0, each lxc
    (labelled with its pod) and each node's eth0, in path order node by node."""
    out = []
    for node in nodes.name:
        here = pods[pods.node == node]
        out += [(f"{p.name}:eth0", f"{p.name}:eth0") for p in here.itertuples()]
        out += [(f"{node}:{p.lxc} ({p.name})", f"{node}:{p.lxc}") for p in here.itertuples()]
        out.append((f"{node}:eth0", f"{node}:eth0"))
    return out


def lanes(points: Sequence[str], source: str, pods: pd.DataFrame) -> list[str]:
    """``points`` in path order seen from pod ``source``: its eth0, its lxc, its node's
    eth0, other nodes' eth0, other lxcs, other pods' eth0 (the server side last)."""
    src = pods[pods.name == source]
    src_node = src.node.iloc[0] if len(src) else ""
    src_lxc = f"{src_node}:{src.lxc.iloc[0]}" if len(src) else ""
    pod_names = set(pods.name)

    def rank(point: str) -> tuple[int, str]:
        target, _, iface = point.partition(":")
        if target == source:
            return (0, point)
        if point == src_lxc:
            return (1, point)
        if target == src_node:
            return (2, point)
        if iface.startswith("lxc"):
            return (4, point)
        if iface == "eth0" and target not in pod_names:
            return (3, point)
        return (5, point)

    return sorted(points, key=rank)
