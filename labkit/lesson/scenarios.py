"""The lessons' experiments: each runs the blog's traffic on a lab and returns what it
showed as a dataclass of tables, for the notebook to display and the checks to read."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, display

from ..backend import Settings
from ..lab import Captured, Lab, connect
from ..plots.topology import topology as topology_figure
from ..plots.trace import lane_of, timeline
from .cast import cast
from .display import note, setup_plotting


def start(
    lab: str | None = None,
    backend: str | None = None,
    *,
    datapath: str | None = None,
    options: dict[str, str] | None = None,
    apply: bool = True,
) -> Lab:
    """Bring lab ``lab`` to the state a notebook needs: up with these settings, the blog's
    manifests applied. Already so: nothing changes. Up with other settings: rebuilt."""
    setup_plotting()
    lab_obj = connect(lab, backend)
    caps = lab_obj.backend.capabilities
    if lab_obj.is_up and caps.options:
        want = Settings(datapath or caps.default_datapath, dict(options or {}))
        have = lab_obj.backend.settings()
        if have.datapath != want.datapath or dict(have.options) != dict(want.options):
            lab_obj.down()
    if not lab_obj.is_up:
        lab_obj.up(datapath=datapath, options=options)
    if apply:
        lab_obj.apply()
    return lab_obj


def companion(lab: Lab, suffix: str, **settings: object) -> Lab | None:
    """A second lab next to ``lab``, built with other settings, for side-by-side contrasts.
    A backend without cheap companions (a live cluster): None, and a note says so."""
    if not lab.backend.capabilities.companions:
        note("This contrast needs a second cluster built with other settings: it runs on the embedded backend only.")
        return None
    other = start(f"{lab.name}-{suffix}", lab.backend.name, **settings)  # type: ignore[arg-type]
    lab.add_companion(other)  # `labkit down --lab <lab>` removes it too
    return other


def counts(run: Captured) -> pd.DataFrame:
    """Packets per capture point and direction of a ``Lab.run_captured`` result."""
    return run.packets.groupby(["point", "direction"]).size().unstack(fill_value=0)


def kernel_contrast(lab: Lab) -> pd.DataFrame | None:
    """The same-node call again on a kernel-routing lab: packets per point (or None)."""
    other = companion(lab, "k", datapath="kernel")
    if other is None:
        return None
    c = cast(other)
    run = other.run_captured("client-pod", ["curl", "-s", f"http://{c.web_same.ip}"], c.points_same_node())
    return counts(run)


def backend_spread(lab: Lab, source: str, url: str, n: int = 20) -> pd.Series:
    """Call ``url`` ``n`` times from ``source``; how many answers came from each backend."""
    hosts = []
    for _ in range(n):
        out = lab.pod(source).run(["curl", "-s", "--max-time", "5", url]).stdout
        hosts.append(out.splitlines()[0].removeprefix("Hostname: ") if out else "(no answer)")
    return pd.Series(hosts, name="answers").value_counts()


@dataclass(frozen=True)
class ServiceCall:
    """The blog's ClusterIP call: the captured run, the destination each point saw for the
    client's packets, and the node's CT entries of the client."""

    run: Captured
    destinations: pd.Series
    ct: pd.DataFrame


def service_call(lab: Lab) -> ServiceCall:
    """Flush CT, curl the ClusterIP while capturing on the client's eth0, its lxc and the
    node's eth0."""
    c = cast(lab)
    lab.maps(c.node).flush("ct")
    url = f"http://{c.service.cluster_ip}"
    points = c.points_same_node()[:3]
    run = lab.run_captured("client-pod", ["curl", "-s", "--max-time", "5", url], points)
    pk = run.packets
    sent = pk[(pk.proto == "TCP") & (pk.src_ip == c.client.ip)]
    seen = pd.Series(
        {p: ", ".join(sorted(set(sent[sent.point == p].dst_ip))) or "(none)" for p in points},
        name="destination of the client's packets",
    )
    ct = lab.maps(c.node).ct()
    ct = ct[(ct.src_ip == c.client.ip) & (ct.proto == "TCP")]
    return ServiceCall(
        run,
        seen,
        ct[["direction", "src_ip", "src_port", "dst_ip", "dst_port", "rev_nat", "backend_id", "src_identity"]],
    )


