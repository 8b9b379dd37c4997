"""Lesson 3, the blog's second step: client-pod calls the webpod service by its ClusterIP.
Where does the ClusterIP go? Socket LB rewrites the socket at connect(), so no packet ever
carries it; the datapath's trace-sock records say so; per-packet (tc) LB, on a companion
lab, is the contrast.

Every run sets up what the text describes: the blog's call answered by the webpod on the
client's own node (socket LB picks a backend at random, so the call is repeated until that
one answers, and the lesson says how many calls it took), on both labs, so the two modes
differ only in how they balance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from ..i18n import _
from ..lab import Captured, Lab
from .blogmap import Recorded
from .cast import cast
from .claims import Claim, claim
from .conversation import connection, per_interface
from .scenarios import backend_spread, companion, host_nat_entries

MAX_TRIES = 16  # calls until the webpod on the client's node answered (1 in 2 each time)
CT_COLUMNS = ["direction", "src_ip", "src_port", "dst_ip", "dst_port", "rev_nat", "backend_id", "src_identity"]


@dataclass(frozen=True)
class ServiceCall:
    """One `curl http://<ClusterIP>` answered by the webpod on the client's node."""

    mode: str  # "socket LB" or "tc LB"
    run: Captured
    roles: dict[str, str]  # client eth0, client lxc, node eth0, server eth0
    packets: pd.DataFrame  # this call's packets
    answered_by: str  # the webpod that answered (whoami's Hostname)
    tries: int  # calls it took until the webpod on the client's node answered
    cluster_ip: str
    backend_ip: str
    service_id: int  # the service's RevNAT id in the LB map
    ct: pd.DataFrame  # the client's CT entries of this call
    nat: pd.DataFrame  # the client node's NAT entries of this call
    events: pd.DataFrame  # what `cilium monitor -v` saw on the node during the call

    @property
    def counts(self) -> pd.DataFrame:
        return per_interface(self.packets, self.roles)

    def destinations(self) -> pd.Series:
        """Per interface: the destination of the client's packets there."""
        sent = self.packets[(self.packets.proto == "TCP") & (self.packets.dst_port == 80)]
        return pd.Series(
            {role: ", ".join(sorted(set(sent[sent.point == p].dst_ip))) or "(none)" for role, p in self.roles.items()},
            name=f"destination of the client's packets ({self.mode})",
        )

    def clusterip_seen_at(self) -> set[str]:
        return {role for role, dst in self.destinations().items() if self.cluster_ip in dst.split(", ")}

    def trace_sock(self) -> list[str]:
        """What `cilium monitor -v` prints for socket LB's translations of this call."""
        return list(self.events[self.events.type == "trace-sock"].line)

    @property
    def recorded(self) -> Recorded:
        return Recorded(self.run.capture, self.events)


def call(lab: Lab, *, mode: str = "socket LB") -> ServiceCall:
    """The blog's ClusterIP call with CT flushed first, repeated until the webpod on the
    client's node answers (at most MAX_TRIES calls)."""
    c = cast(lab)
    points = c.points_same_node()
    roles = {"client eth0": points[0], "client lxc": points[1], "node eth0": points[2], "server eth0": points[4]}
    url = f"http://{c.service.cluster_ip}"
    box: dict[str, Captured] = {}
    tries = 0
    for _i in range(MAX_TRIES):
        tries += 1
        lab.maps(c.node).flush("ct")

        def make_call() -> None:
            box["run"] = lab.run_captured(
                c.client["name"], ["curl", "-s", "--max-time", "5", url], list(roles.values())
            )

        events = lab.monitor(c.node, during=make_call)
        out = box["run"].result.stdout
        answered = out.splitlines()[0].removeprefix("Hostname: ") if out else ""
        if answered == c.web_same["name"]:
            break
    run = box["run"]
    packets = connection(run.packets, c.client.ip, 80)
    syn = packets[packets.tcp_flags == "[S]"]
    sport = int(syn.src_port.iloc[0]) if len(syn) else -1
    ct = lab.maps(c.node).ct()
    ct = ct[(ct.proto == "TCP") & (((ct.src_ip == c.client.ip) & (ct.src_port == sport)) | (ct.direction == "SVC"))]
    nat = lab.maps(c.node).nat()
    nat = nat[(nat.src_ip == c.client.ip) & (nat.src_port == sport)]
    lb = lab.maps(c.node).lb()
    svc = lb[(lb.frontend_ip == c.service.cluster_ip) & (lb.slot == 0)]
    return ServiceCall(
        mode,
        run,
        roles,
        packets,
        answered,
        tries,
        c.service.cluster_ip,
        c.web_same.ip,
        int(svc.rev_nat.iloc[0]) if len(svc) else 0,
        ct[CT_COLUMNS].reset_index(drop=True),
        nat.reset_index(drop=True),
        events,
    )


