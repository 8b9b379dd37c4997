"""Lesson 4, the blog's last step: client-pod calls the webpod on another node. Native
routing keeps the pod IP (the destination is inside ipv4NativeRoutingCIDR), the FIB picks
the other node by autoDirectNodeRoutes' route, and the other node delivers straight into
the pod."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from ..i18n import _
from ..lab import Captured, Lab
from ..plots.ladder import ladder
from .blogmap import Recorded
from .cast import cast
from .claims import Claim, claim
from .conversation import connection, per_interface, seen_at, senders


@dataclass(frozen=True)
class CrossNodeCall:
    run: Captured
    roles: dict[str, str]  # "server node eth0" -> "kind-worker2:eth0"
    packets: pd.DataFrame  # this call's packets only
    flows: pd.DataFrame  # the call's flows on both nodes, oldest first
    nat: pd.DataFrame  # the client node's NAT entries of this call (none expected)
    routes: pd.DataFrame  # the client node's routes to the other nodes' pod CIDRs
    client: pd.Series
    server: pd.Series
    node: str
    client_node_ip: str
    other_node: str
    other_node_ip: str
    native_cidr: str

    @property
    def counts(self) -> pd.DataFrame:
        return per_interface(self.packets, self.roles)

    def seen(self, **match: object) -> set[str]:
        return seen_at(self.packets, self.roles, **match)

    def lines(self, role: str, first: int | None = None) -> list[str]:
        """What `tcpdump -i <that interface>` printed for this call."""
        point = self.roles[role]
        mine = set(self.packets[self.packets.point == point].index)
        table = self.run.packets
        lines = [line for i, line in zip(table[table.point == point].index, self.run.lines(point)) if i in mine]
        return lines[:first] if first else lines

    def source_at(self, role: str) -> str:
        """The source address of the SYN where ``role``'s interface saw it ('' if it did not)."""
        syn = self.packets[(self.packets.tcp_flags == "[S]") & (self.packets.point == self.roles[role])]
        return str(syn.src_ip.iloc[0]) if len(syn) else ""

    def source_kind(self, role: str) -> str:
        """What a learner predicts for the SYN's source at ``role``: "pod IP" or "node IP"."""
        src = self.source_at(role)
        return {self.client.ip: "pod IP", self.client_node_ip: "node IP"}.get(src, src)

    def ladder(self) -> go.Figure:
        return ladder(self.packets, list(self.roles.values()))

    @property
    def recorded(self) -> Recorded:
        """For ``lesson.blog(..., recorded=call.recorded)``: the blog's tcpdump of this call."""
        return Recorded(self.run.capture, None)


def call(lab: Lab) -> CrossNodeCall:
    """Curl the webpod on the other node while capturing along the whole path."""
    c = cast(lab)
    roles = c.roles_cross_node()
    box: dict[str, Captured] = {}

    def make_call() -> None:
        box["run"] = lab.run_captured(
            c.client["name"], ["curl", "-s", "--max-time", "5", f"http://{c.web_other.ip}"], list(roles.values())
        )

    flows = lab.flows(during=make_call)
    run = box["run"]
    packets = connection(run.packets, c.client.ip, 80)
    syn = packets[packets.tcp_flags == "[S]"]
    sport = int(syn.src_port.iloc[0]) if len(syn) else -1
    mine = ((flows.src_ip == c.client.ip) & (flows.src_port == sport)) | (
        (flows.dst_ip == c.client.ip) & (flows.dst_port == sport)
    )
    nat = lab.maps(c.node).nat()
    nat = nat[((nat.src_ip == c.client.ip) & (nat.src_port == sport)) | (nat.dst_ip == c.web_other.ip)]
    routes = lab.routes
    nodes = lab.nodes
    others = nodes[nodes.name != c.node]
    routes = routes[(routes.node == c.node) & routes.dst.isin(others.pod_cidr)]
    values = lab.backend.settings()
    return CrossNodeCall(
        run,
        roles,
        packets,
        flows[mine].reset_index(drop=True),
        nat,
        routes.reset_index(drop=True),
        c.client,
        c.web_other,
        c.node,
        c.node_ip,
        c.other_node,
        c.other_node_ip,
        str(values.options.get("ipv4NativeRoutingCIDR", "10.244.0.0/16")),
    )


