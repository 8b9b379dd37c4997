"""What the notebooks call: start a lesson (the lab in the state it needs), show figures
that work in JupyterLab and in offline HTML, and check a learner's predictions.

Notebooks stay thin: every cell is story plus one or two calls into labkit.
"""
from __future__ import annotations

from typing import Any, Callable

from IPython.display import HTML, display

from .lab import Lab, connect

_PLOTLY_JS_SENT = False


def _figure_bundle(fig) -> dict[str, Any]:
    """The plotly mimetype for JupyterLab, plus self-contained HTML for nbconvert/HTML export.

    The first figure of a kernel carries plotly.js inline (hidden from require.js, which
    would otherwise claim it as an anonymous AMD module); later ones reuse window.Plotly.
    No CDN, no MathJax: exported pages read offline.
    """
    global _PLOTLY_JS_SENT
    import plotly.io as pio
    fig_dict = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    html = pio.to_html(fig_dict, include_plotlyjs=not _PLOTLY_JS_SENT, include_mathjax=False,
                       full_html=False, default_width="100%", validate=False)
    if not _PLOTLY_JS_SENT:
        html = ("<script>window.__labkitDefine = window.define; window.define = undefined;</script>" + html +
                "<script>window.define = window.__labkitDefine;</script>")
    _PLOTLY_JS_SENT = True
    return {"application/vnd.plotly.v1+json": {"data": fig_dict.get("data", []), "layout": fig_dict.get("layout", {}),
                                               "config": {}},
            "text/html": html}


def setup_plotting() -> None:
    """Make ``fig.show()`` and bare figures render in JupyterLab and in exported HTML."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class LabkitRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return _figure_bundle(fig_dict)

    pio.renderers["labkit"] = LabkitRenderer()
    pio.renderers.default = "labkit"


def start(lab: str | None = None, backend: str | None = None, *, datapath: str | None = None,
          options: dict[str, str] | None = None, apply: bool = True) -> Lab:
    """Bring lab ``lab`` to the state a notebook needs: up with these settings, the blog's
    manifests applied. Already so: nothing changes. Up with other settings: rebuilt."""
    setup_plotting()
    lab_obj = connect(lab, backend)
    settings = getattr(lab_obj.backend, "settings", None)
    if lab_obj.is_up and settings is not None:
        want_dp = datapath or lab_obj.backend.default_datapath
        have = settings()
        if have["datapath"] != want_dp or have["options"] != dict(options or {}):
            lab_obj.down()
    if not lab_obj.is_up:
        kw = {} if lab_obj.backend.name == "kind" else {"datapath": datapath, "options": options}
        lab_obj.up(**kw)
    if apply:
        lab_obj.apply()
    return lab_obj


def check(question: str, answer: Any, expected: Any, *, hint: str = "",
          compare: Callable[[Any, Any], bool] | None = None) -> None:
    """Tell the learner whether ``answer`` (their prediction) matches what the lab showed.
    Displays the verdict (nothing returned, so the cell shows only that)."""
    if answer is None or answer is Ellipsis:
        display(HTML(f"<div style='color:#555'>✍️ <b>{question}</b>: write your prediction in the cell above, "
                     f"run it, then run this cell again.</div>"))
        return
    ok = compare(answer, expected) if compare else _norm(answer) == _norm(expected)
    if ok:
        display(HTML(f"<div style='color:#1a7f37'>✅ <b>{question}</b>: right. The lab shows {_show(expected)}.</div>"))
    else:
        display(HTML(f"<div style='color:#b00'>❌ <b>{question}</b>: not quite, you said {_show(answer)}. "
                     f"Hint: {hint or 'look at the capture again'}</div>"))


def _norm(v: Any) -> Any:
    if isinstance(v, (set, frozenset, list, tuple)):
        return frozenset(_norm(x) for x in v)
    if isinstance(v, str):
        return v.strip().lower()
    return v


def _show(v: Any) -> str:
    if isinstance(v, (set, frozenset, list, tuple)):
        return "{" + ", ".join(sorted(map(str, v))) + "}"
    return repr(v)


# What each of the blog's helm values means on the datapath (the install notebook's table).
VALUE_MEANINGS = {
    "routingMode": "native: pod packets leave the node unencapsulated; the kernel FIB (or a BPF FIB lookup) routes them",
    "ipv4NativeRoutingCIDR": "destinations inside it are routed as they are (no masquerade); outside it, BPF masquerade to the node IP",
    "autoDirectNodeRoutes": "each node gets a route to every other node's pod CIDR via that node's IP (see lab.routes)",
    "endpointRoutes.enabled": "one /32 route per local pod to its lxc interface, instead of one route for the whole pod CIDR",
    "kubeProxyReplacement": "services are load-balanced by eBPF: with socket LB at connect() time, no kube-proxy, no iptables",
    "bpf.masquerade": "SNAT in eBPF on the node's eth0 (to-netdev), with entries in the NAT map (cilium_snat_v4_external)",
    "installNoConntrackIptablesRules": "no iptables conntrack for pod traffic (the eBPF conntrack is used)",
    "ipam.mode": "kubernetes: each node's pod CIDR comes from the node object (10.244.N.0/24)",
    "k8s.requireIPv4PodCIDR": "the agent waits for the node's pod CIDR before it starts",
    "k8sServiceHost": "auto: the agent finds the API server by itself",
    "endpointHealthChecking.enabled": "false: no health endpoint per node (fewer entries in the maps)",
    "healthChecking": "false: no node-to-node health probes",
    "hubble.enabled": "flow events from the datapath are kept and can be observed (labkit observe / lab.flows())",
}


def values_table():
    """The blog's helm values, flattened, with what each means on the datapath."""
    import pandas as pd
    import yaml
    from .spec import CLUSTER_DIR

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v
    values = yaml.safe_load((CLUSTER_DIR / "cilium-values.yaml").read_text())
    rows = [{"value": k, "set to": ", ".join(map(str, v)) if isinstance(v, list) else str(v),
             "what it means here": VALUE_MEANINGS.get(k, "observability/operations only; no effect on the packet path")}
            for k, v in flat(values)]
    return pd.DataFrame(rows)