def peer_address(lab: Lab) -> str:
    """What the application believes it talks to: getpeername() (curl's %{remote_ip})."""
    c = cast(lab)
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{remote_ip}:%{remote_port}", f"http://{c.service.cluster_ip}"]
    return lab.pod(c.client["name"]).sh(argv).strip()


@dataclass(frozen=True)
class ByName:
    """`curl http://webpod`: the name is resolved by kube-dns first."""

    dns: pd.DataFrame  # the DNS packets of the call, every point
    dns_server: str  # where the query went on the wire
    kube_dns_ip: str  # the kube-dns ClusterIP in the pod's resolv.conf
    coredns_ips: set[str]


def by_name(lab: Lab) -> ByName:
    c = cast(lab)
    points = c.points_same_node()[:3]
    run = lab.run_captured(c.client["name"], ["curl", "-s", "-o", "/dev/null", "http://webpod"], points)
    pk = run.packets
    dns = pk[(pk.proto == "UDP") & ((pk.dst_port == 53) | (pk.src_port == 53))]
    query = dns[dns.dst_port == 53]
    svcs = lab.services
    kube_dns = svcs[(svcs.name == "kube-dns") & (svcs.protocol == "UDP")]
    pods = lab.pods
    return ByName(
        dns[["point", "src_ip", "src_port", "dst_ip", "dst_port", "summary"]].reset_index(drop=True),
        str(query.dst_ip.iloc[0]) if len(query) else "",
        str(kube_dns.cluster_ip.iloc[0]) if len(kube_dns) else "",
        set(pods[pods.app == "coredns"].ip),
    )


def dns_destination_kind(name: ByName) -> str:
    """What a learner predicts: "ClusterIP" or "CoreDNS pod"."""
    if name.dns_server == name.kube_dns_ip:
        return "ClusterIP"
    return "CoreDNS pod" if name.dns_server in name.coredns_ips else name.dns_server


def tc_lb(lab: Lab) -> ServiceCall | None:
    """The same call on a companion lab built with socketLB.enabled=false (or None)."""
    other = companion(lab, "tc", options={"socketLB.enabled": "false"})
    return call(other, mode="tc LB") if other is not None else None


def side_by_side(a: ServiceCall, b: ServiceCall | None) -> pd.DataFrame:
    """The destination per interface in both modes."""
    cols = {a.mode: a.destinations()}
    if b is not None:
        cols[b.mode] = b.destinations()
    return pd.DataFrame(cols)


def spread(lab: Lab, n: int = 20) -> pd.Series:
    """`curl http://webpod` n times: how many answers came from each backend."""
    return backend_spread(lab, cast(lab).client["name"], "http://webpod", n=n)


def api_server_nat(lab: Lab) -> pd.DataFrame:
    """The NAT entries that come back on their own after a flush (the node's API-server
    connections), as the blog saw on port 6443."""
    t0 = time.time()
    nat = host_nat_entries(lab)
    return nat.assign(seconds_after_flush=round(time.time() - t0, 1))