@dataclass(frozen=True)
class MissingRoute:
    """A call made with the client node's route to the other node's pod CIDR deleted."""

    route: str  # the route deleted, as `ip route` prints it
    returncode: int  # curl's exit code (28: timed out)
    went_to: str  # where the SYN went instead: the next hop of the node's default route
    restored: bool


def without_node_route(lab: Lab) -> MissingRoute:
    """Delete autoDirectNodeRoutes' route to the other node's pods, call, put it back."""
    c = cast(lab)
    node = lab.node(c.node)
    cidr = lab.nodes.set_index("name").loc[c.other_node, "pod_cidr"]
    route = f"{cidr} via {c.other_node_ip} dev eth0"
    default = next((r for r in lab.routes.itertuples() if r.node == c.node and r.dst == "default"), None)
    node.sh(["ip", "route", "del", cidr])
    try:
        r = lab.pod(c.client["name"]).run(["curl", "-s", "--max-time", "3", f"http://{c.web_other.ip}"])
    finally:
        node.sh(["ip", "route", "replace", cidr, "via", c.other_node_ip, "dev", "eth0"])
    back = route in node.sh(["ip", "route", "show"])
    return MissingRoute(route, r.returncode, default.gateway if default is not None else "", back)


def claims(call: CrossNodeCall, broken: MissingRoute | None = None) -> list[Claim]:
    """Every sentence of lesson 4 that says what the lab shows, checked on this run."""
    client, server = call.client.ip, call.server.ip
    src = call.source_at("server node eth0")
    out = [
        claim(
            "On the server node's eth0 the source is still the client pod's IP: no masquerade.",
            src == client,
            _("source there: {ip}").format(ip=src or _("no SYN seen")),
        ),
        claim(
            "The SYN leaves the client's node on its eth0 and enters the server's node on its eth0.",
            {"client node eth0", "server node eth0"} <= call.seen(tcp_flags="[S]"),
            _("seen at: {where}").format(where=", ".join(sorted(call.seen(tcp_flags="[S]")))),
        ),
        claim(
            "The server's lxc sees only the replies: the other node delivers straight into the pod.",
            senders(call.packets, call.roles["server lxc"]) == {server},
            _("sources there: {ips}").format(
                ips=", ".join(sorted(senders(call.packets, call.roles["server lxc"]))) or _("none")
            ),
        ),
        claim(
            "The client's lxc sees only the client's packets.",
            senders(call.packets, call.roles["client lxc"]) == {client},
            _("sources there: {ips}").format(
                ips=", ".join(sorted(senders(call.packets, call.roles["client lxc"]))) or _("none")
            ),
        ),
        claim(
            "The NAT map of the client's node has no entry for this call.",
            call.nat.empty,
            _("{n} entries").format(n=len(call.nat)),
        ),
        claim(
            "The client's node routes the other node's pod CIDR via that node's IP (autoDirectNodeRoutes).",
            ((call.routes.gateway == call.other_node_ip) & (call.routes.dev == "eth0")).any(),
            "; ".join(f"{r.dst} via {r.gateway} dev {r.dev}" for r in call.routes.itertuples()),
        ),
        claim(
            "The flows show the call on both nodes, from the SYN.",
            len(call.flows) > 0 and call.flows.tcp_flags.iloc[0] == "SYN" and call.flows.node.nunique() == 2,
            _("{n} flows on {nodes} nodes").format(n=len(call.flows), nodes=call.flows.node.nunique()),
        ),
    ]
    if broken is not None:
        out.append(
            claim(
                "Without that route the call times out: the SYN goes to the default gateway, which knows no pods.",
                broken.returncode != 0 and broken.restored,
                _("curl exit {code}").format(code=broken.returncode),
            )
        )
    return out
