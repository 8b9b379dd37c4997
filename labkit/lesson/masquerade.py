"""Lesson 5, beyond the blog: when bpf.masquerade=true does rewrite the source (pod traffic
to an address outside ipv4NativeRoutingCIDR), the NAT map's OUT / IN pair, and what the
datapath's observability shows of it: the call's flows (only this call's, from the SYN),
the metrics, and a real drop with its reason (a spoofed source address)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..i18n import _
from ..lab import Captured, Lab
from .blogmap import Recorded
from .cast import cast
from .claims import Claim, claim
from .conversation import connection


@dataclass(frozen=True)
class ExternalCall:
    """`curl http://<external host>` from client-pod, the NAT map flushed first."""

    run: Captured
    packets: pd.DataFrame  # this call's packets, inside the pod and on the node's eth0
    external: str
    client_ip: str
    node_ip: str
    nat: pd.DataFrame  # the NAT entries of this call (OUT and IN)
    flows: pd.DataFrame  # the call's flows, oldest first
    node: str

    def source_at(self, point: str) -> str:
        syn = self.packets[(self.packets.tcp_flags == "[S]") & (self.packets.point == point)]
        return str(syn.src_ip.iloc[0]) if len(syn) else ""

    def source_kind(self) -> str:
        """What a learner predicts for the source on the node's eth0: "pod IP" or "node IP"."""
        src = self.source_at(f"{self.node}:eth0")
        return {self.client_ip: "pod IP", self.node_ip: "node IP"}.get(src, src)

    def sources(self) -> pd.Series:
        """The source of the client's packets on each interface."""
        sent = self.packets[(self.packets.proto == "TCP") & (self.packets.dst_ip == self.external)]
        return sent.groupby("point").src_ip.unique().apply(lambda v: ", ".join(sorted(v)))

    @property
    def recorded(self) -> Recorded:
        return Recorded(self.run.capture, None)


def external_call(lab: Lab) -> ExternalCall:
    c = cast(lab)
    external = lab.backend.external_address()
    lab.maps(c.node).flush("nat")
    points = [f"{c.client['name']}:eth0", f"{c.node}:eth0"]
    box: dict[str, Captured] = {}

    def make_call() -> None:
        box["run"] = lab.run_captured(c.client["name"], ["curl", "-s", "--max-time", "5", f"http://{external}"], points)

    flows = lab.flows(c.node, during=make_call)
    run = box["run"]
    packets = connection(run.packets, c.client.ip, 80)
    inside = packets[packets.point == points[0]]
    syn = inside[inside.tcp_flags == "[S]"]
    sport = int(syn.src_port.iloc[0]) if len(syn) else -1
    # on the node's eth0 the client's packets carry the node IP: match them by the external end
    wire = run.packets[
        (run.packets.point == points[1])
        & (run.packets.proto == "TCP")
        & ((run.packets.dst_ip == external) | (run.packets.src_ip == external))
    ]
    packets = pd.concat([inside, wire]).sort_values("time", kind="stable")
    nat = lab.maps(c.node).nat()
    nat = nat[(nat.dst_ip == external) | (nat.src_ip == external)].reset_index(drop=True)
    mine = flows[(flows.dst_ip == external) | (flows.src_ip == external)]
    mine = mine[(mine.src_port == sport) | (mine.dst_port == sport) | mine.src_port.isna()]
    return ExternalCall(run, packets, external, c.client.ip, c.node_ip, nat, mine.reset_index(drop=True), c.node)


@dataclass(frozen=True)
class Unserved:
    """A call to a port the ClusterIP does not serve: no service, so plain world traffic."""

    returncode: int  # curl's exit code (28: nobody answered)
    drops: pd.DataFrame  # drop events of the call (none expected)


def unserved_port(lab: Lab, port: int = 81) -> Unserved:
    c = cast(lab)
    box: dict[str, int] = {}

    def make_call() -> None:
        url = f"http://{c.service.cluster_ip}:{port}"
        box["rc"] = lab.pod(c.client["name"]).run(["curl", "-s", "--max-time", "2", url]).returncode

    ev = lab.monitor(c.node, during=make_call)
    return Unserved(box["rc"], ev[ev.type == "drop"].reset_index(drop=True))