def claims(
    sock: ServiceCall,
    peer: str,
    name: ByName | None = None,
    answers: pd.Series | None = None,
    api_nat: pd.DataFrame | None = None,
    tc: ServiceCall | None = None,
) -> list[Claim]:
    """Every sentence of lesson 3 that says what the lab shows, checked on this run."""
    pre = [x for x in sock.trace_sock() if "[pre-xlate-fwd]" in x]
    post = [x for x in sock.trace_sock() if "[post-xlate-fwd]" in x]
    dest = sock.destinations()
    out = [
        claim(
            "The webpod on the client's own node answered the call (the lesson repeated it until it did).",
            sock.answered_by != "" and sock.tries <= MAX_TRIES and sock.backend_ip in dest["client lxc"],
            _("answered by {pod} after {n} calls").format(pod=sock.answered_by, n=sock.tries),
        ),
        claim(
            "With socket LB, no interface sees the ClusterIP: even the client pod's own eth0 shows the backend.",
            sock.clusterip_seen_at() == set() and dest["client eth0"] == sock.backend_ip,
            f"client eth0: {dest['client eth0']}",
        ),
        claim(
            "The node's eth0 sees nothing of the call: the backend is on the same node.",
            int(sock.counts.loc["node eth0", "packets"]) == 0,
            _("{n} packets of the call there").format(n=int(sock.counts.loc["node eth0", "packets"])),
        ),
        claim(
            "Yet getpeername() on the client's socket returns the ClusterIP.",
            peer.split(":")[0] == sock.cluster_ip,
            _("curl's remote_ip: {peer}").format(peer=peer),
        ),
        claim(
            "The call's conntrack entries have RevNAT 0 and there is no SVC entry.",
            len(sock.ct) > 0 and (sock.ct.rev_nat == 0).all() and not (sock.ct.direction == "SVC").any(),
            _("{n} entries: {kinds}").format(n=len(sock.ct), kinds=", ".join(sock.ct.direction)),
        ),
        claim("The NAT map has no entry for the call.", sock.nat.empty, _("{n} entries").format(n=len(sock.nat))),
        claim(
            "`cilium monitor -v` records the translation: pre-xlate-fwd with the ClusterIP, post-xlate-fwd "
            "with the backend.",
            any(f"[{sock.cluster_ip}]" in x for x in pre) and any(f"[{sock.backend_ip}]" in x for x in post),
            _("{pre} pre-xlate-fwd, {post} post-xlate-fwd lines").format(pre=len(pre), post=len(post)),
        ),
    ]
    if name is not None:
        out.append(
            claim(
                "`curl http://webpod` first asks kube-dns; on the wire the query goes to a CoreDNS pod, "
                "not to the kube-dns ClusterIP.",
                name.dns_server in name.coredns_ips,
                _("query to {server} (kube-dns ClusterIP {ip})").format(
                    server=name.dns_server or _("nobody"), ip=name.kube_dns_ip
                ),
            )
        )
    if answers is not None:
        out.append(
            claim(
                "Over twenty calls to http://webpod, both webpods answer.",
                len([n for n in answers.index if n.startswith("webpod")]) == 2,
                ", ".join(f"{k}: {v}" for k, v in answers.items()),
            )
        )
    if api_nat is not None:
        port = (api_nat.dst_port == 6443) | (api_nat.src_port == 6443)
        out.append(
            claim(
                "After a flush, NAT entries on port 6443 come back on their own: the node's connections to the "
                "API server, with NeedsCT=1.",
                port.any() and (api_nat[port].needs_ct == 1).all(),
                _("{n} entries on 6443").format(n=int(port.sum())),
            )
        )
    if tc is not None:
        svc = tc.ct[tc.ct.direction == "SVC"]
        outgoing = tc.ct[tc.ct.direction == "OUT"]
        out += [
            claim(
                "With socketLB.enabled=false the ClusterIP is on the wire: the client's eth0 and lxc see it.",
                {"client eth0", "client lxc"} <= tc.clusterip_seen_at(),
                _("ClusterIP seen at: {where}").format(where=", ".join(sorted(tc.clusterip_seen_at())) or _("nowhere")),
            ),
            claim(
                "Per-packet LB records a SVC entry with the chosen BackendID, and the OUT entry carries RevNAT = the "
                "service id.",
                len(svc) > 0
                and (svc.backend_id > 0).all()
                and len(outgoing) > 0
                and (outgoing.rev_nat == tc.service_id).all(),
                _("SVC backend ids {ids}, OUT RevNAT {revnat}, service id {sid}").format(
                    ids=list(svc.backend_id), revnat=list(outgoing.rev_nat), sid=tc.service_id
                ),
            ),
        ]
    return out
