"""Lesson 2, the blog's first step: client-pod calls the webpod on its own node by pod IP,
watched on five interfaces at once, by `cilium monitor --from/--to` and by Hubble.

Every run sets up what the text describes: the client's neighbour entry for its router is
flushed first, so the capture shows the blog's ARP every time, not only on a fresh lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..i18n import _
from ..lab import Captured, Lab
from ..plots.ladder import ladder
from ..tables import EVENTS, FLOWS
from .blogmap import Recorded
from .cast import cast
from .claims import Claim, claim
from .conversation import connection, per_interface, seen_at, senders
from .scenarios import companion


@dataclass(frozen=True)
class SameNodeCall:
    """One `curl http://<webpod on the same node>` and everything that watched it."""

    run: Captured
    roles: dict[str, str]  # "client lxc" -> "kind-worker:lxc..."
    packets: pd.DataFrame  # this call's packets only (its TCP connection, the client's ARP)
    events: pd.DataFrame  # what `cilium monitor` saw on the node during the call
    flows: pd.DataFrame  # the call's Hubble flows, oldest first
    client: pd.Series
    server: pd.Series
    router_ip: str
    neighbour_flushed: bool

    @property
    def counts(self) -> pd.DataFrame:
        """Packets per interface of this call, the node's eth0 included (with 0)."""
        return per_interface(self.packets, self.roles)

    def seen(self, **match: object) -> set[str]:
        """Roles (client eth0, client lxc, ...) whose interface saw a packet matching ``match``."""
        return seen_at(self.packets, self.roles, **match)

    def lines(self, role: str) -> list[str]:
        """What `tcpdump -i <that interface>` printed during the call."""
        return self.run.lines(self.roles[role])

    def monitor_from(self) -> list[str]:
        """`cilium monitor --from <client endpoint>`, as the blog ran it."""
        ev = self.events[(self.events.source == int(self.client.endpoint_id)) & (self.events.type != "trace-sock")]
        return list(ev.line)

    def monitor_to(self) -> list[str]:
        """`cilium monitor --to <webpod endpoint>`."""
        ev = self.events[(self.events.dst_id == int(self.server.endpoint_id)) & (self.events.type != "trace-sock")]
        return list(ev.line)

    def ladder(self) -> go.Figure:
        return ladder(self.packets, list(self.roles.values()))

    @property
    def recorded(self) -> Recorded:
        """For ``lesson.blog(..., recorded=call.recorded)``: the blog's tcpdump and cilium
        monitor lines, printed from this very call."""
        return Recorded(self.run.capture, self.events)

    def states(self, lines: list[str]) -> list[str]:
        """The CT states (`state new`, ...) of monitor lines, in order."""
        return [line.split(" state ", 1)[1].split()[0] for line in lines if " state " in line]


def call(lab: Lab, *, observe: bool = True) -> SameNodeCall:
    """The blog's call, watched by five captures, the monitor and Hubble at once (only the
    captures with ``observe=False``: a lab without the eBPF datapath has no events)."""
    c = cast(lab)
    roles = c.roles_same_node()
    flushed = lab.pod(c.client["name"]).run(["ip", "neigh", "flush", "dev", "eth0"]).returncode == 0
    box: dict[str, Any] = {}

    def make_call() -> None:
        box["run"] = lab.run_captured(
            c.client["name"], ["curl", "-s", "--max-time", "5", f"http://{c.web_same.ip}"], list(roles.values())
        )

    def watched() -> None:
        box["events"] = lab.monitor(c.node, during=make_call)

    if observe:
        flows = lab.flows(c.node, during=watched)
    else:
        make_call()
        box["events"], flows = EVENTS.frame(), FLOWS.frame()
    run: Captured = box["run"]
    packets = connection(run.packets, c.client.ip, 80)
    syn = packets[(packets.tcp_flags == "[S]")]
    sport = int(syn.src_port.iloc[0]) if len(syn) else -1
    mine = ((flows.src_ip == c.client.ip) & (flows.src_port == sport)) | (
        (flows.dst_ip == c.client.ip) & (flows.dst_port == sport)
    )
    return SameNodeCall(
        run,
        roles,
        packets,
        box["events"],
        flows[mine].reset_index(drop=True),
        c.client,
        c.web_same,
        c.router_ip,
        flushed,
    )


def kernel_contrast(lab: Lab) -> SameNodeCall | None:
    """The same call on a companion lab with plain kernel routing (no eBPF), or None."""
    other = companion(lab, "k", datapath="kernel")
    return call(other, observe=False) if other is not None else None


@dataclass(frozen=True)
class RouteBreak:
    """A call made with the node's /32 route to the webpod deleted (then put back)."""

    route: str  # the route that was deleted, as `ip route` prints it
    returncode: int  # curl's exit code (0: answered)
    answer: str  # the first line of the answer
    restored: bool