@dataclass(frozen=True)
class Spoofed:
    """A ping from client-pod with a source address that is not its own."""

    spoof: str
    answered: bool
    drops: pd.DataFrame  # the drop events (cilium monitor's `xx drop (...)` lines)
    metrics_before: pd.DataFrame
    metrics_after: pd.DataFrame

    @property
    def reasons(self) -> set[str]:
        return set(self.drops.drop_reason)

    def counted(self) -> pd.DataFrame:
        """Metric rows that grew during the ping, by how much."""
        key = ["reason", "direction"]
        before = self.metrics_before.set_index(key).packets
        after = self.metrics_after.set_index(key).packets
        grew = after.sub(before, fill_value=0)
        return grew[grew > 0].rename("packets added").reset_index()


def spoofed_ping(lab: Lab) -> Spoofed:
    """Give client-pod an address that is not its endpoint's, ping from it, take it away."""
    c = cast(lab)
    spoof = c.client.ip.rsplit(".", 1)[0] + ".250"
    pod = lab.pod(c.client["name"])
    maps = lab.maps(c.node)
    before = maps.metrics()
    box: dict[str, int] = {}

    def make_call() -> None:
        pod.sh(["ip", "addr", "add", f"{spoof}/32", "dev", "eth0"])
        try:
            box["rc"] = pod.run(["ping", "-c", "1", "-W", "1", "-I", spoof, c.web_same.ip]).returncode
        finally:
            pod.sh(["ip", "addr", "del", f"{spoof}/32", "dev", "eth0"])

    ev = lab.monitor(c.node, during=make_call)
    drops = ev[ev.type == "drop"].reset_index(drop=True)
    return Spoofed(spoof, box["rc"] == 0, drops, before, maps.metrics())


def claims(call: ExternalCall, unserved: Unserved | None = None, spoofed: Spoofed | None = None) -> list[Claim]:
    """Every sentence of lesson 5 that says what the lab shows, checked on this run."""
    pod_side = call.source_at(call.run.capture.points[0].point)
    wire = call.source_at(f"{call.node}:eth0")
    outgoing = call.nat[call.nat.direction == "OUT"]
    incoming = call.nat[call.nat.direction == "IN"]
    out = [
        claim(
            "Inside the pod the source is the pod's IP.",
            pod_side == call.client_ip,
            _("source: {ip}").format(ip=pod_side),
        ),
        claim(
            "On the node's eth0 the source is the node's IP: BPF masquerade.",
            wire == call.node_ip,
            _("source: {ip}").format(ip=wire or _("no SYN seen")),
        ),
        claim(
            "The NAT map holds an OUT entry (pod to node IP) and an IN entry (replies back to the pod).",
            len(outgoing) > 0
            and (outgoing.src_ip == call.client_ip).all()
            and (outgoing.xlate_ip == call.node_ip).all()
            and len(incoming) > 0
            and (incoming.xlate_ip == call.client_ip).all(),
            _("{out} OUT, {inc} IN").format(out=len(outgoing), inc=len(incoming)),
        ),
        claim(
            "The flows of this call start with its SYN, and nothing of an earlier lesson is among them.",
            len(call.flows) > 0 and call.flows.tcp_flags.iloc[0] == "SYN",
            _("{n} flows, the first: {first}").format(
                n=len(call.flows), first=call.flows.tcp_flags.iloc[0] if len(call.flows) else _("none")
            ),
        ),
    ]
    if unserved is not None:
        out.append(
            claim(
                "A call to a port the ClusterIP does not serve is not dropped: it leaves as world traffic and "
                "nothing answers (curl times out).",
                unserved.returncode == 28 and unserved.drops.empty,
                _("curl exit {code}, {n} drops").format(code=unserved.returncode, n=len(unserved.drops)),
            )
        )
    if spoofed is not None:
        counted = spoofed.counted()
        out += [
            claim(
                "A ping from an address that is not the pod's own gets no answer: from-container drops it.",
                not spoofed.answered and len(spoofed.drops) > 0,
                _("{n} drops").format(n=len(spoofed.drops)),
            ),
            claim(
                "The drop carries a reason, Invalid source ip, in cilium monitor and in the metrics.",
                spoofed.reasons == {"Invalid source ip"} and "Invalid source ip" in set(counted.reason),
                _("reasons: {why}").format(why=", ".join(sorted(spoofed.reasons)) or _("none")),
            ),
        ]
    return out