@dataclass(frozen=True)
class ServiceContrast:
    """The service call with socket LB and with tc LB, side by side."""

    destinations: pd.DataFrame  # destination seen per interface, one column per mode
    ct: pd.DataFrame  # CT entries, indexed by mode


def service_contrast(lab: Lab) -> ServiceContrast | None:
    """The service call on this lab (socket LB) and on a companion lab built with
    socketLB.enabled=false (tc LB)."""
    other = companion(lab, "tc", options={"socketLB.enabled": "false"})
    if other is None:
        return None
    a, b = service_call(lab), service_call(other)
    dest = pd.DataFrame(
        {"socket LB (connect time)": a.destinations.values, "tc LB (per packet)": b.destinations.values},
        index=a.destinations.index,
    )
    ct = pd.concat({"socket LB": a.ct, "tc LB": b.ct}, names=["mode", "#"])
    return ServiceContrast(dest, ct)


@dataclass(frozen=True)
class KernelPath:
    """The blog's pwru step: one call followed through the kernel (``Lab.trace``)."""

    trace: pd.DataFrame  # every event of every packet of the call (TRACE)
    syn: pd.DataFrame  # the client's SYN, event by event
    crossed: list[str]  # interfaces (netns:interface) the SYN went through, in order
    missed: list[str]  # the lanes asked for that the SYN never reached
    routed_in: list[str]  # namespaces where the kernel looked up a route for the SYN
    figure: go.Figure
    answer: str  # the blog's question, answered from the kernel's side

    COLUMNS = ("netns", "interface", "event", "hook", "verdict", "free", "drop_reason", "detail")

    def _ipython_display_(self) -> None:
        """In a notebook: the figure, the answer, then the SYN's events as a table."""
        display(self.figure)
        display(HTML("<pre>" + html.escape(self.answer) + "</pre>"))
        display(self.syn[list(self.COLUMNS)])


def kernel_path(lab: Lab, server: pd.Series, lanes: list[str], *, fresh_neighbour: bool = False) -> KernelPath | None:
    """curl ``server`` (a row of PODS) from client-pod while tracing its flow from the
    client's eth0; ``lanes`` (capture points) order the figure. ``fresh_neighbour``
    forgets the client node's neighbour entries first, so the first packet shows the
    neighbour layer resolving the next hop. A backend without the tracer: None, and a note."""
    if not lab.backend.capabilities.trace:
        note("Following packets through the kernel needs the embedded lab (on kind, pwru does it on the host).")
        return None
    c = cast(lab)
    if fresh_neighbour:
        lab.node(c.node).run(["ip", "neigh", "flush", "dev", "eth0"])
    df = lab.trace(
        "client-pod",
        ["curl", "-s", "--max-time", "5", f"http://{server.ip}"],
        points=[f"{c.client['name']}:eth0"],
        filter=f"tcp and host {server.ip} and port 80",
    )
    sent = df[(df.tcp_flags == "[S]") & df.tuple.str.startswith(f"{c.client.ip}:")]
    syn = df[df.packet == sent.packet.iloc[0]] if len(sent) else df.iloc[0:0]
    crossed = list(dict.fromkeys(lane_of(n, i) for n, i in zip(syn.netns, syn.interface)))
    missed = [lane for lane in lanes if lane not in crossed]
    routed = list(dict.fromkeys(syn[syn.event == "fib:fib_table_lookup"].netns))
    figure = timeline(
        df,
        packets=[int(syn.packet.iloc[0])] if len(syn) else None,
        lanes=lanes,
        title="The SYN's way through the kernel",
    )
    return KernelPath(
        df, syn.reset_index(drop=True), crossed, missed, routed, figure, _answer(syn, crossed, missed, c.node)
    )


