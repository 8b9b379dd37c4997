"""The blog's names and addresses, and this lab's: a table to read the study note side by
side with the lab, and the blog's own command lines run as written on this lab.

The study note ran on a kind cluster whose pods got other addresses, endpoint ids and lxc
names than the lab's. ``blog_names(lab)`` maps each to this lab's; ``translate`` rewrites
a line of the blog with them; ``blog(lab, line)`` runs it (the blog's `cilium ...` and
`tcpdump ...` as labkit answers them in a node, anything else in the pod or node);
``terminal(lab, ...)`` shows the lines to type in `labkit shell` yourself.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from IPython.display import HTML

from ..capture import Capture
from ..errors import LabError
from ..i18n import N_, _
from ..lab import Lab
from .cast import cast

# (what it is, the blog's value, how to find it in a lab's Cast)
BLOG = [
    (N_("client-pod's IP"), "10.244.1.71", lambda c: c.client.ip),
    (N_("webpod on the client's node: IP"), "10.244.1.182", lambda c: c.web_same.ip),
    (N_("webpod on the client's node: name"), "webpod-697b545f57-tdbfg", lambda c: c.web_same["name"]),
    (N_("webpod on another node: IP"), "10.244.3.135", lambda c: c.web_other.ip),
    (N_("the webpod service's ClusterIP"), "10.96.92.233", lambda c: c.service.cluster_ip),
    (N_("kind-worker's router IP (cilium_host)"), "10.244.1.113", lambda c: c.router_ip),
    (N_("kind-worker's node IP (eth0)"), "172.17.0.4", lambda c: c.node_ip),
    (N_("client-pod's lxc (in kind-worker)"), "lxc93b551d233cf", lambda c: c.client.lxc),
    (N_("the webpod's lxc (in kind-worker)"), "lxc49626b6ed5ee", lambda c: c.web_same.lxc),
    (N_("client-pod's endpoint id"), "2543", lambda c: _int(c.client.endpoint_id)),
    (N_("the webpod's endpoint id"), "359", lambda c: _int(c.web_same.endpoint_id)),
    (N_("client-pod's security identity"), "30542", lambda c: _int(c.client.identity)),
    (N_("the webpod's security identity"), "32693", lambda c: _int(c.web_same.identity)),
    (N_("client-pod's lxc ifindex"), "11", lambda c: _int(c.client.lxc_ifindex)),
    (N_("the webpod's lxc ifindex"), "9", lambda c: _int(c.web_same.lxc_ifindex)),
    (N_("client-pod's eth0 MAC"), "DA:15:43:39:36:5E", lambda c: str(c.client.pod_mac).upper()),
    (N_("client-pod's lxc MAC (nodemac)"), "32:17:55:23:39:08", lambda c: str(c.client.lxc_mac).upper()),
]
# values short enough to clash with other text are replaced only as whole words
_WORDY = re.compile(r"^\d{1,5}$")


def _int(v: object) -> str:
    return "" if pd.isna(v) else str(int(v))  # type: ignore[call-overload]


def blog_names(lab: Lab) -> pd.DataFrame:
    """One row per name or address of the blog: what it is (in the learner's language), the
    blog's value, this lab's (the column names stay English, as every table's)."""
    c = cast(lab)
    return pd.DataFrame(
        [{"what": _(what), "in the blog": blog, "in this lab": str(mine(c))} for what, blog, mine in BLOG]
    ).set_index("what")


def translate(lab: Lab, line: str) -> str:
    """``line`` of the blog with its names and addresses replaced by this lab's."""
    c = cast(lab)
    pairs = sorted(((blog, str(mine(c))) for _, blog, mine in BLOG), key=lambda p: -len(p[0]))
    for blog, mine in pairs:
        if not mine:
            continue
        if _WORDY.match(blog):
            line = re.sub(rf"(?<![\w.:]){re.escape(blog)}(?![\w.:])", mine, line)
        else:
            line = re.sub(re.escape(blog), mine, line, flags=re.IGNORECASE)
    return line


@dataclass(frozen=True)
class Recorded:
    """What watched one call: its capture and the monitor's events (either may be None)."""

    capture: Capture | None = None
    events: pd.DataFrame | None = None


def curl(lab: Lab, url: str, *, source: str = "client-pod") -> Callable[[], object]:
    """The blog's call to ``url`` (its address rewritten for this lab), for ``during=``."""
    mine = translate(lab, url)
    return lambda: lab.pod(source).run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", mine])


class Text(str):
    """Terminal output: shown as it is (no quotes), so a cell reads like the blog's shell."""

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(str(self))  # type: ignore[attr-defined]


def blog(
    lab: Lab,
    line: str,
    *,
    on: str | None = None,
    during: Callable[[], object] | None = None,
    recorded: Recorded | None = None,
) -> Text:
    """The blog's command ``line`` run on this lab, translated, with what it prints.

    ``on``: the node or pod the blog ran it in (default: the client's node). `cilium ...`
    runs as in a node shell; `tcpdump -i IFACE` and `cilium monitor ...` print what they
    saw of a call: one made now by ``during``, or one already ``recorded``."""
    c = cast(lab)
    where = on or c.node
    mine = translate(lab, line)
    head = f"$ {mine}" + (f"        # {_('the blog:')} {line}" if mine != line else "") + "\n"
    argv = shlex.split(mine)
    if argv[:1] in (["cilium"], ["cilium-dbg"]):
        return Text(head + _cilium(lab, where, argv[1:], during, recorded))
    if argv[:1] == ["tcpdump"]:
        return Text(head + _tcpdump(lab, where, argv[1:], during, recorded))
    r = lab.target(where).run(argv)
    return Text(head + r.stdout + (r.stderr if r.returncode else ""))  # curl's progress meter only on failure


_LISTS: dict[tuple[str, ...], str] = {
    ("bpf", "endpoint", "list"): "endpoints",
    ("bpf", "ct", "list"): "ct",
    ("bpf", "nat", "list"): "nat",
    ("bpf", "lb", "list"): "lb",
    ("bpf", "ipcache", "list"): "ipcache",
    ("bpf", "metrics", "list"): "metrics",
    ("service", "list"): "services",
}
_FLUSHES: dict[tuple[str, ...], str] = {("bpf", "ct", "flush"): "ct", ("bpf", "nat", "flush"): "nat"}


def _cilium(
    lab: Lab, node: str, args: list[str], during: Callable[[], object] | None, recorded: Recorded | None
) -> str:
    """What `cilium <args>` prints in ``node``, through the backend contract (the same
    answers as `labkit bpf ...` and the `cilium` of `labkit shell`)."""
    words = tuple(a for a in args if not a.startswith("-") and a != "global")
    if args[:1] == ["monitor"]:
        if recorded is not None and recorded.events is not None:
            events = recorded.events
        elif during is not None:
            events = lab.monitor(node, during=during)
        else:
            raise LabError(_("cilium monitor follows what happens: give during=, the call it should watch"))
        events = events[events.node == node] if "node" in events.columns else events
        for flag, col in (("--from", "source"), ("--to", "dst_id")):
            if flag in args:
                events = events[events[col] == int(args[args.index(flag) + 1])]
        if "-v" not in args:
            events = events[events.type != "trace-sock"]  # socket LB's records need -v, as in Cilium
        return "".join(f"{line}\n" for line in events.line)
    if words[:3] in _LISTS or words[:2] in _LISTS:
        what = _LISTS.get(words[:3]) or _LISTS[words[:2]]
        text = lab.maps(node).text(what, output="json" if "json" in args else "text", time_diff="-d" in args)
        return text if text.endswith("\n") or not text else text + "\n"
    if words[:3] in _FLUSHES:
        removed = lab.maps(node).flush(_FLUSHES[words[:3]])
        return "".join(f"Flushed {n} entries from {path}\n" for path, n in removed.items())
    raise LabError(
        _("{command}: not one of the blog's commands; try it in labkit shell {node}").format(
            command=f"cilium {' '.join(args)}", node=node
        )
    )


def _tcpdump(
    lab: Lab, where: str, args: list[str], during: Callable[[], object] | None, recorded: Recorded | None
) -> str:
    if "-i" not in args:
        raise LabError(_("give the interface as the blog did: tcpdump -i IFACE"))
    iface = args[args.index("-i") + 1]
    point = f"{where}:{iface}"
    if recorded is not None and recorded.capture is not None:
        cap = recorded.capture
        if point not in {p.point for p in cap.points}:
            raise LabError(
                _("the recorded capture has no {point}; it has {points}").format(
                    point=point, points=", ".join(p.point for p in cap.points)
                )
            )
    else:
        with lab.capture([point], seconds=10) as cap:
            if during is not None:
                during()
            cap.wait(0.3)
    lines = cap.lines(point)
    pk = cap.packets[cap.packets.point == point].reset_index(drop=True)
    keep = pd.Series(True, index=pk.index)
    for word, cols in (("dst", ["dst_ip"]), ("src", ["src_ip"]), ("host", ["src_ip", "dst_ip"])):
        if word in args:  # the filters the blog used: dst HOST, src HOST, host HOST
            host = args[args.index(word) + 1]
            keep &= pk[cols].eq(host).any(axis=1)
    lines = [line for line, k in zip(lines, keep) if k]
    head = (
        "tcpdump: verbose output suppressed, use -v[v]... for full protocol decode\n"
        f"listening on {iface}, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
    )
    return head + "".join(f"{x}\n" for x in lines)


def terminal(lab: Lab, *lines: str, on: str | None = None) -> HTML:
    """A "try it in a terminal" box: the shell to open, then the blog's lines for this lab."""
    c = cast(lab)
    where = on or c.node
    flag = "" if lab.name == "default" else f" --lab {lab.name}"
    cmds = "\n".join(html.escape(translate(lab, x)) for x in lines)
    shell = f"<pre style='margin:0.4em 0'>.venv/bin/labkit shell{flag} {html.escape(where)}</pre>"
    call = f"<code>.venv/bin/labkit exec{flag} client-pod -- curl -s http://{html.escape(c.web_same.ip)}</code>"
    return HTML(
        "<div style='border:1px solid #888;border-radius:6px;padding:0.5em 1em;background:#fafafa'>"
        f"<b>💻 {_('Try it in a terminal')}</b> {_('(as root, in this repository):')}"
        + shell
        + _("then, inside {where}, as the blog did:").format(where=html.escape(where))
        + f"<pre style='margin:0.4em 0'>{cmds}</pre>"
        "<span style='color:#666'>"
        + _(
            "(Ctrl-C ends tcpdump and cilium monitor; make the call from another terminal: {call}; "
            "{exit} leaves the shell.)"
        ).format(call=call, exit="<code>exit</code>")
        + "</span></div>"
    )
