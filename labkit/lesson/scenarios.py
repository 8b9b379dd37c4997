"""What every lesson shares: ``start`` (the lab in the state a notebook needs), companion
labs for contrasts, and a few small experiments more than one lesson uses (the kernel's
path of a call, the API-server NAT entries). Each lesson's own experiments and claims live
in its module (install, same_node, service, cross_node, masquerade)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, display

from .. import i18n
from ..backend import Settings
from ..i18n import _
from ..lab import Lab, connect
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
    lang: str | None = None,
) -> Lab:
    """Bring lab ``lab`` to the state a notebook needs: up with these settings, the blog's
    manifests applied. Already so: nothing changes. Up with other settings: rebuilt.
    ``lang`` is the notebook's language (None: ``$LABKIT_LANG``, else English)."""
    i18n.use(lang)
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
        note(_("This contrast needs a second cluster built with other settings: it runs on the embedded backend only."))
        return None
    # the notebook's language stays: start(lang=None) would fall back to $LABKIT_LANG
    other = start(f"{lab.name}-{suffix}", lab.backend.name, lang=i18n.current(), **settings)  # type: ignore[arg-type]
    lab.add_companion(other)  # `labkit down --lab <lab>` removes it too
    return other


def backend_spread(lab: Lab, source: str, url: str, n: int = 20) -> pd.Series:
    """Call ``url`` ``n`` times from ``source``; how many answers came from each backend."""
    hosts = []
    for _i in range(n):
        out = lab.pod(source).run(["curl", "-s", "--max-time", "5", url]).stdout
        hosts.append(out.splitlines()[0].removeprefix("Hostname: ") if out else "(no answer)")
    return pd.Series(hosts, name="answers").value_counts()


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
        note(_("Following packets through the kernel needs the embedded lab (on kind, pwru does it on the host)."))
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
        title=_("The SYN's way through the kernel"),
    )
    return KernelPath(
        df, syn.reset_index(drop=True), crossed, missed, routed, figure, _answer(syn, crossed, missed, c.node)
    )


def _answer(syn: pd.DataFrame, crossed: list[str], missed: list[str], node: str) -> str:
    """What the trace says, in sentences made from its rows."""
    if syn.empty:
        return _("No SYN was traced: did the call run?")
    hops = " -> ".join(crossed)
    lines = [_("The SYN went {hops}.").format(hops=hops)]
    for r in syn[(syn.hook != "") & (syn.verdict != "")].itertuples():
        lines.append(
            _("At tc {direction} of {where}, {program} decided: {verdict}.").format(
                direction=r.event.split(":")[1], where=f"{r.netns}:{r.interface}", program=r.hook, verdict=r.verdict
            )
        )
    routes = syn[syn.event == "fib:fib_table_lookup"]
    where = sorted(set(routes.netns))
    if not where:
        lines.append(_("No route lookup ran anywhere."))
    elif node not in where:
        lines.append(
            _("Route lookups ran in {where}, none in the node {node}.").format(where=", ".join(where), node=node)
        )
    else:
        lines.append(_("Route lookups ran in {where}.").format(where=", ".join(where)))
    neigh = syn[syn.event.str.startswith("neigh:")]
    for r in neigh.itertuples():
        lines.append(_("In {netns}: {detail}.").format(netns=r.netns, detail=r.detail))
    if missed:
        lines.append(_("It never reached {lanes}: no event there at all.").format(lanes=", ".join(missed)))
    end = syn.iloc[-1]
    if end.free:
        lines.append(
            _("It ended {how} in {netns} ({why}).").format(
                how=end.free, netns=end.netns, why=end.drop_reason or end.detail
            )
        )
    return "\n".join(lines)


def external_target(lab: Lab) -> str:
    """An address outside ipv4NativeRoutingCIDR to call (the masquerade lesson)."""
    return lab.backend.external_address()


def topology(lab: Lab) -> go.Figure:
    """The running lab drawn: nodes, pods, lxc interfaces, IPs and routes."""
    return topology_figure(lab.nodes, lab.pods, lab.routes)


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
