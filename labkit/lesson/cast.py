"""The pods of the blog's story, found in the lab's tables: notebooks (and tests) name them
by role, never by IP, so a lesson reads the same on every lab.

Capture points have role names too ("client lxc", "server eth0", "node eth0"): what a
learner types in a prediction, instead of an lxc name with 12 random hex digits.
"""

from __future__ import annotations

import pandas as pd

from .. import paths
from ..lab import Lab

SAME_NODE_ROLES = ("client eth0", "client lxc", "node eth0", "server lxc", "server eth0")
CROSS_NODE_ROLES = ("client eth0", "client lxc", "client node eth0", "server node eth0", "server lxc", "server eth0")


class Cast:
    """client-pod, curl-pod, the webpod on the client's node and the one on another node,
    the service, and the client's node with its IP and router IP."""

    def __init__(self, lab: Lab) -> None:
        pods = lab.pods
        self.client: pd.Series = pods[pods.name == "client-pod"].iloc[0]
        self.curl: pd.Series = pods[pods.name == "curl-pod"].iloc[0]
        web = pods[pods.app == "whoami"]
        self.web_same: pd.Series = web[web.node == self.client.node].iloc[0]  # shares the client's node
        self.web_other: pd.Series = web[web.node != self.client.node].iloc[0]  # on another node
        svcs = lab.services
        # the service whose backends are the webpods (the control plane has services too)
        mine = svcs[svcs.backends.str.contains(f"{self.web_same.ip}:", regex=False)]
        self.service: pd.Series = (mine if len(mine) else svcs).iloc[0]
        nodes = lab.nodes.set_index("name")
        self.node: str = self.client.node
        self.other_node: str = self.web_other.node
        self.node_ip: str = nodes.loc[self.node, "internal_ip"]
        self.other_node_ip: str = nodes.loc[self.other_node, "internal_ip"]
        self.router_ip: str = nodes.loc[self.node, "router_ip"]

    def points_same_node(self) -> list[str]:
        """Client eth0, client lxc, node eth0, server lxc, server eth0 (the blog's five tcpdumps)."""
        return paths.same_node(self.client, self.web_same)

    def points_cross_node(self) -> list[str]:
        return paths.cross_node(self.client, self.web_other)

    def roles_same_node(self) -> dict[str, str]:
        """Role name -> capture point, along the same-node path."""
        return dict(zip(SAME_NODE_ROLES, self.points_same_node()))

    def roles_cross_node(self) -> dict[str, str]:
        return dict(zip(CROSS_NODE_ROLES, self.points_cross_node()))


def cast(lab: Lab) -> Cast:
    return Cast(lab)