class Cast:
    """The pods of the blog's story, found in the lab's tables (notebooks name them, not IPs)."""

    def __init__(self, lab: Lab) -> None:
        pods = lab.pods
        self.client = pods[pods.name == "client-pod"].iloc[0]
        self.curl = pods[pods.name == "curl-pod"].iloc[0]
        web = pods[pods.app == "whoami"]
        self.web_same = web[web.node == self.client.node].iloc[0]      # shares the client's node
        self.web_other = web[web.node != self.client.node].iloc[0]     # on another node
        self.service = lab.services.iloc[0]
        nodes = lab.nodes.set_index("name")
        self.node = self.client.node
        self.other_node = self.web_other.node
        self.node_ip = nodes.loc[self.node, "internal_ip"]
        self.router_ip = nodes.loc[self.node, "router_ip"]

    def points_same_node(self) -> list[str]:
        """Client eth0, client lxc, node eth0, server lxc, server eth0 (the blog's five tcpdumps)."""
        c, w = self.client, self.web_same
        return [f"{c['name']}:eth0", f"{c.node}:{c.lxc}", f"{c.node}:eth0", f"{w.node}:{w.lxc}", f"{w['name']}:eth0"]

    def points_cross_node(self) -> list[str]:
        c, w = self.client, self.web_other
        return [f"{c['name']}:eth0", f"{c.node}:{c.lxc}", f"{c.node}:eth0", f"{w.node}:eth0",
                f"{w.node}:{w.lxc}", f"{w['name']}:eth0"]


def cast(lab: Lab) -> Cast:
    return Cast(lab)


def companion(lab: Lab, suffix: str, **settings) -> Lab | None:
    """A second embedded lab next to ``lab``, built with other settings, for side-by-side
    contrasts. On the live backend there is one cluster only: None, and a note says so."""
    if lab.backend.name != "embedded":
        display(HTML("<i>This contrast needs a second cluster built with other settings: "
                     "it runs on the embedded backend only.</i>"))
        return None
    return start(f"{lab.name}-{suffix}", "embedded", **settings)


def counts(run) -> "object":
    """Packets per capture point and direction of a ``Lab.run_captured`` result."""
    return run.packets.groupby(["point", "direction"]).size().unstack(fill_value=0)


def kernel_contrast(lab: Lab):
    """The same-node call again on a kernel-routing lab: packets per point (or None)."""
    other = companion(lab, "k", datapath="kernel")
    if other is None:
        return None
    c = cast(other)
    run = other.run_captured("client-pod", ["curl", "-s", f"http://{c.web_same.ip}"], c.points_same_node())
    return counts(run)


def backend_spread(lab: Lab, source: str, url: str, n: int = 20):
    """Call ``url`` ``n`` times from ``source``; how many answers came from each backend."""
    import pandas as pd
    hosts = []
    for _ in range(n):
        out = lab.pod(source).run(["curl", "-s", "--max-time", "5", url]).stdout
        hosts.append(out.splitlines()[0].removeprefix("Hostname: ") if out else "(no answer)")
    return pd.Series(hosts, name="answers").value_counts()


def service_call(lab: Lab) -> dict:
    """The blog's service call on ``lab``: flush CT, curl the ClusterIP while capturing on the
    client's eth0, its lxc and the node's eth0; return the run, what each point saw as
    destination, and the CT entries of the node for the client."""
    c = cast(lab)
    lab.maps(c.node).flush("ct")
    url = f"http://{c.service.cluster_ip}"
    points = c.points_same_node()[:3]
    run = lab.run_captured("client-pod", ["curl", "-s", "--max-time", "5", url], points)
    import pandas as pd
    pk = run.packets
    sent = pk[(pk.proto == "TCP") & (pk.src_ip == c.client.ip)]
    seen = pd.Series({p: ", ".join(sorted(set(sent[sent.point == p].dst_ip))) or "(none)" for p in points},
                     name="destination of the client's packets")
    ct = lab.maps(c.node).ct()
    ct = ct[(ct.src_ip == c.client.ip) & (ct.proto == "TCP")]
    return {"run": run, "destinations": seen,
            "ct": ct[["direction", "src_ip", "src_port", "dst_ip", "dst_port", "rev_nat", "backend_id",
                      "src_identity"]]}


def service_contrast(lab: Lab):
    """The service call with socket LB (this lab) and with tc LB (a companion lab built with
    socketLB.enabled=false), side by side: destination seen per interface, and CT entries."""
    import pandas as pd
    other = companion(lab, "tc", options={"socketLB.enabled": "false"})
    if other is None:
        return None
    a, b = service_call(lab), service_call(other)
    dest = pd.DataFrame({"socket LB (connect time)": a["destinations"].values,
                         "tc LB (per packet)": b["destinations"].values}, index=a["destinations"].index)
    ct = pd.concat({"socket LB": a["ct"], "tc LB": b["ct"]}, names=["mode", "#"])
    return dest, ct


def external_target(lab: Lab) -> str:
    """An address outside ipv4NativeRoutingCIDR to call: the lab's external host (embedded),
    or the kind network's gateway (live)."""
    if lab.backend.name == "embedded":
        from .datapath.exthost import EXT_IP
        return EXT_IP
    return "172.18.0.1"