def without_endpoint_route(lab: Lab) -> RouteBreak:
    """Delete the node's route to the webpod (endpointRoutes' /32), call it, put it back."""
    c = cast(lab)
    node = lab.node(c.node)
    route = f"{c.web_same.ip} dev {c.web_same.lxc} scope link"
    node.sh(["ip", "route", "del", f"{c.web_same.ip}/32", "dev", c.web_same.lxc])
    try:
        r = lab.pod(c.client["name"]).run(["curl", "-s", "--max-time", "3", f"http://{c.web_same.ip}"])
    finally:
        node.sh(["ip", "route", "replace", f"{c.web_same.ip}/32", "dev", c.web_same.lxc, "scope", "link"])
    back = route in node.sh(["ip", "route", "show"])
    return RouteBreak(route, r.returncode, (r.stdout.splitlines() or [""])[0], back)


def claims(
    call: SameNodeCall,
    kernel: SameNodeCall | None = None,
    broken: RouteBreak | None = None,
    kernel_broken: RouteBreak | None = None,
) -> list[Claim]:
    """Every sentence of lesson 2 that says what the lab shows, checked on this run."""
    r = call.roles
    client, server = call.client.ip, call.server.ip
    tcp_client_lxc = senders(call.packets, r["client lxc"])
    tcp_server_lxc = senders(call.packets, r["server lxc"])
    out = [
        claim(
            "The client's lxc sees only the client's packets.",
            tcp_client_lxc == {client},
            _("sources there: {ips}").format(ips=", ".join(sorted(tcp_client_lxc)) or _("none")),
        ),
        claim(
            "The webpod's lxc sees only the webpod's packets.",
            tcp_server_lxc == {server},
            _("sources there: {ips}").format(ips=", ".join(sorted(tcp_server_lxc)) or _("none")),
        ),
        claim(
            "The client pod's own eth0 sees both directions.",
            senders(call.packets, r["client eth0"]) == {client, server},
            _("sources there: {ips}").format(ips=", ".join(sorted(senders(call.packets, r["client eth0"])))),
        ),
        claim(
            "The node's eth0 sees nothing of this call.",
            int(call.counts.loc["node eth0", "packets"]) == 0,
            _("{n} packets of the call there").format(n=int(call.counts.loc["node eth0", "packets"])),
        ),
        claim(
            "The SYN crosses the client's eth0, the client's lxc and the webpod's eth0, not the webpod's lxc.",
            call.seen(tcp_flags="[S]") == {"client eth0", "client lxc", "server eth0"},
            _("seen at: {where}").format(where=", ".join(sorted(call.seen(tcp_flags="[S]")))),
        ),
    ]
    if call.neighbour_flushed:
        arp = call.packets[(call.packets.proto == "ARP") & (call.packets.point == r["client lxc"])]
        replies = arp[arp.summary.str.contains("Reply", regex=False)]
        macs = {m.lower() for m in replies.src_mac}
        out.append(
            claim(
                "After the neighbour cache is flushed, the client asks for its router IP by ARP, and the "
                "answer carries the lxc's own MAC.",
                len(replies) > 0 and macs == {str(call.client.lxc_mac).lower()},
                _("{n} ARP replies from {macs}").format(n=len(replies), macs=", ".join(sorted(macs)) or _("nobody")),
            )
        )
    states_from, states_to = call.states(call.monitor_from()), call.states(call.monitor_to())
    out += [
        claim(
            "`cilium monitor --from <client>` shows the replies delivered to the client: state reply.",
            len(states_from) > 0 and set(states_from) == {"reply"},
            _("states: {states}").format(states=", ".join(states_from) or _("no lines")),
        ),
        claim(
            "`cilium monitor --to <webpod>` shows the client's packets: state new, then established.",
            states_to[:1] == ["new"] and set(states_to[1:]) == {"established"},
            _("states: {states}").format(states=", ".join(states_to) or _("no lines")),
        ),
        claim(
            "The flows show the whole conversation, both directions, from the SYN to the FIN.",
            len(call.flows) > 0
            and call.flows.tcp_flags.iloc[0] == "SYN"
            and call.flows.tcp_flags.str.contains("FIN").any()
            and call.flows.is_reply.fillna(False).any(),
            _("{n} flows, the first: {first}").format(
                n=len(call.flows), first=call.flows.tcp_flags.iloc[0] if len(call.flows) else _("none")
            ),
        ),
    ]
    if kernel is not None:
        out.append(
            claim(
                "With plain kernel routing, the SYN crosses both lxcs (no shortcut).",
                {"client lxc", "server lxc"} <= kernel.seen(tcp_flags="[S]"),
                _("seen at: {where}").format(where=", ".join(sorted(kernel.seen(tcp_flags="[S]")))),
            )
        )
    if broken is not None:
        out.append(
            claim(
                "Without the node's /32 route to the webpod, the eBPF datapath still delivers the call.",
                broken.returncode == 0 and broken.restored,
                _("curl exit {code}").format(code=broken.returncode),
            )
        )
    if kernel_broken is not None:
        out.append(
            claim(
                "On the kernel-routing lab the same deletion breaks the call.",
                kernel_broken.returncode != 0 and kernel_broken.restored,
                _("curl exit {code}").format(code=kernel_broken.returncode),
            )
        )
    return out