def _answer(syn: pd.DataFrame, crossed: list[str], missed: list[str], node: str) -> str:
    """What the trace says, in sentences made from its rows."""
    if syn.empty:
        return "No SYN was traced: did the call run?"
    hops = " -> ".join(crossed)
    lines = [f"The SYN went {hops}."]
    for r in syn[(syn.hook != "") & (syn.verdict != "")].itertuples():
        lines.append(f"At tc {r.event.split(':')[1]} of {r.netns}:{r.interface}, {r.hook} decided: {r.verdict}.")
    routes = syn[syn.event == "fib:fib_table_lookup"]
    where = sorted(set(routes.netns))
    lines.append(
        f"Route lookups ran in {', '.join(where)}" + (f", none in the node {node}." if node not in where else ".")
        if where
        else "No route lookup ran anywhere."
    )
    neigh = syn[syn.event.str.startswith("neigh:")]
    for r in neigh.itertuples():
        lines.append(f"In {r.netns}: {r.detail}.")
    if missed:
        lines.append(f"It never reached {', '.join(missed)}: no event there at all.")
    end = syn.iloc[-1]
    if end.free:
        lines.append(f"It ended {end.free} in {end.netns} ({end.drop_reason or end.detail}).")
    return "\n".join(lines)


def external_target(lab: Lab) -> str:
    """An address outside ipv4NativeRoutingCIDR to call (the masquerade lesson)."""
    return lab.backend.external_address()


def topology(lab: Lab) -> go.Figure:
    """The running lab drawn: nodes, pods, lxc interfaces, IPs and routes."""
    return topology_figure(lab.nodes, lab.pods, lab.routes)


@dataclass(frozen=True)
class SocketLBTrace:
    """The datapath's own record of socket LB for one call to the ClusterIP: what
    `cilium monitor -v` prints (trace-sock lines) and the matching Hubble flows."""

    lines: list[str]
    flows: pd.DataFrame


def socket_lb_trace(lab: Lab) -> SocketLBTrace:
    """Curl the service's ClusterIP and collect the trace-sock events of the call: the
    ClusterIP at connect() (pre-xlate-fwd), the backend it became (post-xlate-fwd)."""
    c = cast(lab)
    t0 = time.time()
    lab.pod("client-pod").run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", f"http://{c.service.cluster_ip}"])
    time.sleep(0.5)
    window = time.time() - t0 + 0.5
    ev = lab.monitor(c.node, seconds=window)
    lines = list(ev[ev.type == "trace-sock"].line)  # what `cilium monitor -v` prints for them
    fl = lab.flows(c.node, seconds=window)
    mine = fl.src_pod.str.endswith("/client-pod") | fl.dst_pod.str.endswith("/client-pod")
    fl = fl[fl.type.str.contains("-xlate-") & mine]
    return SocketLBTrace(lines, fl[["type", "verdict", "src_pod", "src_ip", "dst_ip", "dst_port", "dst_pod"]])


def host_nat_entries(lab: Lab, wait: float = 8.0) -> pd.DataFrame:
    """Flush the NAT map of the client's node and return what comes back on its own: the
    node's connections to the API server (kubelet, Cilium agent), NeedsCT=1."""
    c = cast(lab)
    maps = lab.maps(c.node)
    maps.flush("nat")
    deadline = time.time() + wait
    nat = maps.nat()
    while time.time() < deadline and not ((nat.dst_port == 6443) | (nat.src_port == 6443)).any():
        time.sleep(0.5)
        nat = maps.nat()
    return nat


def spoofed_ping(lab: Lab, spoof: str | None = None) -> pd.DataFrame:
    """A ping from client-pod with a source address that is not its own: Cilium's
    from-container drops it ("Invalid source ip"). Returns the drop events."""
    c = cast(lab)
    spoof = spoof or c.client.ip.rsplit(".", 1)[0] + ".250"
    pod = lab.pod("client-pod")
    t0 = time.time()
    pod.sh(["ip", "addr", "add", f"{spoof}/32", "dev", "eth0"])
    try:
        pod.run(["ping", "-c", "1", "-W", "1", "-I", spoof, c.web_same.ip])
    finally:
        pod.sh(["ip", "addr", "del", f"{spoof}/32", "dev", "eth0"])
    time.sleep(0.3)
    ev = lab.monitor(c.node, seconds=time.time() - t0 + 0.5)
    return ev[ev.type == "drop"]
